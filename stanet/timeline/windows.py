"""Cutting a long video into the windows a timeline asks the model about (numpy only, no torch).

A window spans what one training clip spanned (`ClipSpan`, recorded in the checkpoint and in the served
model's config.pbtxt), and its T frames are taken the way evaluation samples a clip: the centre frame of T
equal segments of the window. Windows start every `stride` frames (default: half a window); the last window
is aligned to the end of the video, so every frame is covered. A video shorter than one window gives one
window starting at frame 0 whose samples past the end repeat the last frame (padding), so the model still
sees frames at the rate it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_STRIDE_FRACTION = 0.5  # stride = half a window unless asked otherwise


class TimelineError(ValueError):
    """A timeline cannot be computed as asked: a bad stride, span or video length, named with the value."""


@dataclass(frozen=True)
class ClipSpan:
    """How much of a video one training clip covered: `frames` at the training videos' frame rate, and the
    same in `seconds`."""

    frames: int
    seconds: float

    def __post_init__(self) -> None:
        if self.frames < 1 or not self.seconds > 0:
            raise TimelineError(f"a clip span needs frames >= 1 and seconds > 0, got {self.frames} frames, "
                                f"{self.seconds} s")

    def to_dict(self) -> dict[str, float]:
        return {"frames": int(self.frames), "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, values: dict) -> "ClipSpan":
        return cls(frames=int(values["frames"]), seconds=float(values["seconds"]))

    def frames_at(self, fps: float) -> int:
        """The span in frames of a video at `fps`: the training span in seconds, so a 60 fps video gets
        windows of the same duration as a 30 fps one."""
        if not fps > 0:
            raise TimelineError(f"the video's frame rate must be > 0, got {fps}")
        return max(1, int(round(self.seconds * fps)))


@dataclass(frozen=True)
class Window:
    start: int  # first frame the window covers
    stop: int  # one past the last frame it covers (may pass the video's end: padding)
    frame_indices: np.ndarray  # (T,) int64, the frames sampled, clipped to the video's last frame

    @property
    def span(self) -> int:
        return self.stop - self.start


def stride_frames(span_frames: int, fps: float, *, stride_seconds: float | None = None,
                  stride_frames: int | None = None) -> int:
    """The stride in frames: `stride_frames`, or `stride_seconds` at `fps`, or half a window."""
    if stride_seconds is not None and stride_frames is not None:
        raise TimelineError("give the stride in seconds or in frames, not both")
    if stride_frames is not None:
        if stride_frames <= 0:
            raise TimelineError(f"the stride must be > 0 frames, got {stride_frames}")
        return int(stride_frames)
    if stride_seconds is not None:
        if not stride_seconds > 0:
            raise TimelineError(f"the stride must be > 0 seconds, got {stride_seconds}")
        return max(1, int(round(stride_seconds * fps)))
    return max(1, int(round(span_frames * DEFAULT_STRIDE_FRACTION)))


def window_frame_indices(start: int, span: int, clip_length: int, num_frames: int) -> np.ndarray:
    """The T frames of a window [start, start + span): the centre of T equal segments, clipped to the
    video (the last frame repeats past its end)."""
    centres = start + (np.arange(clip_length) + 0.5) * span / clip_length
    return np.minimum(np.floor(centres).astype(np.int64), num_frames - 1)


def plan_windows(num_frames: int, span_frames: int, clip_length: int, stride: int) -> list[Window]:
    """Windows over a video of `num_frames`: starts 0, stride, 2 stride, ... while the window fits, then one
    aligned to the end; one padded window when the video is shorter than a window.

    Raises TimelineError for a stride <= 0 or longer than the video, or an empty video."""
    if num_frames < 1:
        raise TimelineError(f"a video needs at least 1 frame for a timeline, got {num_frames}")
    if span_frames < 1 or clip_length < 1:
        raise TimelineError(f"window span and clip length must be >= 1, got {span_frames} and {clip_length}")
    if stride <= 0:
        raise TimelineError(f"the stride must be > 0 frames, got {stride}")
    if stride > num_frames:
        raise TimelineError(f"the stride ({stride} frames) is longer than the video ({num_frames} frames)")
    if num_frames <= span_frames:
        starts = [0]
    else:
        starts = list(range(0, num_frames - span_frames + 1, stride))
        if starts[-1] + span_frames < num_frames:
            starts.append(num_frames - span_frames)  # the last window ends with the video
    return [Window(start=s, stop=s + span_frames,
                   frame_indices=window_frame_indices(s, span_frames, clip_length, num_frames)) for s in starts]
