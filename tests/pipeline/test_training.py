"""Training end to end on a tiny synthetic dataset: the loss goes down, checkpoints round-trip, resume
continues identically (after an epoch and after a signal mid-epoch), and bad input fails clearly."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import PROJECT
from tiny import tiny_model_config, tiny_overrides
from stanet.checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint
from stanet.config import ModelConfig
from stanet.model import build_model
from training.config import resolve_run_config
from training.train import main as train_main

pytestmark = pytest.mark.slow


def run_train(data: Path, out: Path, *args: str) -> int:
    return train_main(["--data", str(data), "--out", str(out), "--quiet", *args])


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_short_run_lowers_the_loss_and_writes_checkpoints(trained_run):
    losses = [h["train"]["ce"] for h in history(trained_run)]
    assert len(losses) == 4
    # 24 steps of a tiny model: the cross-entropy falls every epoch (from about ln 8 = 2.08 plus noise)
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.02, losses
    for name in ("best.pt", "last.pt", "run_config.json"):
        assert (trained_run / name).is_file()
    assert list((trained_run / "tensorboard").glob("events.out.tfevents.*"))
    ckpt = load_checkpoint(trained_run / "best.pt")
    assert ckpt.class_names[0] == "walk_horizontal" and len(ckpt.class_names) == ckpt.model_config.num_classes
    assert ckpt.model_config.clip_length == 8 and ckpt.extra["run_config"]["train"]["batch_size"] == 8


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=3, clip_length=4)
    model = build_model(config).eval()
    save_checkpoint(tmp_path / "m.pt", model, ["a", "b", "c"])
    rebuilt = load_checkpoint(tmp_path / "m.pt").build_model().eval()
    clip = torch.randn(2, 4, 3, 32, 32)
    a, b = model(clip), rebuilt(clip)
    for name in ("logits", "spatial_attention", "temporal_attention"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not list(tmp_path.glob(".*.tmp")), "no temp file is left behind"


def test_checkpoint_of_another_config_is_refused(tmp_path):
    small = build_model(ModelConfig(num_classes=3, backbone_width=8, hidden_channels=8, attention_dim=8))
    other = build_model(ModelConfig(num_classes=3, backbone_width=8, hidden_channels=16, attention_dim=8))
    with pytest.raises(CheckpointError, match=r"another model configuration: .*of the wrong shape "
                                              r"\(e\.g\. .*: checkpoint \(.*\), model \(.*\)\)"):
        load_state(other, small.state_dict(), source="checkpoint")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read as a stanet checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_set_alone_on_resume_adjusts_the_run_own_recipe(tiny_dataset, tmp_path):
    """A run of the demo preset resumed with `--set train.epochs=2` only: it continues with its own recipe
    (the demo preset's loss weights and schedule), the epochs raised, not with the default recipe's."""
    out = tmp_path / "run"
    args = tiny_overrides(1)[2:]  # the tiny model's --set list without `--preset plain`
    assert run_train(tiny_dataset, out, "--preset", "demo", *args) == 0
    assert run_train(tiny_dataset, out, "--resume", "--set", "train.epochs=2") == 0
    stored = load_checkpoint(out / "last.pt").extra["run_config"]
    demo = resolve_run_config("demo", overrides=args[1::2]).to_dict()
    assert stored["train"] == {**demo["train"], "epochs": 2} and stored["model"] == demo["model"]
    assert len(history(out)) == 2


def test_resume_after_an_epoch_continues_identically(tiny_dataset, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_train(tiny_dataset, straight, *tiny_overrides(2)) == 0
    assert run_train(tiny_dataset, split, *tiny_overrides(1)) == 0
    assert run_train(tiny_dataset, split, "--resume", *tiny_overrides(2)) == 0
    a = load_checkpoint(straight / "last.pt").state_dict
    b = load_checkpoint(split / "last.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["train"]["loss"] for h in history(straight)] == [h["train"]["loss"] for h in history(split)]


def test_signal_mid_epoch_saves_and_resume_continues_identically(tiny_dataset, tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    args = tiny_overrides(1, "train.checkpoint_every_steps=1")
    assert run_train(tiny_dataset, straight, *args) == 0
    cmd = [sys.executable, "-m", "stanet", "train", "--data", str(tiny_dataset), "--out", str(interrupted),
           "--quiet", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=PROJECT)
    deadline = time.monotonic() + 120
    while not (interrupted / "last.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    progress = load_checkpoint(interrupted / "last.pt").extra["progress"]
    assert progress["epoch"] == 0 and 1 <= progress["step"] < 6, progress
    assert run_train(tiny_dataset, interrupted, "--resume") == 0
    a = load_checkpoint(straight / "last.pt").state_dict
    b = load_checkpoint(interrupted / "last.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_config_names_the_difference(trained_run, tiny_dataset, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    code = run_train(tiny_dataset, copy, "--resume", *tiny_overrides(6, "model.hidden_channels=16"))
    assert code == 2
    assert "model.hidden_channels: run has 8, now 16" in capsys.readouterr().err


def test_existing_run_without_resume_is_refused(trained_run, tiny_dataset, capsys):
    assert run_train(tiny_dataset, trained_run, *tiny_overrides(1)) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_non_finite_loss_stops_with_a_clear_error(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "nan"
    code = run_train(tiny_dataset, out, *tiny_overrides(1, "train.lr=1e30", "train.grad_clip=0"))
    assert code == 2
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 1 step" in err and "lower train.lr" in err
    assert not (out / "last.pt").exists()


@pytest.mark.parametrize("override,message", [
    ("train.lr=-1", "lr must be > 0"),
    ("model.backbone=vgg", "backbone must be one of"),
    ("train.epoch=3", "unknown train field(s) ['epoch']"),
    ("lr=3", "must look like model.FIELD=VALUE"),
])
def test_bad_configuration_is_named(tiny_dataset, tmp_path, capsys, override, message):
    assert run_train(tiny_dataset, tmp_path / "bad", "--set", override) == 2
    assert message in capsys.readouterr().err


def test_missing_dataset_and_missing_val_split(tmp_path, tiny_dataset, capsys):
    assert run_train(tmp_path / "nowhere", tmp_path / "run", *tiny_overrides(1)) == 2
    assert "nowhere" in capsys.readouterr().err
    no_val = tmp_path / "no_val"
    shutil.copytree(tiny_dataset, no_val)
    lines = (no_val / "annotations.jsonl").read_text().splitlines()
    (no_val / "annotations.jsonl").write_text("\n".join(l for l in lines if '"split": "val"' not in l) + "\n")
    assert run_train(no_val, tmp_path / "run2", *tiny_overrides(1)) == 2
    assert "no clips with split 'val'" in capsys.readouterr().err


def test_unreadable_video_is_skipped_and_counted(tmp_path, tiny_dataset, caplog):
    data = tmp_path / "corrupt"
    shutil.copytree(tiny_dataset, data)
    victim = sorted((data / "videos" / "train").glob("*.mp4"))[0]
    victim.write_bytes(victim.read_bytes()[:40])  # truncated to its first bytes
    with caplog.at_level("WARNING"):
        assert run_train(data, tmp_path / "run", *tiny_overrides(1)) == 0
    assert "skipped 1 unreadable video(s)" in caplog.text and victim.name in caplog.text


def test_regularizers_start_late_ramp_in_and_gate_model_selection():
    """`regularizer_start_epoch` + warm-up (the synthetic preset's schedule): weights 0 before the start, a
    linear ramp, then full; best.pt may only come from epochs trained at full weight."""
    from training.config import TrainConfig
    from training.losses import LossWeights
    from training.regularizer_schedule import selectable, warmed_up

    config = TrainConfig(loss=LossWeights(mask_area=0.1, total_variation=0.05), regularizer_start_epoch=11,
                         regularizer_warmup_epochs=3)
    assert warmed_up(config, 10.9).mask_area == 0.0 and warmed_up(config, 10.9).total_variation == 0.0
    assert warmed_up(config, 12.5).mask_area == pytest.approx(0.05)  # half-way up the ramp
    assert warmed_up(config, 14.0).total_variation == pytest.approx(0.05) and warmed_up(config, 30).mask_area == 0.1
    assert [selectable(config, e) for e in (13, 14, 15)] == [False, True, True]
    plain = TrainConfig(loss=LossWeights(mask_area=0.0, total_variation=0.0, contrast=0.0, unimodality=0.0,
                                         temporal_entropy=0.0), regularizer_start_epoch=11)
    assert selectable(plain, 1)  # nothing to wait for without regularizers
    immediate = TrainConfig(loss=LossWeights(mask_area=0.1))
    assert warmed_up(immediate, 0.0).mask_area == 0.1 and selectable(immediate, 1)


def test_a_motion_trunk_with_max_cell_pooling_trains_and_lowers_the_loss(tiny_dataset, tmp_path):
    """The options of footage the reference recipe was not tuned for, through the training CLI."""
    run = tmp_path / "run"
    options = ["model.trunk_input=motion", "model.cell_pool=max", "model.mask_input=motion"]
    assert run_train(tiny_dataset, run, *tiny_overrides(3, *options)) == 0
    losses = [h["train"]["ce"] for h in history(run)]
    assert losses[-1] < losses[0] - 0.02, losses
    config = load_checkpoint(run / "best.pt").model_config
    assert (config.trunk_input, config.cell_pool, config.mask_input) == ("motion", "max", "motion")


# The tiny random trunk with the motion prior stays at chance on 16 validation clips for 4 epochs, so there the
# regularizers start at a fixed epoch instead of once learning shows.
@pytest.mark.parametrize("variant", [
    ["train.early_open_mask=true"],
    ["model.mask_prior=motion", "model.mask_prior_weight=0.5", "model.temporal_prior=motion",
     "train.regularizer_start=epoch", "train.regularizer_start_epoch=2", "train.epochs=6", "train.lr=1e-2"],
], ids=["open-mask", "motion-priors"])
def test_the_spatial_softmax_recipe_at_tiny_size_trains_and_lowers_the_loss(tiny_dataset, tmp_path, variant):
    """The generalization suite's combinations (docs/benchmark.md, "A mask with a peak"): motion trunk,
    spatial-softmax mask (held open, or with the motion priors on the mask and the temporal weights), max pooling until the regularizers start, then
    the regularizers with the complement term, shrunk to the tiny model."""
    run = tmp_path / "run"
    options = ["model.trunk_input=motion", "model.mask_activation=spatial_softmax", "train.early_cell_pool=max",
               "train.regularizer_start=learning", "train.learning_threshold=0.05",
               "train.regularizer_warmup_epochs=1", "train.loss.mask_complement=0.5", "train.loss.mask_area=0.3",
               *variant]
    assert run_train(tiny_dataset, run, *tiny_overrides(4, *options)) == 0
    records = history(run)
    losses = [h["train"]["ce"] for h in records]
    assert losses[-1] < losses[0] - 0.02, losses
    assert any(h["train"]["mask_complement"] > 0 for h in records)  # the regularizers started
    config = load_checkpoint(run / "best.pt").model_config
    assert (config.trunk_input, config.mask_activation, config.cell_pool) == ("motion", "spatial_softmax", "average")
    assert config.mask_prior == config.temporal_prior == ("motion" if "model.mask_prior=motion" in variant else "none")


@pytest.mark.parametrize("schedule", [
    ["train.lr_schedule=cosine", "train.lr_warmup_epochs=1", "train.regularizer_start=learning",
     "train.learning_threshold=0.05", "train.loss.mask_area=0.1"],
    ["train.plateau_after_learning=true", "train.lr_patience=0"],
    ["train.early_cell_pool=max", "train.regularizer_start_epoch=1", "train.regularizer_warmup_epochs=1",
     "train.loss.mask_area=0.1"],
    ["train.loss.mask_complement=0.5", "train.loss.mask_area=0.1", "train.regularizer_start_epoch=1"],
    ["train.loss.open_classification=0.5", "train.loss.mask_complement=0.5", "train.regularizer_start_epoch=1"],
], ids=["cosine+learning-start", "plateau-after-learning", "early-max-pooling", "mask-complement",
        "open-classification"])
def test_schedules_train_and_lower_the_loss(tiny_dataset, tmp_path, schedule):
    run = tmp_path / "run"
    assert run_train(tiny_dataset, run, *tiny_overrides(4, *schedule)) == 0
    records = history(run)
    losses = [h["train"]["ce"] for h in records]
    assert losses[-1] < losses[0] - 0.02, losses
    if "train.lr_schedule=cosine" in schedule:
        rates = [h["lr"] for h in records]
        assert rates[-1] < rates[1], rates  # annealing
    if "train.early_cell_pool=max" in schedule:  # best.pt serves average pooling, from an epoch pooled by it
        assert load_checkpoint(run / "best.pt").model_config.cell_pool == "average"
        best = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
        assert len(best["history"]) >= 2  # epoch 1, pooled by max alone, cannot be best.pt
    for term in ("mask_complement", "open_classification"):  # computed once the regularizers start, not before
        if f"train.loss.{term}=0.5" in schedule:
            values = [h["train"][term] for h in records]
            assert values[0] == 0.0 and all(v > 0 for v in values[1:]), (term, values)
