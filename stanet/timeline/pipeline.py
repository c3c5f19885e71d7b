"""One video's timeline from any model: frames in, windows out to `predict`, per-frame scores and segments
back (numpy only, no torch). The serving client passes a `predict` that calls Triton, `stanet evaluate
--timeline` one that runs PyTorch; both get the same windows, clips and aggregation.

    frames --WindowStream--> clips (B, T, H, W, 3) --predict--> probabilities, temporal, spatial
           --TimelineAccumulator--> FrameScores --find_segments--> segments
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from stanet.constants import BACKGROUND_CLASS
from stanet.timeline.aggregate import FrameScores, TimelineAccumulator
from stanet.timeline.clips import WindowStream
from stanet.timeline.segments import Segment, SegmentOptions, find_segments, window_segments
from stanet.timeline.windows import ClipSpan, Window, plan_windows, stride_frames

# predict(clips (B, T, H, W, 3) uint8) -> probabilities (B, K), temporal attention (B, T), spatial (B, T, h, w)
Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
VARIANTS = ("attention", "uniform", "windows")  # the method and the two baselines of docs/timeline.md


@dataclass(frozen=True)
class TimelineOptions:
    stride_seconds: float | None = None  # None (and no stride_frames): half a window
    stride_frames: int | None = None
    segments: SegmentOptions = SegmentOptions()
    frame_weight: str = "mass"  # stanet.timeline.aggregate.FRAME_WEIGHTS (docs/timeline.md, "Measurements")


@dataclass
class Timeline:
    """A video's timeline: `num_frames` decoded (fewer than announced when the file is damaged), its windows
    and their probabilities, per-frame scores and the segments of the attention-weighted scores."""

    num_frames: int
    fps: float
    span_frames: int
    stride: int
    windows: list[Window]
    probabilities: np.ndarray  # (W, K), NaN rows for windows the stream never completed
    scores: FrameScores
    segments: list[Segment]
    class_names: tuple[str, ...]
    background: int | None  # index of the background class, None when the model has none
    frame_hw: tuple[int, int]
    timestamps: np.ndarray = field(repr=False)  # (num_frames,) seconds, NaN where unknown
    damage: str | None = None  # why the stream ended before the announced frame count

    def variant_segments(self, variant: str, options: SegmentOptions) -> list[Segment]:
        """The segments of one of VARIANTS: "attention" (the method), "uniform" (same windows, uniform
        temporal weights), "windows" (each window's label over its whole span)."""
        if variant == "attention":
            return find_segments(self.scores.weighted, self.class_names, self.span_frames, self.fps, options=options,
                                 background=self.background, where=self.scores.where, timestamps=self.timestamps)
        if variant == "uniform":
            return find_segments(self.scores.plain, self.class_names, self.span_frames, self.fps, options=options,
                                 background=self.background, where=self.scores.where, timestamps=self.timestamps)
        if variant == "windows":
            done = ~np.isnan(self.probabilities[:, 0])
            kept = [w for w, ok in zip(self.windows, done) if ok]
            return window_segments(kept, self.probabilities[done], self.class_names, self.num_frames,
                                   self.fps, nms_iou=options.nms_iou, background=self.background,
                                   timestamps=self.timestamps)
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def background_index(class_names: tuple[str, ...] | list[str]) -> int | None:
    return list(class_names).index(BACKGROUND_CLASS) if BACKGROUND_CLASS in class_names else None


def _batches(stream: WindowStream, size: int) -> Iterable[tuple[list[int], np.ndarray]]:
    indices, clips = [], []
    for index, clip in stream:
        indices.append(index)
        clips.append(clip)
        if len(clips) == size:
            yield indices, np.stack(clips)
            indices, clips = [], []
    if clips:
        yield indices, np.stack(clips)


def plan(num_frames: int, fps: float, span: ClipSpan, clip_length: int,
         options: TimelineOptions = TimelineOptions()) -> tuple[int, int, list[Window]]:
    """(window span in frames, stride in frames, the windows) of a video of `num_frames` at `fps`."""
    span_frames = span.frames_at(fps)
    stride = stride_frames(span_frames, fps, stride_seconds=options.stride_seconds,
                           stride_frames=options.stride_frames)
    return span_frames, stride, plan_windows(num_frames, span_frames, clip_length, stride)


def compute_timeline(frames: Iterable[tuple[np.ndarray, float]], num_frames: int, fps: float, span: ClipSpan,
                     clip_length: int, model_hw: tuple[int, int], class_names: tuple[str, ...], predict: Predict, *,
                     batch_size: int = 1, concurrency: int = 1, options: TimelineOptions = TimelineOptions(),
                     on_window: Callable[[int], None] | None = None) -> Timeline:
    """The timeline of a video announced as `num_frames` frames at `fps`: windows of `span` (stride from
    `options`), sent `batch_size` clips at a time with up to `concurrency` batches in flight.

    Raises stanet.timeline.windows.TimelineError for a bad stride; whatever `predict` raises."""
    span_frames, stride, windows = plan(num_frames, fps, span, clip_length, options)
    stream = WindowStream(frames, windows, *model_hw)
    probabilities = np.full((len(windows), len(class_names)), np.nan)
    accumulator: TimelineAccumulator | None = None

    def collect(indices: list[int], answer) -> None:
        nonlocal accumulator
        probs, temporal, spatial = answer
        if accumulator is None:
            accumulator = TimelineAccumulator(num_frames, len(class_names), clip_length, stream.frame_hw,
                                              options.frame_weight)
        for row, index in enumerate(indices):
            probabilities[index] = probs[row]
            accumulator.add(windows[index], probs[row], temporal[row], spatial[row])
        if on_window is not None:
            on_window(len(indices))

    in_flight: deque[tuple[list[int], Future]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for indices, clips in _batches(stream, batch_size):
            in_flight.append((indices, pool.submit(predict, clips)))
            while len(in_flight) >= 2 * max(1, concurrency) or (in_flight and in_flight[0][1].done()):
                done_indices, future = in_flight.popleft()
                collect(done_indices, future.result())
        while in_flight:
            done_indices, future = in_flight.popleft()
            collect(done_indices, future.result())
    decoded = stream.frames_read
    if decoded == 0:
        raise ValueError("the video stream delivered no frame")
    frame_hw = stream.frame_hw
    if accumulator is None:  # damaged before the first window was complete
        accumulator = TimelineAccumulator(num_frames, len(class_names), clip_length, frame_hw, options.frame_weight)
    scores = accumulator.result().truncated(min(decoded, num_frames))
    damage = (f"the video ends at frame {decoded} of the {num_frames} its container announces (damaged or "
              f"truncated): the timeline covers the first {decoded / fps:.2f} s" if decoded < num_frames else None)
    background = background_index(class_names)
    timestamps = np.asarray(stream.timestamps[:scores.num_frames], dtype=np.float64)
    timeline = Timeline(num_frames=scores.num_frames, fps=fps, span_frames=span_frames, stride=stride,
                        windows=windows, probabilities=probabilities, scores=scores, segments=[],
                        class_names=tuple(class_names), background=background, frame_hw=frame_hw,
                        timestamps=timestamps, damage=damage)
    timeline.segments = timeline.variant_segments("attention", options.segments)
    return timeline
