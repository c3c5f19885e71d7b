"""One epoch of training and one pass of validation, and what they need: the loader in the seeded batch
order, the device, mixed precision, per-step seeds and the stop request of SIGINT/SIGTERM. training.run
calls them epoch after epoch; evaluation, feature extraction and `stanet bench loader` share the device and
loader parts."""

from __future__ import annotations

import signal
import time
from contextlib import nullcontext
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from stanet.model import AttentionRecognizer
from stanet.model.preprocess import normalize_clip
from training.config import TrainConfig
from training.data import ClipDataset, EpochBatchSampler
from training.distributed import SINGLE_PROCESS, DistContext, RankBatchSampler, unwrapped
from training.losses import LossWeights, attention_loss
from training.regularizer_schedule import early_pool_weight, open_mask_weight, warmed_up

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM until `restore`."""
        self._previous = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}

    def restore(self) -> None:
        """The handlers from before `install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

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


def forward_loss(model: AttentionRecognizer, batch: dict[str, torch.Tensor], weights: LossWeights,
                 device: torch.device, amp: bool, background_index: int | None = None,
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """`background_index`: that class's clips do not move the mask through their answer
    (train.background_moves_mask=false)."""
    labels = batch["label"].to(device)
    unwrapped(model).set_complement(weights.mask_complement > 0)
    unwrapped(model).set_open_answer(weights.open_classification > 0)
    unwrapped(model).set_mask_gradient_samples(None if background_index is None else labels != background_index)
    with autocast_for(device, amp):
        if "features" in batch:  # a feature cache: the (frozen) trunk already ran
            out = model(features=batch["features"].to(device, non_blocking=True).float())  # (B, T, C, h, w)
        else:
            out = model(normalize_clip(batch["clip"].to(device, non_blocking=True)))  # (B, T, 3, H, W)
    loss, terms = attention_loss(out.logits, labels, out.spatial_attention, out.temporal_attention_steps, weights,
                                 out.complement_logits, out.open_logits)
    correct = (out.logits.argmax(dim=1) == labels).sum()
    return loss, terms, correct


def train_one_epoch(model: AttentionRecognizer, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    config: TrainConfig, device: torch.device, epoch: int, *, first_step: int = 0,
                    scaler: torch.amp.GradScaler | None = None, deadline: float | None = None,
                    on_step=None, stop: StopRequest | None = None, progress: bool = True,
                    ctx: DistContext = SINGLE_PROCESS, regularizer_start: float | None = None,
                    set_lr=None) -> dict[str, float]:
    """One pass over `loader`; returns mean loss, accuracy and regularizer terms (over all ranks).
    `regularizer_start` is the epoch the regularizers start at in this run (training.regularizer_schedule);
    `set_lr(epochs_done)`, when given, sets the learning rate before each step. Raises TrainingError on a
    non-finite loss. Stops early with `stopped=1` when `deadline` (time.monotonic) passes
    and with `stopped=2` when `stop` is requested (after the step in flight), on every rank at the same step."""
    model.train()
    totals: dict[str, float] = {}
    seen = correct_total = 0
    # (clips of this rank that count, clips in the global batch) per step; one process: the whole batch.
    weights_of_steps = loader.batch_sampler.loss_weights() if ctx.enabled else None
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", disable=not progress, leave=False,
               total=len(loader))
    background_index = (unwrapped(model).config.num_classes - 1
                         if config.background and not config.background_moves_mask else None)
    step = first_step
    steps_per_epoch = first_step + len(loader)
    stopped = 0
    for i, batch in enumerate(bar):
        torch.manual_seed(step_seed(config.seed, epoch, step) + ctx.rank)  # dropout masks differ per rank
        epochs_done = epoch + step / max(steps_per_epoch, 1)
        weights = warmed_up(config, epochs_done, regularizer_start)
        if config.early_cell_pool:
            unwrapped(model).set_early_pool(config.early_cell_pool,
                                            early_pool_weight(config, epochs_done, regularizer_start))
        if config.early_open_mask:
            unwrapped(model).set_open_mask(open_mask_weight(config, epochs_done, regularizer_start))
        if set_lr is not None:
            set_lr(epochs_done)
        loss, terms, correct = forward_loss(model, batch, weights, device, config.amp, background_index)
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
