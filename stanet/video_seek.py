"""Reading a few far-apart frames of a long video by seeking (PyAV, numpy only), for `stanet.video.read_frames`.

Frame k of a video is the k-th frame in presentation order, as `stanet.video.iter_frames` counts them. The
presentation time of every frame is known without decoding: demuxing gives every packet's pts, and sorted
they are the frames' pts in presentation order. A wanted frame is then reached by seeking to the keyframe
at or before its pts and decoding forward to it. Whenever that cannot be exact (a packet without pts, two
packets with one pts, fewer packets than frames asked for, a decoded frame that is not where its pts said,
an open GOP whose leading frames start after the target), `read_by_seeking` returns None and the caller
decodes the stream from the start instead: seeking only ever saves time, it never changes a frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

# Seek only past a run of at least this many frames that would otherwise be decoded for nothing (about one
# GOP of common encoders; below it, decoding straight on is as fast as seeking back to a keyframe).
SEEK_GAP_FRAMES = 300


def worth_seeking(wanted: Sequence[int]) -> bool:
    """Whether the sorted frame indices `wanted` leave a gap (from frame 0 on) long enough to seek over."""
    positions = [0, *wanted]
    return any(b - a > SEEK_GAP_FRAMES for a, b in zip(positions, positions[1:]))


def presentation_times(container: av.container.InputContainer, stream) -> list[int] | None:
    """Every frame's pts in presentation order, from the packets (no decoding); None where not exact."""
    times = []
    for packet in container.demux(stream):
        if packet.size:
            if packet.pts is None:
                return None
            times.append(int(packet.pts))
    times.sort()
    if any(b == a for a, b in zip(times, times[1:])):
        return None
    return times


def stream_fps(stream) -> float:
    """The frame rate `stanet.video` reports: the container's average rate, else its guess, else 25."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate and float(rate) > 0 else 25.0


def read_by_seeking(path: str | Path, wanted: Sequence[int]
                    ) -> tuple[float, dict[int, tuple[float, np.ndarray]]] | None:
    """(fps, {frame index: (seconds, frame (H, W, 3) uint8 RGB)}) for the sorted, distinct indices `wanted`,
    or None when seeking cannot be exact (then nothing is lost but the time spent; the caller streams).

    Seconds are `(pts - stream start) * time_base`, as in `iter_frames`.
    """
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            times = presentation_times(container, stream)
            if times is None or len(times) <= max(wanted):
                return None
            origin = stream.start_time if stream.start_time is not None else 0
            stream.thread_type = "AUTO"
            found: dict[int, tuple[float, np.ndarray]] = {}
            position = -1  # index of the last frame decoded, -1 after a seek
            frames = None
            for index in wanted:
                target = times[index]
                if frames is None or index - position > SEEK_GAP_FRAMES:
                    container.seek(target, stream=stream, backward=True, any_frame=False)
                    frames = container.decode(stream)
                    position = -1
                for frame in frames:
                    if frame.pts is None:
                        return None
                    if frame.pts < target:
                        position = index - 1  # still before it: decoding on
                        continue
                    if frame.pts != target:
                        return None  # the target was not decodable from that keyframe (an open GOP)
                    found[index] = (float((frame.pts - origin) * stream.time_base), frame.to_ndarray(format="rgb24"))
                    position = index
                    break
                else:
                    return None
            if len({frame.shape for _, frame in found.values()}) != 1:
                return None  # the frame size changes: the stream's own decode says so, with its error
            return stream_fps(stream), found
    except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError, IndexError):
        return None
