"""Which frames of a video make a clip, and how they are resized: one definition for training, evaluation
and the serving client (numpy + Pillow only, no torch).

Sampling is TSN-style: the video is cut into `clip_length` equal segments and one frame is taken from each,
at a random offset inside the segment for training and at the segment's centre for evaluation and serving.
A video shorter than the clip repeats its last frame.
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
