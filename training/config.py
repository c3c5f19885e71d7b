"""Training configuration: a frozen TrainConfig, named presets, and overrides from a YAML/JSON file or
`--set section.field=value` flags. The resolved run config is saved in every checkpoint."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from stanet.config import CELL_POOLS, ModelConfig
from training.losses import LossWeights


LR_SCHEDULES = ("plateau", "cosine")
REGULARIZER_STARTS = ("epoch", "learning")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Model architecture lives in ModelConfig; the number of classes comes from the data."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_patience: int = 2  # ReduceLROnPlateau on the validation loss
    lr_factor: float = 0.3
    # "plateau": ReduceLROnPlateau (lr_patience, lr_factor); "cosine": linear warmup over lr_warmup_epochs,
    # then a cosine to lr * lr_floor at the end of the run's budget (epochs or max_minutes, whichever ends first).
    lr_schedule: str = "plateau"
    lr_warmup_epochs: float = 0.0  # cosine only
    lr_floor: float = 0.05  # cosine only: the last learning rate, as a fraction of lr
    # Plateau only: the scheduler counts bad epochs only once learning started (training.regularizer_schedule),
    # so a run that sits at chance for its first epochs keeps its learning rate.
    plateau_after_learning: bool = False
    grad_clip: float = 5.0  # max gradient norm, 0 = off
    loss: LossWeights = field(default_factory=LossWeights)
    regularizer_warmup_epochs: float = 0.0  # regularizer weights ramp linearly from 0 over this many epochs
    regularizer_start_epoch: float = 0.0  # regularizers are off before this epoch, then warm up
    # "epoch": the regularizers start at regularizer_start_epoch; "learning": at the first epoch after
    # validation accuracy showed learning (learning_threshold), and not before regularizer_start_epoch.
    regularizer_start: str = "epoch"
    learning_threshold: float = 0.25  # learning started: val accuracy >= chance + this * (1 - chance)
    # "" or a cell pooling (stanet.config.CELL_POOLS) the model uses while the regularizers are off, blended
    # into model.cell_pool as they ramp in (training.regularizer_schedule.early_pool_weight); best.pt only
    # once model.cell_pool pools alone. "max" lets a small actor on clutter be found before average pooling,
    # which keeps the mask on it, has to carry it.
    early_cell_pool: str = ""
    # Hold the mask open (the features meet 1, the mask net gets no gradient) while the regularizers are off,
    # and blend it in as they ramp (training.regularizer_schedule.open_mask_weight); best.pt only once the
    # mask acts alone.
    early_open_mask: bool = False
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision, used on CUDA only
    num_workers: int = 0  # DataLoader worker processes (decoding runs there when cache_videos is off)
    persistent_workers: bool = True  # keep the workers (and their open state) from one epoch to the next
    prefetch_factor: int = 2  # batches each worker prepares ahead (used when num_workers > 0)
    cache_videos: bool = True  # decode every video once and keep it in memory
    flip: bool = False  # horizontal flip augmentation (off for data whose classes are not mirror-symmetric)
    crop_min_area: float = 1.0  # random resized crop: area fraction drawn from [crop_min_area, 1]
    crop_max_aspect: float = 1.0  # ... and aspect ratio from [1/a, a]; both 1.0 = no crop (docs/distributed.md)
    sync_batchnorm: bool = True  # under torchrun: BatchNorm statistics over the global batch, not each rank's
    dist_timeout_minutes: float = 10.0  # a collective waiting longer than this fails the job (a hung rank)
    max_minutes: float = 0.0  # stop after this much training time, 0 = no limit
    checkpoint_every_steps: int = 0  # also save last.pt every N steps inside an epoch, 0 = epoch ends only
    backbone_weights: str = ""  # local torchvision state-dict file for resnet18/resnet50 (nothing is downloaded)
    backbone_lr_multiplier: float = 1.0  # the trunk's learning rate is lr * this (fine-tuning: e.g. 0.1)
    features: str = ""  # a `stanet features extract` cache to train on instead of the videos (frozen trunk)
    # A "background" class (stanet.constants.BACKGROUND_CLASS, after the dataset's classes) learned from the
    # frames outside every interval / segment (training.windows; docs/datasets.md, "Untrimmed videos").
    background: bool = False
    # false: a background window's cross-entropy does not reach the mask (its regularizers still do): it holds
    # no action to point at, so only clips with one teach "where" (docs/timeline.md, "Background and the mask").
    background_moves_mask: bool = True
    background_min_idle: float = 0.5  # shortest idle stretch that gives a background window, x the clip span

    def __post_init__(self) -> None:
        problems = []
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.backbone_lr_multiplier <= 0:
            problems.append(f"backbone_lr_multiplier must be > 0 (freeze the trunk with model.freeze_backbone=true), "
                            f"got {self.backbone_lr_multiplier}")
        if not 0 < self.lr_factor < 1:
            problems.append(f"lr_factor must be in (0, 1), got {self.lr_factor}")
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lr_warmup_epochs < 0 or (self.lr_warmup_epochs and self.lr_schedule != "cosine"):
            problems.append(f"lr_warmup_epochs must be >= 0 and is used by lr_schedule=cosine only, got "
                            f"{self.lr_warmup_epochs} with {self.lr_schedule}")
        if not 0 <= self.lr_floor <= 1:
            problems.append(f"lr_floor must be in [0, 1], got {self.lr_floor}")
        if self.plateau_after_learning and self.lr_schedule != "plateau":
            problems.append("plateau_after_learning needs lr_schedule=plateau")
        if self.early_cell_pool and self.early_cell_pool not in CELL_POOLS:
            problems.append(f"early_cell_pool must be empty or one of {', '.join(CELL_POOLS)}, "
                            f"got {self.early_cell_pool!r}")
        if self.regularizer_start not in REGULARIZER_STARTS:
            problems.append(f"regularizer_start must be one of {', '.join(REGULARIZER_STARTS)}, "
                            f"got {self.regularizer_start!r}")
        if not 0 < self.learning_threshold < 1:
            problems.append(f"learning_threshold must be in (0, 1), got {self.learning_threshold}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be >= 0, got {self.num_workers}")
        if self.prefetch_factor < 1:
            problems.append(f"prefetch_factor must be >= 1, got {self.prefetch_factor}")
        if not 0 < self.crop_min_area <= 1:
            problems.append(f"crop_min_area must be in (0, 1], got {self.crop_min_area}")
        if self.crop_max_aspect < 1:
            problems.append(f"crop_max_aspect must be >= 1, got {self.crop_max_aspect}")
        if not 0 < self.background_min_idle <= 1:
            problems.append(f"background_min_idle must be in (0, 1] (a fraction of the clip span), "
                            f"got {self.background_min_idle}")
        if self.background and self.features:
            problems.append("background needs the videos (idle stretches are cut from them), not a feature cache")
        if self.dist_timeout_minutes <= 0:
            problems.append(f"dist_timeout_minutes must be > 0, got {self.dist_timeout_minutes}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs except the data: model fields (without num_classes) and training fields."""

    model: dict[str, Any]
    train: TrainConfig

    def model_config(self, num_classes: int) -> ModelConfig:
        return ModelConfig(num_classes=num_classes, **self.model)

    def to_dict(self) -> dict[str, Any]:
        return {"model": dict(self.model), "train": dataclasses.asdict(self.train)}


# Named starting points. "synthetic" is the reference preset of docs/benchmark.md; "paper" is the recipe of
# docs/paper.md, "Training recipe", on ResNet-50 features (lambdas converted to the mean-normalized terms of
# training.losses: docs/paper.md, "Loss and regularizers").
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "synthetic": {
        "model": {"clip_length": 16, "height": 32, "width": 32, "backbone": "compact", "backbone_width": 32,
                  "hidden_channels": 32, "attention_dim": 32, "channel_dropout": 0.1},
        "train": {"epochs": 24, "batch_size": 32, "lr": 2e-3, "weight_decay": 1e-4, "max_minutes": 19.0,
                  "lr_patience": 4,
                  # Regularizers late, once cross-entropy has found the actor: from the start they push the mask off it
                  # (docs/benchmark.md, "How the reference got here").
                  "regularizer_start_epoch": 11, "regularizer_warmup_epochs": 3,
                  "loss": {"total_variation": 0.05, "contrast": 0.0, "unimodality": 0.0, "mask_area": 0.1,
                           "temporal_entropy": 0.0}},
    },
    "demo": {
        "model": {"clip_length": 16, "height": 32, "width": 32, "backbone": "compact", "backbone_width": 16,
                  "hidden_channels": 32, "attention_dim": 32, "channel_dropout": 0.1},
        "train": {"epochs": 20, "batch_size": 32, "lr": 2e-3, "max_minutes": 5.0, "regularizer_warmup_epochs": 5,
                  "lr_patience": 5,
                  "loss": {"total_variation": 0.05, "contrast": 0.1, "unimodality": 0.1, "mask_area": 0.1,
                           "temporal_entropy": 0.3}},
    },
    # The dataclass defaults (ModelConfig, TrainConfig) and nothing else: the base for a --config or --set
    # list that spells out its whole recipe, unaffected by what DEFAULT_PRESET becomes.
    "plain": {"model": {}, "train": {}},
    "paper": {
        "model": {"clip_length": 16, "height": 224, "width": 224, "backbone": "resnet50", "freeze_backbone": True,
                  "hidden_channels": 512, "attention_dim": 256, "channel_dropout": 0.2},
        "train": {"epochs": 200, "batch_size": 20, "lr": 1e-4, "weight_decay": 1e-4, "lr_patience": 5,
                  "lr_factor": 0.1,
                  # paper: 1e-5 * sum over B=20, T, 84 pixel pairs; 1e-4 * sum over pixels; 1 * mean
                  "loss": {"total_variation": 0.27, "contrast": 0.16, "unimodality": 1.0, "mask_area": 0.0}},
    },
}


# What `stanet train` (and `stanet features extract`) start from when no --preset is given; --config and --set
# apply on top of it. Chosen on the generalization suite and the untrimmed benchmark with background windows
# (docs/benchmark.md, "The general recipe on the suite"; docs/timeline.md, "The default recipe with background").
DEFAULT_PRESET = "general"


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `update` over `base`, recursively. Nested dicts are copied, never shared, so the `--set`
    overrides written into the result cannot change a preset (PRESETS) for the rest of the process."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# The reference's model and schedule with motion for "where" and "when": the trunk sees each frame with its
# camera-compensated motion, the mask's scores add the log of how much moves in each cell, the temporal
# scores the log of how much that changes under the mask, and the regularizers start once validation shows
# learning, with the complement term (what the mask deletes must not classify) so the mask cannot keep the
# background and delete the actor. Chosen on the generalization suite (docs/benchmark.md, "The general
# recipe on the suite"); the bound on the mask's learned scores was measured there too and is not in it (with
# background it inverted one untrimmed seed's "when": docs/benchmark.md, "The bound on the suite: not the default").
PRESETS["general"] = _merge(PRESETS["synthetic"], {
    "model": {"trunk_input": "motion", "mask_activation": "sigmoid", "mask_prior": "motion",
              "temporal_prior": "motion"},
    "train": {"early_cell_pool": "max", "regularizer_start": "learning", "regularizer_start_epoch": 0,
              "loss": {"mask_area": 0.3, "mask_complement": 0.5}},
})


def _parse_value(text: str) -> Any:
    """A `--set` value: int, then float (YAML 1.1 would read 3e-3 as a string), then YAML (true, null, lists)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _check_keys(values: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown {where} field(s) {unknown}; known: {sorted(allowed)}")


def resolve_run_config(preset: str | None = None, config_file: str | Path | None = None,
                       overrides: list[str] | tuple[str, ...] = (), *,
                       base: dict[str, Any] | None = None) -> RunConfig:
    """`base` (a run config's dict, e.g. a resumed run's own) or the plain defaults, then the preset, then the
    file, then `section.field=value` overrides (later wins)."""
    values: dict[str, Any] = _merge({"model": {}, "train": {}}, base or {})
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; presets: {sorted(PRESETS)}")
        values = _merge(values, PRESETS[preset])
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ValueError(f"config file {path} does not exist")
        try:
            loaded = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"config file {path} does not parse: {exc}") from None
        if not isinstance(loaded, dict) or not set(loaded) <= {"model", "train"}:
            raise ValueError(f"config file {path} must be a mapping with sections 'model' and/or 'train'")
        values = _merge(values, loaded)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or parts[0] not in ("model", "train"):
            raise ValueError(f"override {item!r} must look like model.FIELD=VALUE or train.FIELD=VALUE "
                             f"(train.loss.FIELD=VALUE for loss weights)")
        target = values.setdefault(parts[0], {})
        for part in parts[1:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = _parse_value(text)
    model_fields = {f.name for f in fields(ModelConfig)} - {"num_classes"}
    _check_keys(values["model"], model_fields, "model")
    train_values = dict(values["train"])
    _check_keys(train_values, {f.name for f in fields(TrainConfig)}, "train")
    loss_values = train_values.pop("loss", {}) or {}
    _check_keys(loss_values, {f.name for f in fields(LossWeights)}, "train.loss")
    train = TrainConfig(loss=LossWeights(**loss_values), **train_values)
    model = ModelConfig(num_classes=2, **values["model"])  # validate the model fields now, not after loading data
    if train.loss.mask_complement > 0 and (not model.spatial_attention or model.mask_combine == "residual"):
        raise ValueError("train.loss.mask_complement needs a spatial mask that removes what it does not keep "
                         "(model.spatial_attention=true, model.mask_combine=multiply or mean_fill), got "
                         f"spatial_attention={model.spatial_attention}, mask_combine={model.mask_combine}")
    if train.loss.open_classification > 0 and not model.spatial_attention:
        raise ValueError("train.loss.open_classification needs a spatial mask to hold open "
                         "(model.spatial_attention=true)")
    return RunConfig(model=dict(values["model"]), train=train)


def add_run_config_arguments(parser: argparse.ArgumentParser, *, default_preset: str | None = None) -> None:
    """`--preset`, `--config` and `--set`, the command-line form of resolve_run_config's arguments; without
    --preset, `default_preset` is the base that --config and --set adjust."""
    default = f" (default: {default_preset}; --config and --set apply on top of it)" if default_preset else ""
    parser.add_argument("--preset", help=f"named configuration: {', '.join(PRESETS)}{default}")
    parser.add_argument("--config", help="YAML or JSON file with 'model' and 'train' sections")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override one field, e.g. --set train.lr=3e-4 --set model.hidden_channels=64")
    parser.set_defaults(default_preset=default_preset)


def run_config_given(args: argparse.Namespace) -> bool:
    """Whether any of add_run_config_arguments' arguments was given on the command line."""
    return bool(args.preset or args.config or args.overrides)


def run_config_from_arguments(args: argparse.Namespace, *, base: dict[str, Any] | None = None) -> RunConfig:
    """The run configuration of add_run_config_arguments' arguments: --preset (or, without it and without
    `base`, the parser's default preset), then --config, then --set. With `base` (a resumed run's own
    configuration) and no --preset, --config and --set adjust `base`."""
    preset = args.preset or (None if base is not None else args.default_preset)
    return resolve_run_config(preset, args.config, args.overrides, base=None if args.preset else base)


def run_config_from_dict(values: dict[str, Any]) -> RunConfig:
    train_values = dict(values["train"])
    loss = LossWeights(**train_values.pop("loss"))
    return RunConfig(model=dict(values["model"]), train=TrainConfig(loss=loss, **train_values))
