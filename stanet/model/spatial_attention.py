"""The spatial attention mask: where to look in each frame."""

from __future__ import annotations

import torch
from torch import nn


class SpatialAttention(nn.Module):
    """Three 3x3 convs C -> C/2 -> C/4 -> 1 (BN + ReLU between), then a sigmoid: one mask per frame,
    shared over channels (docs/paper.md, "Spatial attention")."""

    def __init__(self, channels: int):
        super().__init__()
        mid, low = max(channels // 2, 1), max(channels // 4, 1)
        self.net = nn.Sequential(
            nn.Conv2d(channels, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, low, 3, padding=1, bias=False),
            nn.BatchNorm2d(low),
            nn.ReLU(inplace=True),
            nn.Conv2d(low, 1, 3, padding=1),
        )
        # Start open (sigmoid(2) = 0.88): the classifier sees the frames before the regularizers, which
        # push unneeded mask values down, can close the mask; started at 0.5 it collapses to 0 first.
        nn.init.constant_(self.net[-1].bias, 2.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) frame features -> (N, 1, h, w) mask in [0, 1]."""
        return torch.sigmoid(self.net(features))
