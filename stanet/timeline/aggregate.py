"""From the model's answer for each window back to every frame of the video (numpy only, no torch).

Sample t of a window [start, start + span) stands for the frames of its segment,
[start + floor(t span / T), start + floor((t + 1) span / T)). A frame's class scores are the mean over the
(window, sample) pairs that cover it of

    attention-weighted:  min(1, p_k(window) * T a_t)     (a_t the window's temporal weight of sample t)
    plain:               p_k(window)

so that a window whose attention is uniform (a_t = 1/T) gives its class probabilities to all its frames,
and a window whose attention avoids some frames moves its probability mass to the frames it looked at: the
model's "when" inside the window. (`attention_weights` has two other weightings, measured against this
one in docs/timeline.md.)
Its "where" is the peak of the spatial mask of the covering sample with the largest temporal weight, in
pixels of the video's frames.

Windows are added one at a time (`TimelineAccumulator.add`), so a long video never holds more than its
per-frame scores: (N, K) floats twice, (N, 2) peak positions and (N, h, w) float16 masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stanet.timeline.windows import Window


@dataclass(frozen=True)
class FrameScores:
    """Per-frame results of a video of N frames and K classes."""

    weighted: np.ndarray  # (N, K) float32: attention-weighted class scores
    plain: np.ndarray  # (N, K) float32: the windows' probabilities, uniform over each window
    actionness: np.ndarray  # (N,) float32: mean min(1, T a_t) of the samples covering the frame
    where: np.ndarray  # (N, 2) float32: (x, y) of the mask's peak in pixels, NaN where no window reached
    covered: np.ndarray  # (N,) int32: (window, sample) pairs covering the frame
    masks: np.ndarray | None = None  # (N, h, w) float16: the mask `where` comes from (for overlays)

    @property
    def num_frames(self) -> int:
        return len(self.covered)

    def truncated(self, num_frames: int) -> "FrameScores":
        """The first `num_frames` frames (a file that ends early: the frames before the damage)."""
        n = int(num_frames)
        return FrameScores(self.weighted[:n], self.plain[:n], self.actionness[:n], self.where[:n], self.covered[:n],
                           None if self.masks is None else self.masks[:n])


def sample_ranges(window: Window, clip_length: int, num_frames: int) -> list[tuple[int, int]]:
    """[first, stop) frames each of the window's T samples stands for, clipped to the video."""
    edges = window.start + np.floor(np.arange(clip_length + 1) * window.span / clip_length).astype(np.int64)
    return [(int(min(edges[t], num_frames)), int(min(max(edges[t + 1], edges[t] + 1), num_frames)))
            for t in range(clip_length)]


FRAME_WEIGHTS = ("clipped", "relative", "mass")  # docs/timeline.md, "Defaults" has what chose the default


def attention_weights(temporal_attention: np.ndarray, mode: str = "mass") -> np.ndarray:
    """How much of its window's probabilities each sample's frames get, from the temporal attention (T,):
    "clipped" min(1, T a_t) (1 for a sample weighted at least as much as the average, less for one the
    model looked away from), "relative" a_t / max a, "mass" T a_t (the window's probability mass moved to
    where the model looked; the product with p is clipped to 1)."""
    a = np.asarray(temporal_attention, dtype=np.float64)
    if mode == "clipped":
        return np.minimum(1.0, a.shape[-1] * a)
    if mode == "relative":
        return a / max(float(a.max()), 1e-12)
    if mode == "mass":
        return a.shape[-1] * a
    raise ValueError(f"frame weight must be one of {FRAME_WEIGHTS}, got {mode!r}")


def mask_peaks(spatial_attention: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """(T, h, w) masks -> (T, 2) (x, y) of each mask's strongest cell centre, in pixels of `frame_hw`."""
    T, h, w = spatial_attention.shape
    flat = np.argmax(spatial_attention.reshape(T, h * w), axis=1)  # (T,)
    rows, cols = np.divmod(flat, w)
    return np.stack([(cols + 0.5) * frame_hw[1] / w, (rows + 0.5) * frame_hw[0] / h], axis=1)


class TimelineAccumulator:
    """Sums the windows' answers into per-frame scores; `result()` divides by the coverage."""

    def __init__(self, num_frames: int, num_classes: int, clip_length: int, frame_hw: tuple[int, int],
                 frame_weight: str = "mass"):
        if frame_weight not in FRAME_WEIGHTS:
            raise ValueError(f"frame weight must be one of {FRAME_WEIGHTS}, got {frame_weight!r}")
        self.num_frames, self.clip_length, self.frame_hw = int(num_frames), int(clip_length), frame_hw
        self.frame_weight = frame_weight
        self._weighted = np.zeros((num_frames, num_classes), dtype=np.float64)
        self._plain = np.zeros((num_frames, num_classes), dtype=np.float64)
        self._action = np.zeros(num_frames, dtype=np.float64)
        self._count = np.zeros(num_frames, dtype=np.int32)
        self._where = np.full((num_frames, 2), np.nan, dtype=np.float32)
        self._where_weight = np.full(num_frames, -1.0)
        self._masks: np.ndarray | None = None  # (N, h, w), allocated with the first mask

    def add(self, window: Window, probabilities: np.ndarray, temporal_attention: np.ndarray,
            spatial_attention: np.ndarray | None = None) -> None:
        """One window's probabilities (K,), temporal attention (T,) and spatial attention (T, h, w)."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        weights = attention_weights(temporal_attention, self.frame_weight)  # (T,)
        peaks = mask_peaks(np.asarray(spatial_attention), self.frame_hw) if spatial_attention is not None else None
        for t, (first, stop) in enumerate(sample_ranges(window, self.clip_length, self.num_frames)):
            if first >= stop:
                continue  # padding past the end of the video
            self._weighted[first:stop] += np.minimum(1.0, probabilities * weights[t])
            self._plain[first:stop] += probabilities
            self._action[first:stop] += weights[t]
            self._count[first:stop] += 1
            if peaks is not None:
                if self._masks is None:
                    self._masks = np.zeros((self.num_frames, *np.shape(spatial_attention)[1:]), dtype=np.float16)
                better = np.flatnonzero(self._where_weight[first:stop] < weights[t]) + first
                self._where[better] = peaks[t]
                self._masks[better] = spatial_attention[t]
                self._where_weight[better] = weights[t]

    def result(self) -> FrameScores:
        count = np.maximum(self._count, 1)[:, None]  # (N, 1)
        return FrameScores(weighted=(self._weighted / count).astype(np.float32),
                           plain=(self._plain / count).astype(np.float32),
                           actionness=(self._action / count[:, 0]).astype(np.float32),
                           where=self._where.copy(), covered=self._count.copy(), masks=self._masks)


def aggregate_windows(windows: list[Window], probabilities: np.ndarray, temporal_attention: np.ndarray,
                      spatial_attention: np.ndarray | None, num_frames: int,
                      frame_hw: tuple[int, int]) -> FrameScores:
    """All windows at once: probabilities (W, K), temporal (W, T), spatial (W, T, h, w) or None."""
    probabilities = np.asarray(probabilities)
    W, K = probabilities.shape
    T = np.asarray(temporal_attention).shape[1]
    if len(windows) != W or np.asarray(temporal_attention).shape[0] != W:
        raise ValueError(f"{len(windows)} windows, {W} probability rows and "
                         f"{np.asarray(temporal_attention).shape[0]} temporal rows must agree")
    accumulator = TimelineAccumulator(num_frames, K, T, frame_hw)
    for i, window in enumerate(windows):
        accumulator.add(window, probabilities[i], temporal_attention[i],
                        None if spatial_attention is None else spatial_attention[i])
    return accumulator.result()
