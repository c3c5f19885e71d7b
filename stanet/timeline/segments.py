"""Per-frame class scores -> action segments: smoothing, a threshold, a minimum duration and temporal
non-maximum suppression (numpy only, no torch). Lengths are fractions of the window span, so the same
defaults fit any frame rate and any training clip length (docs/timeline.md lists them).

Per class k (the background class, when the model has one, is never a segment):
1. smooth the scores with a moving average of `smoothing` windows;
2. keep the runs of frames whose smoothed score is >= `threshold`;
3. drop runs shorter than `min_duration` windows;
4. score each run with the mean of its (unsmoothed) per-frame scores;
5. greedy temporal NMS: a segment overlapping a better one of its class by tIoU > `nms_iou` is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stanet.timeline.windows import TimelineError, Window


@dataclass(frozen=True)
class SegmentOptions:
    threshold: float = 0.2  # on the smoothed per-frame class score (docs/timeline.md, "The segment settings")
    smoothing: float = 0.125  # moving-average length, in windows (1/8 window = 2 samples of T = 16)
    min_duration: float = 0.25  # shortest segment kept, in windows
    nms_iou: float = 0.5  # tIoU above which the weaker segment of a class is suppressed

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.threshold <= 1:
            problems.append(f"threshold must be in [0, 1], got {self.threshold}")
        if self.smoothing < 0 or self.min_duration < 0:
            problems.append(f"smoothing and min_duration must be >= 0, got {self.smoothing}, {self.min_duration}")
        if not 0 < self.nms_iou <= 1:
            problems.append(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if problems:
            raise TimelineError("invalid SegmentOptions: " + "; ".join(problems))


@dataclass(frozen=True)
class Segment:
    """One detected action: frames `start_frame`..`end_frame` inclusive, seconds [start, end)."""

    label: str
    label_index: int
    score: float
    start_frame: int
    end_frame: int
    start: float  # seconds of the first frame
    end: float  # seconds just after the last frame
    where: np.ndarray = field(default=None, repr=False, compare=False)  # (n, 2) x, y per frame, pixels (NaN: none)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON keys of a segment (README, "Timeline output")."""
        return {"label": self.label, "score": round(float(self.score), 6), "start": round(float(self.start), 4),
                "end": round(float(self.end), 4), "start_frame": int(self.start_frame),
                "end_frame": int(self.end_frame)}


def frame_seconds(num_frames: int, fps: float, timestamps: np.ndarray | None = None) -> np.ndarray:
    """(N + 1,) seconds at which each frame starts, then the end of the last: the decoder's timestamps where
    all are known (variable frame rates), else frame / fps."""
    if timestamps is not None and len(timestamps) >= num_frames and np.isfinite(timestamps[:num_frames]).all():
        times = np.asarray(timestamps[:num_frames], dtype=np.float64)
        last_step = times[-1] - times[-2] if num_frames > 1 else 1.0 / fps
        return np.append(times, times[-1] + max(last_step, 0.0))
    return np.arange(num_frames + 1, dtype=np.float64) / fps


def moving_average(values: np.ndarray, length: int) -> np.ndarray:
    """Centred moving average along axis 0 of (N, ...) values over `length` frames (made odd, so it is centred),
    averaged at the edges over the frames that exist."""
    if length <= 1:
        return values
    length |= 1
    kernel = np.ones(length)
    sums = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, values)
    counts = np.convolve(np.ones(len(values)), kernel, mode="same")
    return sums / counts.reshape(-1, *([1] * (values.ndim - 1)))


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) inclusive of each run of True in a boolean (N,) array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    changes = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(changes[::2], changes[1::2])]


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def temporal_nms(segments: list[Segment], iou: float) -> list[Segment]:
    """Greedy per class, best score first (ties: earlier first); frames inclusive, so a segment is
    [start_frame, end_frame + 1)."""
    kept: list[Segment] = []
    for segment in sorted(segments, key=lambda s: (-s.score, s.start_frame)):
        span = (segment.start_frame, segment.end_frame + 1)
        if all(k.label_index != segment.label_index or interval_iou(span, (k.start_frame, k.end_frame + 1)) <= iou
               for k in kept):
            kept.append(segment)
    return sorted(kept, key=lambda s: (s.start_frame, -s.score))


def _segment(k: int, class_names, score: float, first: int, last: int, seconds: np.ndarray,
             where: np.ndarray | None) -> Segment:
    return Segment(label=class_names[k], label_index=k, score=float(score), start_frame=first, end_frame=last,
                   start=float(seconds[first]), end=float(seconds[last + 1]),
                   where=None if where is None else where[first:last + 1])


def find_segments(scores: np.ndarray, class_names: tuple[str, ...] | list[str], span_frames: int, fps: float, *,
                  options: SegmentOptions = SegmentOptions(), background: int | None = None,
                  where: np.ndarray | None = None, timestamps: np.ndarray | None = None) -> list[Segment]:
    """Segments of per-frame scores (N, K); `background` is the background class's index (never a segment),
    `where` (N, 2) the per-frame mask peaks, `timestamps` (N,) the frames' seconds. Sorted by start."""
    scores = np.asarray(scores, dtype=np.float64)
    N, K = scores.shape
    if len(class_names) != K:
        raise TimelineError(f"{len(class_names)} class names for scores of {K} classes")
    seconds = frame_seconds(N, fps, timestamps)
    smoothed = moving_average(scores, int(round(options.smoothing * span_frames)))
    shortest = options.min_duration * span_frames
    found = []
    for k in range(K):
        if k == background:
            continue
        for first, last in runs(smoothed[:, k] >= options.threshold):
            if last - first + 1 >= shortest:
                found.append(_segment(k, class_names, scores[first:last + 1, k].mean(), first, last, seconds, where))
    return temporal_nms(found, options.nms_iou)


def window_segments(windows: list[Window], probabilities: np.ndarray, class_names, num_frames: int, fps: float, *,
                    nms_iou: float = SegmentOptions.nms_iou, background: int | None = None,
                    timestamps: np.ndarray | None = None) -> list[Segment]:
    """Plain sliding-window classification (a baseline): each window's best class (the best other than
    background) over the window's whole span, scored by its probability, then the same temporal NMS."""
    seconds = frame_seconds(num_frames, fps, timestamps)
    found = []
    for window, p in zip(windows, np.asarray(probabilities, dtype=np.float64)):
        ranked = [int(k) for k in np.argsort(-p, kind="stable") if k != background]
        k = ranked[0]
        found.append(_segment(k, class_names, p[k], window.start, min(window.stop, num_frames) - 1, seconds, None))
    return temporal_nms(found, nms_iou)
