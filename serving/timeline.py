"""`StanetClient.infer_timeline`: one long video's timeline of actions through any Triton (numpy, PyAV and
tritonclient; no torch). The video is cut into windows of the span the served model was trained on
(stanet/timeline/windows.py), sent in batches of up to the model's max_batch_size with several batches in
flight, and the answers become per-frame scores and segments (stanet/timeline/pipeline.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from serving.errors import ServingError
from stanet.timeline.clips import decoded_frames
from stanet.timeline.pipeline import Timeline, TimelineOptions, compute_timeline, plan
from stanet.timeline.segments import Segment
from stanet.timeline.windows import ClipSpan, TimelineError
from stanet.video import VideoDecodeError, probe_video

NO_BACKGROUND_NOTE = ("the model has no background class: idle time cannot be told apart from the actions, so "
                      "every stretch of the video is given to its best action (train with "
                      "--set train.background=true)")
NO_SPAN_NOTE = ("the served model does not record its training clips' span (exported before timelines): "
                "windows of T frames at the video's frame rate")


@dataclass(frozen=True)
class VideoTimeline:
    """The timeline of one video file, or the error that stopped it. A damaged file has both: the segments
    up to the damage and the error naming it."""

    video: str
    fps: float | None = None
    frames: int = 0  # frames decoded (and covered by the timeline)
    segments: tuple[Segment, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = ()
    timeline: Timeline | None = field(default=None, repr=False)  # per-frame scores etc., with keep_timeline

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON keys of a video's timeline (README, "Timeline output")."""
        return {"video": self.video, "fps": None if self.fps is None else round(float(self.fps), 6),
                "frames": int(self.frames), "segments": [s.to_dict() for s in self.segments],
                "error": self.error, "notes": list(self.notes)}


def infer_timeline(client, path: str | Path, options: TimelineOptions | None = None, *, concurrency: int = 4,
                   keep_timeline: bool = False, on_window: Callable[[int], None] | None = None,
                   on_plan: Callable[[int], None] | None = None) -> VideoTimeline:
    """The timeline of `path` from the model `client` serves. Decode failures, a bad stride and server
    errors are returned in `error`, never raised. `on_plan(windows)` is called once the windows are known,
    `on_window(n)` after each answered batch of n windows (progress bars)."""
    options = options or TimelineOptions()
    try:
        model = client.model()
        class_names = client.labels()
    except ServingError as exc:
        return VideoTimeline(video=str(path), error=str(exc))
    try:
        info = probe_video(path)
    except VideoDecodeError as exc:
        return VideoTimeline(video=str(path), error=str(exc))
    notes = []
    span = model.clip_span
    if span is None:
        span = ClipSpan(frames=model.clip_length, seconds=model.clip_length / info.fps)
        notes.append(NO_SPAN_NOTE)
    local, clones, lock, damage = threading.local(), [], threading.Lock(), []

    def predict(clips: np.ndarray):  # on the pool's threads: one connection each
        if not hasattr(local, "client"):
            local.client = client.clone()
            with lock:
                clones.append(local.client)
        probabilities, temporal, spatial, _ = local.client.infer_probabilities(clips)
        return probabilities, temporal, spatial

    try:
        if on_plan is not None:
            on_plan(len(plan(info.num_frames, info.fps, span, model.clip_length, options)[2]))
        timeline = compute_timeline(decoded_frames(path, damage), info.num_frames, info.fps, span, model.clip_length,
                                    (model.height, model.width), class_names, predict,
                                    batch_size=model.max_batch_size, concurrency=concurrency, options=options,
                                    on_window=on_window)
    except TimelineError as exc:
        return VideoTimeline(video=str(path), fps=info.fps, error=f"{path}: {exc}", notes=tuple(notes))
    except (VideoDecodeError, ServingError, ValueError) as exc:
        return VideoTimeline(video=str(path), fps=info.fps, error=str(exc), notes=tuple(notes))
    finally:
        for clone in clones:
            clone.close()
    if timeline.background is None:
        notes.append(NO_BACKGROUND_NOTE)
    error = None
    if timeline.damage or damage:
        reasons = "; ".join([*damage, *([timeline.damage] if timeline.damage else [])])
        error = f"cannot read video {path} to its end: {reasons}"
    return VideoTimeline(video=str(path), fps=info.fps, frames=timeline.num_frames, segments=tuple(timeline.segments),
                         error=error, notes=tuple(notes), timeline=timeline if keep_timeline else None)
