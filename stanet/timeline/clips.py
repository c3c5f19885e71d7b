"""Model inputs of a timeline's windows, from a stream of decoded frames (numpy + Pillow, no torch): shared
by the serving client and by `stanet evaluate --timeline`, so both send the model the same clips.

Frames arrive one at a time; each is resized to the model's size as it arrives and kept only while a window
still needs it, so memory holds about one window of model-size frames whatever the video's length. A window
is yielded as soon as its last frame has arrived. A stream that ends early (a file damaged in the middle)
simply stops: `frames_read` says how far it got.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from stanet.sampling import resize_frames
from stanet.timeline.windows import Window
from stanet.video import VideoDecodeError, iter_frames


def decoded_frames(path: str | Path, damage: list[str] | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """(frame, seconds) pairs of a video in decode order, streamed (stanet.video.iter_frames: one frame in
    memory at a time). A file damaged after its first frame ends the stream there, its reason appended to
    `damage`; one that cannot be read at all raises VideoDecodeError."""
    try:
        for item in iter_frames(path):
            yield item.frame, item.seconds
    except VideoDecodeError as exc:
        if damage is None or not exc.frames_decoded:
            raise
        damage.append(exc.reason)


class WindowStream:
    """Iterate (window index, clip (T, height, width, 3) uint8) over `frames`: (frame (H, W, 3) uint8 RGB,
    presentation seconds or NaN) pairs in decode order."""

    def __init__(self, frames: Iterable[tuple[np.ndarray, float]], windows: list[Window], height: int, width: int):
        self._frames, self.windows, self.height, self.width = frames, windows, height, width
        self.frames_read = 0
        self.frame_hw: tuple[int, int] | None = None
        self.timestamps: list[float] = []
        self._wanted = set(int(i) for w in windows for i in w.frame_indices)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        buffer: dict[int, np.ndarray] = {}
        pending = 0  # the next window to yield
        for index, (frame, seconds) in enumerate(self._frames):
            self.frames_read = index + 1
            self.timestamps.append(float(seconds))
            if self.frame_hw is None:
                self.frame_hw = (int(frame.shape[0]), int(frame.shape[1]))
            if index in self._wanted:
                buffer[index] = resize_frames(np.asarray(frame)[None], self.height, self.width)[0]  # (H, W, 3)
            while pending < len(self.windows) and int(self.windows[pending].frame_indices.max()) <= index:
                indices = self.windows[pending].frame_indices
                yield pending, np.stack([buffer[int(i)] for i in indices])  # (T, H, W, 3)
                pending += 1
                if pending < len(self.windows):
                    first_needed = int(self.windows[pending].frame_indices.min())
                    for old in [k for k in buffer if k < first_needed]:
                        del buffer[old]
        # The stream is read to its end even after the last window: frames_read then tells a complete
        # video from one that ends early.
