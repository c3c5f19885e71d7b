"""Attention masks drawn over frames (numpy + Pillow only, no matplotlib, no torch): shared by the training
figures, the localization metrics and the serving client.

One upsampling for every consumer: `upsample_mask` is Pillow's bilinear resize of a float32 ('F') image,
which samples at pixel centres (align_corners=False, edge values replicated), the same semantics as the
paper's `cv2.resize` default. The mask is assumed to cover the whole frame.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def jet_colormap() -> np.ndarray:
    """The classic 'jet' colormap as a (256, 3) uint8 table: 0 -> dark blue, 0.5 -> green-yellow, 1 -> dark
    red (the piecewise-linear MATLAB definition, so no matplotlib is needed)."""
    x = np.linspace(0.0, 1.0, 256)
    channels = [np.clip(1.5 - np.abs(4.0 * x - centre), 0.0, 1.0) for centre in (3.0, 2.0, 1.0)]  # R, G, B
    return np.round(np.stack(channels, axis=1) * 255.0).astype(np.uint8)


_JET = jet_colormap()


def upsample_mask(mask: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a low-resolution mask (h, w) to the frame size, float32 (H, W).

    Pixel-centre alignment (align_corners=False): output pixel i samples the mask at (i + 0.5) * h / H - 0.5,
    values beyond the outer cell centres are the edge values. No clipping, no quantization.

    Args:
        mask: (h, w) float mask covering the whole frame.
        frame_hw: (H, W) of the frame.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.shape[0] < 1 or mask.shape[1] < 1:
        raise ValueError(f"mask must be (h, w), got shape {tuple(mask.shape)}")
    height, width = (int(v) for v in frame_hw)
    if height < 1 or width < 1:
        raise ValueError(f"frame_hw must be (H, W) with H, W >= 1, got {tuple(frame_hw)}")
    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


def heatmap_overlay(frame: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a 'jet' heatmap of `mask` over `frame`.

    The mask is taken as is (attention masks are already in [0, 1]; values outside are clipped), so a frame
    the model barely attends to stays blue rather than being stretched to the full colour range.

    Args:
        frame: (H, W, 3) uint8 RGB.
        mask: (h, w) float mask covering the whole frame; upsampled bilinearly to (H, W).
        alpha: heatmap opacity in [0, 1].

    Returns:
        (H, W, 3) uint8 RGB: (1 - alpha) * frame + alpha * jet(mask).
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {tuple(frame.shape)}")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (h, w), got shape {tuple(mask.shape)}")
    if not np.all(np.isfinite(mask)):
        raise ValueError("mask contains NaN or inf")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    upsampled = np.clip(upsample_mask(mask, frame.shape[:2]), 0.0, 1.0)  # (H, W)
    colours = _JET[np.round(upsampled * 255.0).astype(np.intp)]  # (H, W, 3)
    blended = (1.0 - alpha) * frame.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
