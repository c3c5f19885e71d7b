"""Where a run's configuration comes from: the default recipe when no --preset is given, --config and --set
on top of it (or of --preset, or of a resumed run's own), and the refusals."""

from __future__ import annotations

import copy
import json

import pytest

from training.config import DEFAULT_PRESET, PRESETS, TrainConfig, resolve_run_config, run_config_from_arguments
from training.features.extract import parse_args as extract_args
from training.train import parse_args as train_args


def train_config(*args: str):
    return run_config_from_arguments(train_args(["--data", "d", "--out", "r", *args]))


def test_no_preset_is_the_default_recipe():
    assert train_config() == resolve_run_config(DEFAULT_PRESET)
    assert DEFAULT_PRESET in PRESETS and PRESETS[DEFAULT_PRESET]["train"]  # a recipe, not the bare defaults


def test_set_adjusts_the_default_recipe_and_keeps_the_rest():
    default = resolve_run_config(DEFAULT_PRESET)
    adjusted = train_config("--set", "train.lr=5e-4", "--set", "model.hidden_channels=48")
    assert adjusted.train.lr == 5e-4 and adjusted.model["hidden_channels"] == 48
    assert {k: v for k, v in adjusted.model.items() if k != "hidden_channels"} == \
        {k: v for k, v in default.model.items() if k != "hidden_channels"}
    assert adjusted.train.loss == default.train.loss
    assert adjusted.train.regularizer_start_epoch == default.train.regularizer_start_epoch
    assert adjusted.train != TrainConfig(lr=5e-4)  # not the bare dataclass defaults


def test_a_config_file_adjusts_the_default_recipe(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"train": {"epochs": 3}}))
    config = train_config("--config", str(path))
    assert config.train.epochs == 3
    assert config.model == resolve_run_config(DEFAULT_PRESET).model


def test_an_explicit_preset_replaces_the_default_and_plain_is_the_dataclass_defaults():
    assert train_config("--preset", "demo", "--set", "train.epochs=2").model == resolve_run_config("demo").model
    plain = train_config("--preset", "plain", "--set", "train.epochs=2")
    assert plain.model == {} and plain.train == TrainConfig(epochs=2)


def test_set_on_resume_adjusts_the_run_own_configuration():
    stored = resolve_run_config("demo", overrides=["model.hidden_channels=24"]).to_dict()
    args = train_args(["--out", "r", "--resume", "--set", "train.epochs=40"])
    resumed = run_config_from_arguments(args, base=stored)
    assert resumed.model == stored["model"] and resumed.train.epochs == 40
    assert resumed.train.loss == resolve_run_config("demo").train.loss
    # --preset names a whole configuration: the run's own is not its base
    explicit = run_config_from_arguments(train_args(["--out", "r", "--resume", "--preset", "plain"]), base=stored)
    assert explicit.model == {}


def test_feature_extraction_uses_the_same_default():
    args = extract_args(["--data", "d", "--out", "c", "--set", "model.freeze_backbone=true"])
    assert run_config_from_arguments(args).model == {**resolve_run_config(DEFAULT_PRESET).model,
                                                     "freeze_backbone": True}


def test_unknown_preset_and_bad_override_are_named():
    with pytest.raises(ValueError, match=r"unknown preset 'fast'; presets: \["):
        train_config("--preset", "fast")
    with pytest.raises(ValueError, match=r"override 'lr=1' must look like model.FIELD=VALUE"):
        train_config("--set", "lr=1")
    with pytest.raises(ValueError, match=r"unknown train field\(s\) \['lrate'\]"):
        train_config("--set", "train.lrate=1")


def test_overrides_of_a_nested_section_leave_the_preset_unchanged():
    """`--set train.loss.X` writes into the resolved config's loss section; the preset's own must not change
    (it did when the section was shared: a later run in the same process trained with the earlier run's
    override)."""
    before, preset = resolve_run_config("synthetic"), copy.deepcopy(PRESETS["synthetic"])
    assert resolve_run_config("synthetic", overrides=["train.loss.mask_complement=1"]).train.loss.mask_complement == 1
    assert PRESETS["synthetic"] == preset
    assert resolve_run_config("synthetic") == before


def test_general_is_the_reference_with_motion_for_where_and_when():
    """The `general` preset is the reference's recipe plus exactly the fields docs/benchmark.md measures it by
    (motion for the trunk, the mask's and the temporal weights' priors, the learning-started regularizers and
    their weights)."""
    motion_for_where = ["model.trunk_input=motion", "model.mask_activation=sigmoid", "model.mask_prior=motion",
                        "model.temporal_prior=motion", "train.early_cell_pool=max", "train.regularizer_start=learning",
                        "train.regularizer_start_epoch=0", "train.loss.mask_complement=0.5",
                        "train.loss.mask_area=0.3"]
    general, spelled = resolve_run_config("general"), resolve_run_config("synthetic", overrides=motion_for_where)
    assert general.model == spelled.model and general.train == spelled.train
