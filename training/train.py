"""`stanet train`: fit the attention recognizer on a dataset in the generic format.

Adam, ReduceLROnPlateau on the *validation* loss, model selection on validation accuracy (never the test
split), atomic checkpoints (`last.pt` every epoch, `best.pt` on improvement), `--resume` from `last.pt`
mid-epoch included, TensorBoard scalars, mixed precision on CUDA. Every random draw derives from
(seed, epoch, step), so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from stanet.checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint
from stanet.constants import BEST_CHECKPOINT, LAST_CHECKPOINT
from stanet.dataset_format import DatasetFormatError, load_dataset
from stanet.losses import LossWeights, attention_loss
from stanet.model import AttentionRecognizer, build_model
from stanet.model.preprocess import normalize_clip
from training.config import RunConfig, TrainConfig, resolve_run_config, run_config_from_dict
from training.data import ClipDataset, ClipSpec, EpochBatchSampler
from training.features.dataset import open_cache_for_training
from training.optim import build_optimizer

log = logging.getLogger("stanet.train")

# Fields that may differ when resuming: they extend or bound the run without changing what it computes.
RESUMABLE_CHANGES = {"epochs", "max_minutes", "num_workers", "checkpoint_every_steps", "backbone_weights"}


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, missing validation split, mismatched resume)."""


class StopRequest:
    """Set by SIGINT/SIGTERM: the current step finishes, last.pt is written, then training stops. A second
    Ctrl-C stops at once (losing only the step in flight: last.pt still holds the state before it)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} was asked for but CUDA is not available on this machine")
    return device


def step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63)


def make_loader(dataset: ClipDataset, config: TrainConfig, *, shuffle: bool, epoch: int,
                start_batch: int = 0) -> DataLoader:
    sampler = EpochBatchSampler(len(dataset), config.batch_size, shuffle=shuffle, seed=config.seed, epoch=epoch,
                                start_batch=start_batch)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=config.num_workers,
                      persistent_workers=False, pin_memory=False)


def autocast_for(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return nullcontext()


def warmed_up(config: TrainConfig, epochs_done: float) -> LossWeights:
    """The regularizer weights after `epochs_done` (fractional) epochs of the linear warm-up."""
    if config.regularizer_warmup_epochs <= 0:
        return config.loss
    scale = min(1.0, epochs_done / config.regularizer_warmup_epochs)
    return LossWeights(**{f: getattr(config.loss, f) * scale for f in config.loss.__dataclass_fields__})


def forward_loss(model: AttentionRecognizer, batch: dict[str, torch.Tensor], weights: LossWeights,
                 device: torch.device, amp: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    labels = batch["label"].to(device)
    with autocast_for(device, amp):
        if "features" in batch:  # a feature cache: the (frozen) trunk already ran
            out = model.forward_head(batch["features"].to(device, non_blocking=True).float())  # (B, T, C, h, w)
        else:
            out = model(normalize_clip(batch["clip"].to(device, non_blocking=True)))  # (B, T, 3, H, W)
    loss, terms = attention_loss(out.logits, labels, out.spatial_attention, out.temporal_attention_steps, weights)
    correct = (out.logits.argmax(dim=1) == labels).sum()
    return loss, terms, correct


def train_one_epoch(model: AttentionRecognizer, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    config: TrainConfig, device: torch.device, epoch: int, *, first_step: int = 0,
                    scaler: torch.amp.GradScaler | None = None, deadline: float | None = None,
                    on_step=None, stop: StopRequest | None = None, progress: bool = True) -> dict[str, float]:
    """One pass over `loader`; returns mean loss, accuracy and regularizer terms. Raises TrainingError on a
    non-finite loss. Stops early with `stopped=1` when `deadline` (time.monotonic) passes and with
    `stopped=2` when `stop` is requested (after the step in flight)."""
    model.train()
    totals: dict[str, float] = {}
    seen = correct_total = 0
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", disable=not progress, leave=False,
               total=len(loader))
    step = first_step
    steps_per_epoch = first_step + len(loader)
    stopped = 0
    for batch in bar:
        torch.manual_seed(step_seed(config.seed, epoch, step))
        weights = warmed_up(config, epoch + step / max(steps_per_epoch, 1))
        loss, terms, correct = forward_loss(model, batch, weights, device, config.amp)
        if not torch.isfinite(loss):
            detail = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
            raise TrainingError(f"non-finite loss at epoch {epoch + 1} step {step + 1} ({detail}); the last "
                                f"checkpoint is untouched - lower train.lr or check the data, then --resume")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        n = batch["label"].shape[0]
        seen += n
        correct_total += int(correct)
        totals["loss"] = totals.get("loss", 0.0) + loss.item() * n
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + value.item() * n
        step += 1
        bar.set_postfix(loss=f"{totals['loss'] / seen:.3f}", acc=f"{correct_total / seen:.3f}")
        if on_step is not None:
            on_step(step)
        if stop is not None and stop.requested:
            stopped = 2
            break
        if deadline is not None and time.monotonic() > deadline:
            stopped = 1
            break
    bar.close()
    metrics = {name: value / max(seen, 1) for name, value in totals.items()}
    metrics.update(accuracy=correct_total / max(seen, 1), clips=seen, next_step=step, stopped=stopped)
    return metrics


@torch.no_grad()
def evaluate_loss(model: AttentionRecognizer, loader: DataLoader, weights: LossWeights,
                  device: torch.device, amp: bool) -> dict[str, float]:
    model.eval()
    seen = correct_total = 0
    loss_total = ce_total = 0.0
    for batch in loader:
        loss, terms, correct = forward_loss(model, batch, weights, device, amp)
        n = batch["label"].shape[0]
        seen += n
        correct_total += int(correct)
        loss_total += loss.item() * n
        ce_total += terms["ce"].item() * n
    return {"loss": loss_total / max(seen, 1), "ce": ce_total / max(seen, 1),
            "accuracy": correct_total / max(seen, 1), "clips": seen}


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


def train(data_dir: str | Path | None, out_dir: str | Path, run_config: RunConfig | None, *, resume: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train and return a summary {best_val_accuracy, best_epoch, epochs_run, wall_seconds, ...}.
    With `resume`, `run_config=None` continues with the run's own configuration."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    last_path, best_path = out_dir / LAST_CHECKPOINT, out_dir / BEST_CHECKPOINT
    state: dict[str, Any] = {}
    if resume:
        if not last_path.is_file():
            raise TrainingError(f"--resume: {last_path} does not exist; start without --resume")
        ckpt = load_checkpoint(last_path)
        stored = run_config_from_dict(ckpt.extra["run_config"])
        if run_config is not None:
            _check_resume_config(stored, run_config)
            stored = RunConfig(model=stored.model, train=run_config.train)
        run_config = stored
        state = ckpt.extra
    elif run_config is None:
        raise TrainingError("a run configuration is needed (a preset, a config file or --set overrides)")
    elif last_path.exists():
        raise TrainingError(f"{out_dir} already holds a run ({LAST_CHECKPOINT}); use --resume to continue it "
                            f"or choose another --out")
    config = run_config.train

    if config.features:  # precomputed trunk features (training/features/): the trunk is frozen
        cached = open_cache_for_training(config.features, run_config.model, config)
        class_names, train_set, val_set = list(cached.class_names), cached.train, cached.val
        model_config = run_config.model_config(len(class_names))
        data_dir = config.features
    else:
        if data_dir is None:
            raise TrainingError("a dataset directory (--data) is needed, or a feature cache (--features)")
        dataset = load_dataset(data_dir)
        class_names = list(dataset.class_names)
        model_config = run_config.model_config(len(class_names))
        spec = ClipSpec(model_config.clip_length, model_config.height, model_config.width)
        if not dataset.split("train"):
            raise TrainingError(f"{data_dir} has no clips with split 'train'")
        if not dataset.split("val"):
            raise TrainingError(f"{data_dir} has no clips with split 'val': learning-rate schedule and model "
                                f"selection use the validation split (never the test split)")
        train_set = ClipDataset(dataset.split("train"), spec, train=True, seed=config.seed,
                                cache=config.cache_videos, flip=config.flip, progress=progress,
                                description="train videos")
        val_set = ClipDataset(dataset.split("val"), spec, train=False, seed=config.seed, cache=config.cache_videos,
                              progress=progress, description="val videos")
    for name, part in (("train", train_set), ("val", val_set)):
        if len(part) == 0:
            raise TrainingError(f"every {name} video of {data_dir} is unreadable ({len(part.skipped)} skipped)")

    device = select_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(model_config, backbone_weights=(config.backbone_weights or None) if not state else None)
    if config.features and not state:
        cached.load_backbone(model)  # the checkpoint stays a complete model
    model = model.to(device)
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.lr_factor,
                                                           patience=config.lr_patience)
    scaler = torch.amp.GradScaler("cuda") if config.amp and device.type == "cuda" else None
    progress_state = {"epoch": 0, "step": 0, "best_accuracy": -1.0, "best_loss": math.inf, "best_epoch": -1}
    history: list[dict[str, Any]] = []
    if state:
        if list(ckpt.class_names) != class_names:
            raise TrainingError(f"--resume: the run was trained on classes {list(ckpt.class_names)[:5]}..., "
                                f"{data_dir} has {class_names[:5]}...")
        load_state(model, ckpt.state_dict, source=f"checkpoint {last_path}")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        progress_state = dict(state["progress"])
        history = list(state.get("history", []))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run_config.json").write_text(json.dumps(run_config.to_dict(), indent=2) + "\n")
    from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - heavy import, only when training

    writer = SummaryWriter(str(out_dir / "tensorboard"))

    def save(path: Path) -> None:
        save_checkpoint(path, model, class_names, run_config=run_config.to_dict(), progress=dict(progress_state),
                        optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), history=history)

    def on_step(step: int) -> None:
        progress_state["step"] = step
        if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0:
            save(last_path)

    deadline = started + config.max_minutes * 60 if config.max_minutes > 0 else None
    stop = StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    stopped_early = False
    try:
        while progress_state["epoch"] < config.epochs and not stopped_early:
            epoch, first_step = progress_state["epoch"], progress_state["step"]
            loader = make_loader(train_set, config, shuffle=True, epoch=epoch, start_batch=first_step)
            train_metrics = train_one_epoch(model, loader, optimizer, config, device, epoch, first_step=first_step,
                                            scaler=scaler, deadline=deadline, on_step=on_step, stop=stop,
                                            progress=progress)
            if train_metrics["stopped"] == 2:
                save(last_path)  # mid-epoch: progress_state["step"] says which batches are done
                raise KeyboardInterrupt
            stopped_early = bool(train_metrics["stopped"])
            val_metrics = evaluate_loss(model, make_loader(val_set, config, shuffle=False, epoch=0), config.loss,
                                        device, config.amp)
            scheduler.step(val_metrics["loss"])
            lr = optimizer.param_groups[0]["lr"]
            improved = (val_metrics["accuracy"], -val_metrics["loss"]) > (progress_state["best_accuracy"],
                                                                         -progress_state["best_loss"])
            progress_state.update(epoch=epoch + 1, step=0)
            if improved:
                progress_state.update(best_accuracy=val_metrics["accuracy"], best_loss=val_metrics["loss"],
                                      best_epoch=epoch + 1)
            record = {"epoch": epoch + 1, "lr": lr, "train": train_metrics, "val": val_metrics,
                      "elapsed_s": round(time.monotonic() - started, 1)}
            history.append(record)
            for name, value in train_metrics.items():
                if name not in ("clips", "next_step", "stopped"):
                    writer.add_scalar(f"train/{name}", value, epoch + 1)
            for name in ("loss", "ce", "accuracy"):
                writer.add_scalar(f"val/{name}", val_metrics[name], epoch + 1)
            writer.add_scalar("lr", lr, epoch + 1)
            writer.flush()
            save(last_path)
            if improved:
                save(best_path)
            _print(progress, f"epoch {epoch + 1}/{config.epochs}  train loss {train_metrics['loss']:.3f} "
                             f"acc {train_metrics['accuracy']:.3f}  val loss {val_metrics['loss']:.3f} "
                             f"acc {val_metrics['accuracy']:.3f}  lr {lr:.2g}{'  *best' if improved else ''}"
                             f"  [{record['elapsed_s']:.0f}s]")
            with open(out_dir / "history.jsonl", "a") as handle:
                handle.write(json.dumps(record) + "\n")
        if stopped_early:
            _print(progress, f"time limit of {config.max_minutes} min reached after epoch {progress_state['epoch']}")
    except KeyboardInterrupt:
        writer.close()  # a second Ctrl-C mid-step: last.pt keeps the state before that step
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    writer.close()
    return {"best_val_accuracy": progress_state["best_accuracy"], "best_epoch": progress_state["best_epoch"],
            "epochs_run": progress_state["epoch"], "wall_seconds": round(time.monotonic() - started, 1),
            "skipped_videos": len(train_set.skipped) + len(val_set.skipped), "history": history}


def _print(enabled: bool, message: str) -> None:
    if enabled:
        tqdm.write(message)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset directory (classes.txt + annotations.jsonl)")
    parser.add_argument("--features", metavar="CACHE_DIR",
                        help="train on a `stanet features extract` cache instead of --data (sets train.features; "
                             "needs model.freeze_backbone=true)")
    parser.add_argument("--out", required=True, help="run directory for best.pt, last.pt and logs")
    parser.add_argument("--preset", help="named configuration: synthetic, demo, paper")
    parser.add_argument("--config", help="YAML or JSON file with 'model' and 'train' sections")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override one field, e.g. --set train.lr=3e-4 --set model.hidden_channels=64")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        given = args.preset or args.config or args.overrides
        run_config = resolve_run_config(args.preset, args.config, args.overrides) if given else None
        if run_config is None and not args.resume:
            run_config = resolve_run_config("synthetic")
        if args.features and run_config is not None:
            run_config = RunConfig(model=run_config.model, train=replace(run_config.train, features=args.features))
        if args.data and args.features:
            raise TrainingError("--data and --features exclude each other: a run reads the videos or the cache")
        if not args.data and not args.features and not args.resume:
            raise TrainingError("--data DIR (videos) or --features CACHE_DIR (a feature cache) is needed")
        summary = train(args.data, args.out, run_config, resume=args.resume, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted: progress saved to {Path(args.out) / LAST_CHECKPOINT}; continue with "
              f"`stanet train --data {args.data} --out {args.out} --resume`", file=sys.stderr)
        return 130
    except (TrainingError, DatasetFormatError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"stanet train: error: {exc}", file=sys.stderr)
        return 2
    print(f"best validation accuracy {summary['best_val_accuracy']:.3f} at epoch {summary['best_epoch']} "
          f"({summary['epochs_run']} epochs, {summary['wall_seconds']:.0f}s); checkpoints in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
