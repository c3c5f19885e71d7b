"""A training run, epoch after epoch: the data (training.run_data), the state restored or fresh
(training.run_state), the loop over epochs (training.loop) and what rank 0 writes (training.run_writer)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from stanet.constants import LAST_CHECKPOINT
from training.config import RunConfig
from training.distributed import init_distributed, shutdown_distributed, wrap_model
from training.lr_schedule import CosineSchedule
from training.regularizer_schedule import early_pool_weight, open_mask_weight
from training.loop import StopRequest, TrainingError, evaluate_loss, make_loader, select_device, train_one_epoch
from training.run_data import prepare_data
from training.run_state import restore_or_init, start_or_resume
from training.run_writer import RunWriter


def train(data_dir: str | Path | None, out_dir: str | Path, run_config: RunConfig | None, *, resume: bool = False,
          progress: bool = True) -> dict[str, Any]:
    """Train and return a summary {best_val_accuracy, best_epoch, epochs_run, wall_seconds, ...}.
    With `resume`, `run_config=None` continues with the run's own configuration."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    run_config, checkpoint = start_or_resume(out_dir, run_config, resume)
    config = run_config.train
    # Under torchrun: join the job (gloo/nccl) and take this rank's GPU; otherwise a single process.
    ctx, device = init_distributed(select_device(config.device), config.dist_timeout_minutes)
    progress = progress and ctx.is_main
    data = prepare_data(data_dir, run_config, progress=progress)
    state = restore_or_init(run_config, data, device, checkpoint, out_dir / LAST_CHECKPOINT)
    trained = wrap_model(state.model, ctx, device, sync_batchnorm=config.sync_batchnorm)  # DDP under torchrun
    writer = RunWriter(out_dir, run_config, data.class_names, enabled=ctx.is_main, clip_span=data.clip_span)
    scaler = torch.amp.GradScaler("cuda") if config.amp and device.type == "cuda" else None
    pin_memory = device.type == "cuda"
    train_loader = make_loader(data.train_set, config, shuffle=True, epoch=0, ctx=ctx, pin_memory=pin_memory)
    val_loader = make_loader(data.val_set, config, shuffle=False, epoch=0, ctx=ctx, pin_memory=pin_memory)

    def on_step(step: int) -> None:
        state.progress["step"] = step
        if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0:
            writer.save_last(state)

    deadline = started + config.max_minutes * 60 if config.max_minutes > 0 else None
    set_lr = CosineSchedule(state.optimizer, config, started) if config.lr_schedule == "cosine" else None
    stop = StopRequest()
    stop.install()
    stopped_early = False
    try:
        while state.progress["epoch"] < config.epochs and not stopped_early:
            epoch, first_step = state.progress["epoch"], state.progress["step"]
            train_loader.batch_sampler.set_epoch(epoch, first_step)
            train_metrics = train_one_epoch(trained, train_loader, state.optimizer, config, device, epoch,
                                            first_step=first_step, scaler=scaler, deadline=deadline, on_step=on_step,
                                            stop=stop, progress=progress, ctx=ctx,
                                            regularizer_start=state.regularizer_start(config), set_lr=set_lr)
            if train_metrics["stopped"] == 2:
                writer.save_last(state)  # mid-epoch: progress["step"] says which batches are done
                raise KeyboardInterrupt
            stopped_early = bool(train_metrics["stopped"])
            if config.early_cell_pool:  # validate with the pooling of the epoch's end, as best.pt would be kept
                state.model.set_early_pool(config.early_cell_pool, early_pool_weight(
                    config, epoch + 1, state.regularizer_start(config)))
            if config.early_open_mask:  # validate with the mask of the epoch's end
                state.model.set_open_mask(open_mask_weight(config, epoch + 1, state.regularizer_start(config)))
            val_metrics = evaluate_loss(state.model, val_loader, config.loss, device, config.amp, ctx)
            record, improved = state.end_epoch(config, train_metrics, val_metrics,
                                               elapsed_s=round(time.monotonic() - started, 1),
                                               num_classes=len(data.class_names))
            writer.end_epoch(record, state, improved)
            _print(progress, _epoch_line(record, config.epochs, improved))
        if stopped_early:
            _print(progress, f"time limit of {config.max_minutes} min reached after epoch {state.progress['epoch']}")
        if ctx.is_main and not writer.best_path.exists() and state.progress["epoch"] > 0:
            writer.save_best(state)  # stopped before the regularizers reached full weight: keep the last model
            _print(progress, "the regularizers never reached full weight; best.pt is the last epoch's model"
                   + (f" (trained partly with {config.early_cell_pool} cell pooling, served with the model's "
                      f"own)" if config.early_cell_pool else ""))
    except RuntimeError as exc:
        if ctx.enabled and _lost_peer(exc):
            raise TrainingError(f"rank {ctx.rank} of {ctx.world_size}: a collective operation failed, so another "
                                f"rank has stopped or hung (its own error is in its log or above); "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        raise
    finally:
        stop.restore()
        writer.close()  # also after a second Ctrl-C mid-step: last.pt keeps the state before that step
        shutdown_distributed(ctx)
    return {"best_val_accuracy": state.progress["best_accuracy"], "best_epoch": state.progress["best_epoch"],
            "epochs_run": state.progress["epoch"], "wall_seconds": round(time.monotonic() - started, 1),
            "skipped_videos": data.skipped_videos, "history": state.history}


def _lost_peer(exc: RuntimeError) -> bool:
    """A collective that failed because of another rank: gloo/nccl's lost connection or the group's timeout."""
    text = str(exc).lower()
    return isinstance(exc, dist.DistError) or any(
        word in text for word in ("connection closed by peer", "timed out", "timeout", "nccl", "gloo"))


def _epoch_line(record: dict[str, Any], epochs: int, improved: bool) -> str:
    train, val = record["train"], record["val"]
    return (f"epoch {record['epoch']}/{epochs}  train loss {train['loss']:.3f} acc {train['accuracy']:.3f}  "
            f"val loss {val['loss']:.3f} acc {val['accuracy']:.3f}  lr {record['lr']:.2g}"
            f"{'  *best' if improved else ''}  [{record['elapsed_s']:.0f}s]")


def _print(enabled: bool, message: str) -> None:
    if enabled:
        tqdm.write(message)
