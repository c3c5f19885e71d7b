"""`stanet train`: fit the attention recognizer on a dataset in the generic format.

Adam, ReduceLROnPlateau on the *validation* loss, model selection on validation accuracy (never the test
split), atomic checkpoints (`last.pt` every epoch, `best.pt` on improvement), `--resume` from `last.pt`
mid-epoch included, TensorBoard scalars, mixed precision on CUDA. Every random draw derives from
(seed, epoch, step), so a resumed run continues exactly as an uninterrupted one would. Under torchrun the same
run is data-parallel (training.distributed, docs/distributed.md); `train.batch_size` is the global batch.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from stanet.checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint
from stanet.constants import BEST_CHECKPOINT, LAST_CHECKPOINT
from stanet.dataset_format import DatasetFormatError, load_dataset
from stanet.losses import LossWeights, attention_loss
from stanet.model import AttentionRecognizer, build_model
from stanet.model.preprocess import normalize_clip
from training.config import RunConfig, TrainConfig, resolve_run_config, run_config_from_dict
from training.data import ClipDataset, ClipSpec, CropSpec, EpochBatchSampler
from training.distributed import (SINGLE_PROCESS, DistContext, DistributedError, RankBatchSampler,
                                  init_distributed, shutdown_distributed, wrap_model)
from training.features.dataset import open_cache_for_training
from training.optim import build_optimizer

log = logging.getLogger("stanet.train")

# Fields that may differ when resuming: they extend or bound the run without changing what it computes.
RESUMABLE_CHANGES = {"epochs", "max_minutes", "num_workers", "persistent_workers", "prefetch_factor",
                     "checkpoint_every_steps", "backbone_weights", "dist_timeout_minutes"}


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, missing validation split, mismatched resume)."""


class StopRequest:
    """Set by SIGINT/SIGTERM: the current step finishes, last.pt is written, then training stops. A second
    Ctrl-C stops at once (losing only the step in flight: last.pt still holds the state before it). Signals
    within `GRACE_S` of the first count as the same request: on Ctrl-C torchrun forwards the terminal's SIGINT
    to workers that already received it."""

    GRACE_S = 2.0

    def __init__(self) -> None:
        self.requested = False
        self.first_at = 0.0

    def __call__(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.requested:
            if time.monotonic() - self.first_at > self.GRACE_S:
                raise KeyboardInterrupt
            return
        self.requested = True
        self.first_at = time.monotonic()


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {name!r} was asked for but CUDA is not available on this machine")
    return device


def step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + step) % (2**63)


def make_loader(dataset: ClipDataset, config: TrainConfig, *, shuffle: bool, epoch: int, start_batch: int = 0,
                ctx: DistContext = SINGLE_PROCESS, pin_memory: bool = False) -> DataLoader:
    """Batches in the seeded order of EpochBatchSampler (this rank's share of each under torchrun). The loader
    lives across epochs (`loader.batch_sampler.set_epoch`), so persistent workers keep decoding."""
    sampler = EpochBatchSampler(len(dataset), config.batch_size, shuffle=shuffle, seed=config.seed, epoch=epoch,
                                start_batch=start_batch)
    if ctx.enabled:
        sampler = RankBatchSampler(sampler, ctx, stand_in=shuffle)
    workers = {}
    if config.num_workers > 0:
        workers = {"persistent_workers": config.persistent_workers, "prefetch_factor": config.prefetch_factor}
    return DataLoader(dataset, batch_sampler=sampler, num_workers=config.num_workers, pin_memory=pin_memory,
                      **workers)


def autocast_for(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return nullcontext()


def warmed_up(config: TrainConfig, epochs_done: float) -> LossWeights:
    """The regularizer weights after `epochs_done` (fractional) epochs: 0 before `regularizer_start_epoch`,
    then a linear ramp over `regularizer_warmup_epochs` (the cross-entropy weight is always 1)."""
    since_start = epochs_done - config.regularizer_start_epoch
    if since_start < 0:
        scale = 0.0
    elif config.regularizer_warmup_epochs <= 0:
        return config.loss
    else:
        scale = min(1.0, since_start / config.regularizer_warmup_epochs)
    return LossWeights(**{f: getattr(config.loss, f) * scale for f in config.loss.__dataclass_fields__})


def selectable(config: TrainConfig, epochs_done: int) -> bool:
    """Whether a checkpoint after `epochs_done` epochs may become best.pt: only once the regularizers are
    at full weight (when there are any), so the model kept is one trained with the whole objective and the
    validation losses compared are of the same objective."""
    if not any(getattr(config.loss, f) for f in config.loss.__dataclass_fields__):
        return True
    return epochs_done >= config.regularizer_start_epoch + config.regularizer_warmup_epochs


def forward_loss(model: AttentionRecognizer, batch: dict[str, torch.Tensor], weights: LossWeights,
                 device: torch.device, amp: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    labels = batch["label"].to(device)
    with autocast_for(device, amp):
        if "features" in batch:  # a feature cache: the (frozen) trunk already ran
            out = model(features=batch["features"].to(device, non_blocking=True).float())  # (B, T, C, h, w)
        else:
            out = model(normalize_clip(batch["clip"].to(device, non_blocking=True)))  # (B, T, 3, H, W)
    loss, terms = attention_loss(out.logits, labels, out.spatial_attention, out.temporal_attention_steps, weights)
    correct = (out.logits.argmax(dim=1) == labels).sum()
    return loss, terms, correct


def train_one_epoch(model: AttentionRecognizer, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    config: TrainConfig, device: torch.device, epoch: int, *, first_step: int = 0,
                    scaler: torch.amp.GradScaler | None = None, deadline: float | None = None,
                    on_step=None, stop: StopRequest | None = None, progress: bool = True,
                    ctx: DistContext = SINGLE_PROCESS) -> dict[str, float]:
    """One pass over `loader`; returns mean loss, accuracy and regularizer terms (over all ranks). Raises
    TrainingError on a non-finite loss. Stops early with `stopped=1` when `deadline` (time.monotonic) passes
    and with `stopped=2` when `stop` is requested (after the step in flight), on every rank at the same step."""
    model.train()
    totals: dict[str, float] = {}
    seen = correct_total = 0
    # (clips of this rank that count, clips in the global batch) per step; one process: the whole batch.
    weights_of_steps = loader.batch_sampler.loss_weights() if ctx.enabled else None
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", disable=not progress, leave=False,
               total=len(loader))
    step = first_step
    steps_per_epoch = first_step + len(loader)
    stopped = 0
    for i, batch in enumerate(bar):
        torch.manual_seed(step_seed(config.seed, epoch, step) + ctx.rank)  # dropout masks differ per rank
        weights = warmed_up(config, epoch + step / max(steps_per_epoch, 1))
        loss, terms, correct = forward_loss(model, batch, weights, device, config.amp)
        if not torch.isfinite(loss):
            detail = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
            raise TrainingError(f"non-finite loss at epoch {epoch + 1} step {step + 1} ({detail}); the last "
                                f"checkpoint is untouched - lower train.lr or check the data, then --resume")
        n = batch["label"].shape[0]
        if weights_of_steps is not None:
            # DDP averages gradients over ranks: weighting by share makes that the global batch's mean.
            n, global_n = weights_of_steps[i]
            loss_to_step = loss * (n * ctx.world_size / global_n)
            correct = correct * (n > 0)
        else:
            loss_to_step = loss
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss_to_step).backward()
            scaler.unscale_(optimizer)
        else:
            loss_to_step.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        seen += n
        correct_total += int(correct)
        totals["loss"] = totals.get("loss", 0.0) + loss.item() * n
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + value.item() * n
        step += 1
        bar.set_postfix(loss=f"{totals['loss'] / max(seen, 1):.3f}", acc=f"{correct_total / max(seen, 1):.3f}")
        if on_step is not None:
            on_step(step)
        timed_out = deadline is not None and time.monotonic() > deadline
        stopped = ctx.agree_stop(2 if stop is not None and stop.requested else 1 if timed_out else 0)
        if stopped:
            break
    bar.close()
    totals = ctx.sum_values({**totals, "_seen": seen, "_correct": correct_total})
    seen, correct_total = int(totals.pop("_seen")), int(totals.pop("_correct"))
    metrics = {name: value / max(seen, 1) for name, value in totals.items()}
    metrics.update(accuracy=correct_total / max(seen, 1), clips=seen, next_step=step, stopped=stopped)
    return metrics


@torch.no_grad()
def evaluate_loss(model: AttentionRecognizer, loader: DataLoader, weights: LossWeights,
                  device: torch.device, amp: bool, ctx: DistContext = SINGLE_PROCESS) -> dict[str, float]:
    """Mean loss, cross-entropy and accuracy over every clip of `loader` (under torchrun: of every rank's
    disjoint share, summed before dividing)."""
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
    sums = ctx.sum_values({"loss": loss_total, "ce": ce_total, "correct": correct_total, "seen": seen})
    loss_total, ce_total, correct_total, seen = sums["loss"], sums["ce"], int(sums["correct"]), int(sums["seen"])
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
    # Under torchrun: join the job (gloo/nccl) and take this rank's GPU; otherwise a single process.
    ctx, device = init_distributed(select_device(config.device), config.dist_timeout_minutes)
    progress = progress and ctx.is_main

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
        crop = CropSpec.from_options(config.crop_min_area, config.crop_max_aspect)
        train_set = ClipDataset(dataset.split("train"), spec, train=True, seed=config.seed,
                                cache=config.cache_videos, flip=config.flip, crop=crop, progress=progress,
                                description="train videos")
        val_set = ClipDataset(dataset.split("val"), spec, train=False, seed=config.seed, cache=config.cache_videos,
                              progress=progress, description="val videos")
    for name, part in (("train", train_set), ("val", val_set)):
        if len(part) == 0:
            raise TrainingError(f"every {name} video of {data_dir} is unreadable ({len(part.skipped)} skipped)")

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
    trained = wrap_model(model, ctx, device, sync_batchnorm=config.sync_batchnorm)  # DDP under torchrun
    writer = None  # rank 0 alone writes run_config.json, TensorBoard, history.jsonl and checkpoints
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "run_config.json").write_text(json.dumps(run_config.to_dict(), indent=2) + "\n")
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - heavy import, only when training

        writer = SummaryWriter(str(out_dir / "tensorboard"))
    pin_memory = device.type == "cuda"
    train_loader = make_loader(train_set, config, shuffle=True, epoch=0, ctx=ctx, pin_memory=pin_memory)
    val_loader = make_loader(val_set, config, shuffle=False, epoch=0, ctx=ctx, pin_memory=pin_memory)

    def save(path: Path) -> None:
        if not ctx.is_main:
            return
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
            train_loader.batch_sampler.set_epoch(epoch, first_step)
            train_metrics = train_one_epoch(trained, train_loader, optimizer, config, device, epoch,
                                            first_step=first_step, scaler=scaler, deadline=deadline, on_step=on_step,
                                            stop=stop, progress=progress, ctx=ctx)
            if train_metrics["stopped"] == 2:
                save(last_path)  # mid-epoch: progress_state["step"] says which batches are done
                raise KeyboardInterrupt
            stopped_early = bool(train_metrics["stopped"])
            val_metrics = evaluate_loss(model, val_loader, config.loss, device, config.amp, ctx)
            scheduler.step(val_metrics["loss"])  # the gathered loss: every rank steps the same way
            lr = optimizer.param_groups[0]["lr"]
            improved = selectable(config, epoch + 1) and (val_metrics["accuracy"], -val_metrics["loss"]) > (
                progress_state["best_accuracy"], -progress_state["best_loss"])
            progress_state.update(epoch=epoch + 1, step=0)
            if improved:
                progress_state.update(best_accuracy=val_metrics["accuracy"], best_loss=val_metrics["loss"],
                                      best_epoch=epoch + 1)
            record = {"epoch": epoch + 1, "lr": lr, "train": train_metrics, "val": val_metrics,
                      "elapsed_s": round(time.monotonic() - started, 1)}
            history.append(record)
            if writer is not None:
                _log_epoch(writer, record)
            save(last_path)
            if improved:
                save(best_path)
            _print(progress, f"epoch {epoch + 1}/{config.epochs}  train loss {train_metrics['loss']:.3f} "
                             f"acc {train_metrics['accuracy']:.3f}  val loss {val_metrics['loss']:.3f} "
                             f"acc {val_metrics['accuracy']:.3f}  lr {lr:.2g}{'  *best' if improved else ''}"
                             f"  [{record['elapsed_s']:.0f}s]")
            if ctx.is_main:
                with open(out_dir / "history.jsonl", "a") as handle:
                    handle.write(json.dumps(record) + "\n")
        if stopped_early:
            _print(progress, f"time limit of {config.max_minutes} min reached after epoch {progress_state['epoch']}")
        if ctx.is_main and not best_path.exists() and progress_state["epoch"] > 0:
            save(best_path)  # stopped before the regularizers reached full weight: keep the last model
            _print(progress, "the regularizers never reached full weight; best.pt is the last epoch's model")
    except RuntimeError as exc:
        if ctx.enabled and _lost_peer(exc):
            raise TrainingError(f"rank {ctx.rank} of {ctx.world_size}: a collective operation failed, so another "
                                f"rank has stopped or hung (its own error is in its log or above); "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if writer is not None:
            writer.close()  # also after a second Ctrl-C mid-step: last.pt keeps the state before that step
        shutdown_distributed(ctx)
    return {"best_val_accuracy": progress_state["best_accuracy"], "best_epoch": progress_state["best_epoch"],
            "epochs_run": progress_state["epoch"], "wall_seconds": round(time.monotonic() - started, 1),
            "skipped_videos": len(train_set.skipped) + len(val_set.skipped), "history": history}


def _lost_peer(exc: RuntimeError) -> bool:
    """A collective that failed because of another rank: gloo/nccl's lost connection or the group's timeout."""
    text = str(exc).lower()
    return isinstance(exc, dist.DistError) or any(
        word in text for word in ("connection closed by peer", "timed out", "timeout", "nccl", "gloo"))


def _log_epoch(writer, record: dict[str, Any]) -> None:
    epoch = record["epoch"]
    for name, value in record["train"].items():
        if name not in ("clips", "next_step", "stopped"):
            writer.add_scalar(f"train/{name}", value, epoch)
    for name in ("loss", "ce", "accuracy"):
        writer.add_scalar(f"val/{name}", record["val"][name], epoch)
    writer.add_scalar("lr", record["lr"], epoch)
    writer.flush()


def _print(enabled: bool, message: str) -> None:
    if enabled:
        tqdm.write(message)


def _is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a process started without torchrun."""
    return os.environ.get("RANK", "0") == "0"


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
        if not _is_main_process():
            return 130
        print(f"\ninterrupted: progress saved to {Path(args.out) / LAST_CHECKPOINT}; continue with "
              f"`stanet train --data {args.data} --out {args.out} --resume`", file=sys.stderr)
        return 130
    except (TrainingError, DatasetFormatError, CheckpointError, DistributedError, ValueError, OSError) as exc:
        where = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else ""
        print(f"stanet train{where}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():  # an error after joining the job, before train()'s own cleanup
            dist.destroy_process_group()
    if not _is_main_process():
        return 0
    print(f"best validation accuracy {summary['best_val_accuracy']:.3f} at epoch {summary['best_epoch']} "
          f"({summary['epochs_run']} epochs, {summary['wall_seconds']:.0f}s); checkpoints in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
