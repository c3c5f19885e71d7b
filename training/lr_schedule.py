"""The learning rate within a run under `lr_schedule="cosine"`: a linear warmup, then a cosine down to
`lr * lr_floor`, over the run's budget.

The budget is whichever ends first, the epochs or `max_minutes`: a time-capped run that stops at epoch 9 of
24 has annealed by then, instead of being cut off at a high rate. Under "plateau" nothing here runs:
ReduceLROnPlateau changes the rate at epoch ends (training.run_state).
"""

from __future__ import annotations

import math
import time

import torch

from training.config import TrainConfig


def cosine_scale(config: TrainConfig, epochs_done: float, budget_used: float) -> float:
    """The factor on each group's base rate after `epochs_done` (fractional) epochs, with `budget_used` in
    [0, 1] the fraction of the whole run's budget spent (epochs or time, whichever is further)."""
    if config.lr_warmup_epochs > 0 and epochs_done < config.lr_warmup_epochs:
        return max(epochs_done / config.lr_warmup_epochs, 1e-3)
    warmup_share = min(config.lr_warmup_epochs / config.epochs, 1.0)
    after_warmup = min(max((budget_used - warmup_share) / max(1.0 - warmup_share, 1e-9), 0.0), 1.0)
    return config.lr_floor + (1.0 - config.lr_floor) * 0.5 * (1.0 + math.cos(math.pi * after_warmup))


class CosineSchedule:
    """Sets the optimizer's rates before each step. The base rate of each group is the one it was built with
    (`base_lr`, kept in the optimizer's state so a resumed run continues the same curve)."""

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, started: float) -> None:
        self.optimizer, self.config, self.started = optimizer, config, started
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])

    def budget_used(self, epochs_done: float) -> float:
        used = epochs_done / self.config.epochs
        if self.config.max_minutes > 0:
            used = max(used, (time.monotonic() - self.started) / (self.config.max_minutes * 60))
        return min(used, 1.0)

    def __call__(self, epochs_done: float) -> None:
        scale = cosine_scale(self.config, epochs_done, self.budget_used(epochs_done))
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
