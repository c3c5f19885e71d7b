"""Which frames of a video make a clip, and how they are resized: one definition for training, evaluation
and the serving client (numpy + Pillow only, no torch).

Sampling is TSN-style: the video is cut into `clip_length` equal segments and one frame is taken from each,
at a random offset inside the segment for training and at the segment's centre for evaluation and serving.
A video shorter than the clip repeats its last frame. Training may add a random resized crop
(`random_crop_window`, `crop_frames`, `crop_box`); evaluation and serving use the plain resize of `sample_clip`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def sample_frame_indices(
    num_frames: int, clip_length: int, *, random: bool = False, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Frame indices (int64, length `clip_length`, non-decreasing) to take from a video of `num_frames`.

    Args:
        num_frames: frames in the video (>= 1).
        clip_length: frames in the clip T (>= 1).
        random: a random offset inside each segment (training) instead of the centre (evaluation, serving).
        rng: generator for the random offsets; required when `random` is set.
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least 1 frame to sample from, got {num_frames}")
    if clip_length < 1:
        raise ValueError(f"clip_length must be >= 1, got {clip_length}")
    if num_frames <= clip_length:
        # Short video: every frame once, then the last frame repeated.
        indices = np.arange(clip_length)
        return np.minimum(indices, num_frames - 1).astype(np.int64)
    segment = num_frames / clip_length
    starts = np.arange(clip_length) * segment
    if random:
        if rng is None:
            raise ValueError("random sampling needs an rng")
        offsets = rng.random(clip_length) * segment
    else:
        offsets = np.full(clip_length, segment / 2.0)
    return np.minimum(np.floor(starts + offsets).astype(np.int64), num_frames - 1)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize uint8 frames (N, H, W, 3) to (N, height, width, 3) with bilinear filtering (aspect not kept,
    like the paper's 224x224 resize)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.shape[1] == height and frames.shape[2] == width:
        return frames
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))
    return out


def sample_clip(frames: np.ndarray, clip_length: int, height: int, width: int, *, random: bool = False,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A video's frames (N, H', W', 3) uint8 -> (clip (T, height, width, 3) uint8, the frame indices taken):
    the one path from decoded video to model input, for training, evaluation, export and the client."""
    indices = sample_frame_indices(len(frames), clip_length, random=random, rng=rng)
    return resize_frames(frames[indices], height, width), indices


def scale_box(
    box: tuple[float, float, float, float], from_hw: tuple[int, int], to_hw: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Scale an (x1, y1, x2, y2) pixel box from a frame of size `from_hw` to one of size `to_hw`."""
    sy = to_hw[0] / from_hw[0]
    sx = to_hw[1] / from_hw[1]
    x1, y1, x2, y2 = box
    return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)


def random_crop_window(height: int, width: int, rng: np.random.Generator, *, min_area: float,
                       max_aspect: float) -> tuple[int, int, int, int]:
    """A random-resized-crop window (x1, y1, x2, y2), integer pixels, inside a `height` x `width` frame.

    The window's area is a fraction of the frame's drawn uniformly from [min_area, 1]; its aspect ratio,
    relative to the frame's, log-uniformly from [1/max_aspect, max_aspect]; a side that would leave the frame
    is clamped to it (so the window is always valid, without torchvision's retries); the position is uniform.
    """
    if not 0 < min_area <= 1:
        raise ValueError(f"min_area must be in (0, 1], got {min_area}")
    if max_aspect < 1:
        raise ValueError(f"max_aspect must be >= 1, got {max_aspect}")
    area = rng.uniform(min_area, 1.0)
    aspect = np.exp(rng.uniform(-np.log(max_aspect), np.log(max_aspect)))
    crop_w = int(np.clip(round(width * np.sqrt(area * aspect)), 1, width))
    crop_h = int(np.clip(round(height * np.sqrt(area / aspect)), 1, height))
    x1 = int(rng.integers(0, width - crop_w + 1))
    y1 = int(rng.integers(0, height - crop_h + 1))
    return (x1, y1, x1 + crop_w, y1 + crop_h)


def crop_frames(frames: np.ndarray, window: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """Cut `window` (x1, y1, x2, y2) out of uint8 frames (N, H, W, 3) and resize it to (N, height, width, 3)."""
    x1, y1, x2, y2 = window
    if not (0 <= x1 < x2 <= frames.shape[2] and 0 <= y1 < y2 <= frames.shape[1]):
        raise ValueError(f"crop window {window} is not inside frames of {frames.shape[1]}x{frames.shape[2]}")
    return resize_frames(np.ascontiguousarray(frames[:, y1:y2, x1:x2]), height, width)


def crop_box(box: tuple[float, float, float, float], window: tuple[int, int, int, int],
             to_hw: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """Map an (x1, y1, x2, y2) box onto a crop `window` resized to `to_hw`, clipped to the crop; None when no
    part of the box is inside the window (the actor left the crop on this frame)."""
    wx1, wy1, wx2, wy2 = window
    sx, sy = to_hw[1] / (wx2 - wx1), to_hw[0] / (wy2 - wy1)
    x1, y1, x2, y2 = (max(box[0], wx1), max(box[1], wy1), min(box[2], wx2), min(box[3], wy2))
    if x2 <= x1 or y2 <= y1:
        return None
    return ((x1 - wx1) * sx, (y1 - wy1) * sy, (x2 - wx1) * sx, (y2 - wy1) * sy)
