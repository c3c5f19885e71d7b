"""uint8 RGB clips -> the normalized float layout the recognizer takes. Used by training and inside the
exported graph, so the wire format (B, T, H, W, 3) uint8 is normalized in exactly one place."""

from __future__ import annotations

import torch

from stanet.constants import MEAN_RGB, STD_RGB


def normalize_clip(clip: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, T, 3, H, W) float32, scaled to [0, 1] then ImageNet mean/std."""
    if clip.dim() != 5 or clip.shape[-1] != 3:
        raise ValueError(f"clip must be (B, T, H, W, 3), got shape {tuple(clip.shape)}")
    x = clip.permute(0, 1, 4, 2, 3).to(torch.float32)  # (B, T, 3, H, W)
    mean = torch.tensor(MEAN_RGB, dtype=torch.float32, device=clip.device).view(1, 1, 3, 1, 1) * 255.0
    std = torch.tensor(STD_RGB, dtype=torch.float32, device=clip.device).view(1, 1, 3, 1, 1) * 255.0
    return (x - mean) / std
