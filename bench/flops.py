"""Work per clip, counted by PyTorch's FlopCounterMode on one forward pass of the model (convolutions and
matrix products, 2 FLOPs per multiply-add; the ConvLSTM's gates and the attention included)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def flops_per_clip(module: torch.nn.Module, clip: torch.Tensor) -> float:
    """FLOPs of `module(clip)` for a batch of one clip (whatever input the module takes)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(clip[:1])
    return float(counter.get_total_flops())
