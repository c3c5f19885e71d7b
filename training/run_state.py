"""Where a run starts: the configuration of the run to resume (checked against the one asked for), and the
model, optimizer, scheduler, progress and history, restored from its last.pt or fresh."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stanet.checkpoint import Checkpoint, load_checkpoint, load_state
from stanet.constants import LAST_CHECKPOINT
from stanet.model import AttentionRecognizer, build_model
from training.config import RunConfig, TrainConfig, run_config_from_dict
from training.loop import TrainingError
from training.optim import build_optimizer
from training.regularizer_schedule import learning_started, regularizer_start, selectable
from training.run_data import RunData

# Fields that may differ when resuming: they extend or bound the run without changing what it computes.
RESUMABLE_CHANGES = {"epochs", "max_minutes", "num_workers", "persistent_workers", "prefetch_factor",
                     "checkpoint_every_steps", "backbone_weights", "dist_timeout_minutes"}


def stored_run_config(out_dir: Path) -> dict[str, Any] | None:
    """The run configuration saved in `out_dir`'s last.pt (None when there is none: start_or_resume says so)."""
    last_path = out_dir / LAST_CHECKPOINT
    return load_checkpoint(last_path).extra["run_config"] if last_path.is_file() else None


def start_or_resume(out_dir: Path, run_config: RunConfig | None, resume: bool) -> tuple[RunConfig, Checkpoint | None]:
    """The run's configuration and, with `resume`, the checkpoint to continue from. A resumed run keeps its
    model section; `run_config=None` continues with the run's own training section too."""
    last_path = out_dir / LAST_CHECKPOINT
    if resume:
        if not last_path.is_file():
            raise TrainingError(f"--resume: {last_path} does not exist; start without --resume")
        checkpoint = load_checkpoint(last_path)
        stored = run_config_from_dict(checkpoint.extra["run_config"])
        if run_config is not None:
            _check_resume_config(stored, run_config)
            stored = RunConfig(model=stored.model, train=run_config.train)
        return stored, checkpoint
    if run_config is None:
        raise TrainingError("a run configuration is needed (a preset, a config file or --set overrides)")
    if last_path.exists():
        raise TrainingError(f"{out_dir} already holds a run ({LAST_CHECKPOINT}); use --resume to continue it "
                            f"or choose another --out")
    return run_config, None


def _differences(stored: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: run has {a!r}, now {b!r}")
    return out


def _check_resume_config(stored: RunConfig, current: RunConfig) -> None:
    diffs = [d for d in _differences(stored.to_dict(), current.to_dict())
             if not (d.startswith("train.") and d.split(":")[0][len("train."):] in RESUMABLE_CHANGES)]
    if diffs:
        raise TrainingError("--resume with a configuration that differs from the run's: " + "; ".join(diffs)
                            + " (resume without --preset/--config/--set to use the run's own)")


def _fresh_progress() -> dict[str, Any]:
    return {"epoch": 0, "step": 0, "best_accuracy": -1.0, "best_loss": math.inf, "best_epoch": -1,
            "learned_epoch": None}


@dataclass
class RunState:
    """Everything last.pt holds besides the configuration and the class names."""

    model: AttentionRecognizer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    progress: dict[str, Any] = field(default_factory=_fresh_progress)  # epoch, step (within it), best_*
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per finished epoch

    def regularizer_start(self, config: TrainConfig) -> float:
        return regularizer_start(config, self.progress)

    def end_epoch(self, config: TrainConfig, train_metrics: dict[str, float], val_metrics: dict[str, float],
                  elapsed_s: float, num_classes: int) -> tuple[dict[str, Any], bool]:
        """Step the scheduler, move on to the next epoch and keep its record; returns the record and whether
        the epoch's model is the best so far (best.pt)."""
        epoch = self.progress["epoch"]
        if self.progress.get("learned_epoch") is None and learning_started(config, val_metrics["accuracy"],
                                                                            num_classes):
            self.progress["learned_epoch"] = epoch + 1  # the gathered accuracy: every rank agrees
        learned = self.progress.get("learned_epoch") is not None
        if config.lr_schedule == "plateau" and (learned or not config.plateau_after_learning):
            self.scheduler.step(val_metrics["loss"])  # the gathered loss: every rank steps the same way
        lr = self.optimizer.param_groups[0]["lr"]
        improved = selectable(config, epoch + 1, self.regularizer_start(config)) and (
            val_metrics["accuracy"], -val_metrics["loss"]) > (self.progress["best_accuracy"],
                                                               -self.progress["best_loss"])
        self.progress.update(epoch=epoch + 1, step=0)
        if improved:
            self.progress.update(best_accuracy=val_metrics["accuracy"], best_loss=val_metrics["loss"],
                                 best_epoch=epoch + 1)
        record = {"epoch": epoch + 1, "lr": lr, "train": train_metrics, "val": val_metrics, "elapsed_s": elapsed_s}
        self.history.append(record)
        return record, improved


def restore_or_init(run_config: RunConfig, data: RunData, device: torch.device, checkpoint: Checkpoint | None,
                    checkpoint_path: Path) -> RunState:
    """A fresh model (seeded; the trunk from `train.backbone_weights` or the feature cache), or the state of
    `checkpoint` (read from `checkpoint_path`) loaded into the same architecture."""
    config = run_config.train
    torch.manual_seed(config.seed)
    fresh = checkpoint is None
    model = build_model(data.model_config, backbone_weights=(config.backbone_weights or None) if fresh else None)
    if data.cache is not None and fresh:
        data.cache.load_backbone(model)  # the checkpoint stays a complete model
    model = model.to(device)
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.lr_factor,
                                                           patience=config.lr_patience)
    state = RunState(model=model, optimizer=optimizer, scheduler=scheduler)
    if checkpoint is not None:
        if list(checkpoint.class_names) != data.class_names:
            raise TrainingError(f"--resume: the run was trained on classes {list(checkpoint.class_names)[:5]}..., "
                                f"{data.source} has {data.class_names[:5]}...")
        load_state(model, checkpoint.state_dict, source=f"checkpoint {checkpoint_path}")
        optimizer.load_state_dict(checkpoint.extra["optimizer"])
        scheduler.load_state_dict(checkpoint.extra["scheduler"])
        state.progress = dict(checkpoint.extra["progress"])
        state.history = list(checkpoint.extra.get("history", []))
    return state
