"""When the attention regularizers count: their weights over the epochs, and from which epoch a model may
become best.pt (only one trained with the whole objective)."""

from __future__ import annotations

from training.config import TrainConfig
from training.losses import LossWeights


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
