"""When the attention regularizers count: their weights over the epochs, and from which epoch a model may
become best.pt (only one trained with the whole objective).

The start is either a fixed epoch (`regularizer_start="epoch"`) or tied to a signal (`"learning"`): the
first epoch after validation accuracy rose clearly above chance. A fixed epoch tuned on one dataset can come
too early elsewhere (the regularizers then push the mask off an actor cross-entropy has not found yet) or never
(a time-capped run that ends before it); the signal follows the run it is in.
"""

from __future__ import annotations

from typing import Any

from training.config import TrainConfig
from training.losses import LossWeights


def learning_started(config: TrainConfig, val_accuracy: float, num_classes: int) -> bool:
    """Validation accuracy at least `learning_threshold` of the way from chance (1/num_classes) to 1."""
    chance = 1.0 / max(num_classes, 1)
    return val_accuracy >= chance + config.learning_threshold * (1.0 - chance)


def regularizer_start(config: TrainConfig, progress: dict[str, Any]) -> float:
    """The epoch the regularizers start at in this run; inf while a "learning" start waits for its signal.
    `progress["learned_epoch"]` is the number of epochs done when learning was first seen (None before)."""
    if config.regularizer_start == "epoch":
        return config.regularizer_start_epoch
    learned = progress.get("learned_epoch")
    return float("inf") if learned is None else max(config.regularizer_start_epoch, float(learned))


def ramp(config: TrainConfig, epochs_done: float, start_epoch: float | None = None) -> float:
    """How far the regularizers are in after `epochs_done` (fractional) epochs, in [0, 1]: 0 before the start
    epoch (`start_epoch`, by default `regularizer_start_epoch`), then linear over `regularizer_warmup_epochs`."""
    start = config.regularizer_start_epoch if start_epoch is None else start_epoch
    since_start = epochs_done - start
    if since_start < 0:
        return 0.0
    if config.regularizer_warmup_epochs <= 0:
        return 1.0
    return min(1.0, since_start / config.regularizer_warmup_epochs)


def warmed_up(config: TrainConfig, epochs_done: float, start_epoch: float | None = None) -> LossWeights:
    """The regularizer weights after `epochs_done` epochs: the full weights times `ramp` (the cross-entropy
    weight is always 1)."""
    scale = ramp(config, epochs_done, start_epoch)
    if scale == 1.0:
        return config.loss
    return LossWeights(**{f: getattr(config.loss, f) * scale for f in config.loss.__dataclass_fields__})


def early_pool_weight(config: TrainConfig, epochs_done: float, start_epoch: float | None = None) -> float:
    """The weight of `early_cell_pool` in the model's cell pooling: 1 while the regularizers are off, 0 once
    they are at full weight (the same ramp, reversed), 0 always without an early pooling. Why tied to the
    regularizers: the mask is shaped once they start, and it must be shaped under the pooling that is served."""
    return _early_weight(bool(config.early_cell_pool), config, epochs_done, start_epoch)


def open_mask_weight(config: TrainConfig, epochs_done: float, start_epoch: float | None = None) -> float:
    """How far the mask is held open (stanet AttentionRecognizer.set_open_mask): 1 while the regularizers are
    off, 0 once they are at full weight (the same ramp, reversed), 0 always without `early_open_mask`. Why: under
    cross-entropy alone, while the classes are not found yet, the mask settles wherever the first gradients
    push it, often off the actor, and the regularizers then shape that; held open, it is first trained by a
    classifier that already tells the classes apart, whose gradient marks the cells that carry them."""
    return _early_weight(config.early_open_mask, config, epochs_done, start_epoch)


def _early_weight(enabled: bool, config: TrainConfig, epochs_done: float, start_epoch: float | None) -> float:
    """An early training-time setting's weight: the regularizer ramp reversed, 0 when the setting is off."""
    return 1.0 - ramp(config, epochs_done, start_epoch) if enabled else 0.0


def selectable(config: TrainConfig, epochs_done: int, start_epoch: float | None = None) -> bool:
    """Whether a checkpoint after `epochs_done` epochs may become best.pt: only once the regularizers are
    at full weight (when there are any, or an early pooling rides on their ramp), so the model kept is one
    trained with the whole objective and the served pooling, and the validation losses compared are of the
    same objective."""
    early = config.early_cell_pool or config.early_open_mask
    if not early and not any(getattr(config.loss, f) for f in config.loss.__dataclass_fields__):
        return True
    start = config.regularizer_start_epoch if start_epoch is None else start_epoch
    return epochs_done >= start + config.regularizer_warmup_epochs
