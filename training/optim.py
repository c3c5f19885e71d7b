"""The optimizer: Adam with the trunk's parameters in their own group at `lr * backbone_lr_multiplier`, the
usual recipe for fine-tuning a pretrained trunk under a freshly initialised head.

With the multiplier at 1 there is one group, in `model.parameters()` order, as before the multiplier existed
(older runs resume unchanged). Otherwise the groups are [head, trunk]; the multiplier cannot change on
`--resume`, so the layout is stable, the optimizer state restores each group's learning rate, and
ReduceLROnPlateau scales every group by the same factor: the ratio holds for the whole run.
"""

from __future__ import annotations

import torch

from stanet.model import AttentionRecognizer
from training.config import TrainConfig


def parameter_groups(model: AttentionRecognizer, config: TrainConfig) -> list[dict]:
    """One group (multiplier 1) or [head, trunk]; a frozen trunk has no parameters to put anywhere."""
    trunk = [p for p in model.backbone.parameters() if p.requires_grad]
    trunk_ids = {id(p) for p in model.backbone.parameters()}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in trunk_ids]
    if not trunk and config.backbone_lr_multiplier != 1.0:
        raise ValueError(f"train.backbone_lr_multiplier={config.backbone_lr_multiplier} has no effect: the trunk "
                         f"is frozen (model.freeze_backbone=true)")
    if config.backbone_lr_multiplier == 1.0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr, "name": "all"}]
    return [{"params": head, "lr": config.lr, "name": "head"},
            {"params": trunk, "lr": config.lr * config.backbone_lr_multiplier, "name": "backbone"}]


def build_optimizer(model: AttentionRecognizer, config: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(parameter_groups(model, config), lr=config.lr, weight_decay=config.weight_decay)
