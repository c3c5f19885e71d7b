"""Video decoding and encoding with PyAV (numpy only, no torch): shared by the dataset reader, the
synthetic generator, the serving client and the tests.

Frames are returned in the decoder's output (presentation) order and clips are sampled by frame index, so
variable-frame-rate files and irregular timestamps need nothing special: every decoded frame is kept, none is
dropped or duplicated to a constant rate. The timestamps are returned for whoever wants time: (pts - the
stream's start) * time_base of each frame, in seconds (index / fps where a frame has no pts); `fps` is the container's average rate,
metadata only.

Memory: `read_video` holds every frame of the file, so it is for short clips only. Every path that may meet
a long video streams instead: `iter_frames` yields one frame at a time, `read_frames` keeps only the frames
asked for and stops decoding after the last of them, `sample_video` samples a clip that way (frame count
from the container, corrected by decoding when the header was wrong). Their memory is bounded by the frames
kept, whatever the length of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from stanet.video_seek import read_by_seeking, stream_fps, worth_seeking


VFR_TICKS_PER_SECOND = 1000  # time base of variable-frame-rate files written by write_video


class VideoDecodeError(RuntimeError):
    """A video file could not be read: missing, empty, corrupt, truncated or not a video.

    `frames_decoded` is how many frames were decoded (and yielded by `iter_frames`) before the error: 0 when
    the file is unreadable from the start, more when it is damaged in the middle."""

    def __init__(self, path: str | Path, reason: str, *, frames_decoded: int = 0):
        self.path = str(path)
        self.reason = reason
        self.frames_decoded = frames_decoded
        super().__init__(f"cannot read video {self.path}: {reason}")


class StreamedFrame(NamedTuple):
    """One decoded frame of `iter_frames`: its 0-based index in presentation order, its presentation time in
    seconds (pts * time_base, relative to the stream's start; index / fps where the frame has no pts) and the
    frame, (H, W, 3) uint8 RGB."""

    index: int
    seconds: float
    frame: np.ndarray


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    fps: float
    timestamps: np.ndarray | None = None  # (N,) float64 seconds of presentation (StreamedFrame.seconds)


def read_video(path: str | Path, *, max_frames: int | None = None) -> Video:
    """Decode every frame (or the first `max_frames`) of a video file to RGB uint8. Holds the whole video in
    memory: for short clips; a long video goes through `iter_frames`, `read_frames` or `sample_video`.
    A file damaged in the middle keeps the frames decoded before the damage."""
    frames: list[np.ndarray] = []
    times: list[float] = []
    fps_seen: list[float] = []
    try:
        for index, seconds, frame in iter_frames(path, stop=max_frames, on_open=fps_seen.append):
            frames.append(frame)
            times.append(seconds)
    except VideoDecodeError as exc:
        if not exc.frames_decoded or exc.reason.startswith(_SIZE_CHANGE):
            raise
    return Video(frames=np.stack(frames), fps=fps_seen[0], timestamps=np.asarray(times))


_SIZE_CHANGE = "frame size changes inside the video"


def iter_frames(path: str | Path, *, start: int = 0, stop: int | None = None,
                on_open: Callable[[float], object] | None = None) -> Iterator[StreamedFrame]:
    """Stream the frames [start, stop) of a video, one at a time (memory: one frame, whatever the length).

    Frames before `start` are decoded but not converted to RGB; decoding stops at `stop`. Each item is a
    StreamedFrame (index, seconds, frame), which unpacks as a tuple. `on_open` is called once with the frame
    rate (the container's average rate, 25.0 when it has none) before the first frame.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video or holds no decodable frame (before any
            frame is yielded), or decoding fails later (a file damaged in the middle): the frames before the
            damage have been yielded and `frames_decoded` says how many.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "the file is empty")
    if start < 0 or (stop is not None and stop < 0):
        raise ValueError(f"start and stop must be >= 0, got start={start}, stop={stop}")
    decoded = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = stream_fps(stream)
            if on_open is not None:
                on_open(fps)
            origin = stream.start_time if stream.start_time is not None else 0
            time_base = stream.time_base
            shape = None
            if stop is not None and stop <= start:
                return
            for frame in container.decode(stream):
                index = decoded
                if frame.pts is None or time_base is None:
                    seconds = index / fps
                else:
                    seconds = float((frame.pts - origin) * time_base)
                if shape is None:
                    shape = (frame.height, frame.width)
                elif (frame.height, frame.width) != shape:
                    raise VideoDecodeError(path, f"{_SIZE_CHANGE}: {[(*shape, 3), (frame.height, frame.width, 3)]}",
                                           frames_decoded=decoded)
                decoded += 1
                if index >= start:
                    yield StreamedFrame(index, seconds, frame.to_ndarray(format="rgb24"))
                if stop is not None and decoded >= stop:
                    return
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError) as exc:
        if not decoded:
            raise VideoDecodeError(path, f"not a decodable video ({type(exc).__name__}: {exc})") from None
        raise VideoDecodeError(path, f"decoding failed after frame {decoded - 1} ({type(exc).__name__}: {exc})",
                               frames_decoded=decoded) from None
    if not decoded:
        raise VideoDecodeError(path, "the video stream holds no decodable frame")


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray, *, seek: bool = True) -> Video:
    """The frames at `indices` (any order, repeats allowed) of a video, decoding up to the largest and
    keeping only those: memory is len(set(indices)) frames, whatever the length of the file. With `seek`,
    frames far apart are reached by seeking (stanet.video_seek: the same frames, exactly, or no seeking).

    Returns:
        Video with frames (len(indices), H, W, 3) in the order of `indices` and their timestamps (seconds).

    Raises:
        VideoDecodeError: the file cannot be decoded, or holds fewer frames than max(indices) + 1 (then
            `frames_decoded` is the real frame count).
    """
    wanted = np.asarray(indices, dtype=np.int64)
    if wanted.ndim != 1 or not len(wanted) or wanted.min() < 0:
        raise ValueError(f"indices must be a non-empty list of frame indices >= 0, got {wanted.tolist()[:8]}")
    needed = set(int(i) for i in wanted)
    if seek and worth_seeking(sorted(needed)):
        sought = read_by_seeking(path, sorted(needed))
        if sought is not None:
            fps, found = sought
            return Video(frames=np.stack([found[int(i)][1] for i in wanted]), fps=fps,
                         timestamps=np.asarray([found[int(i)][0] for i in wanted]))
    kept: dict[int, StreamedFrame] = {}
    fps_seen: list[float] = []
    count = 0
    try:
        for item in iter_frames(path, start=int(wanted.min()), stop=int(wanted.max()) + 1, on_open=fps_seen.append):
            count = item.index + 1
            if item.index in needed:
                kept[item.index] = item
    except VideoDecodeError as exc:
        if not exc.frames_decoded or exc.reason.startswith(_SIZE_CHANGE):
            raise
        count = exc.frames_decoded
    if len(kept) < len(needed):
        count = max(count, max(kept, default=-1) + 1)
        raise VideoDecodeError(path, f"frame {int(wanted.max())} asked for, the video decodes {count} frames",
                               frames_decoded=count)
    return Video(frames=np.stack([kept[int(i)].frame for i in wanted]), fps=fps_seen[0],
                 timestamps=np.asarray([kept[int(i)].seconds for i in wanted]))


@dataclass(frozen=True)
class SampledVideo:
    """What `sample_video` returns: the sampled frames at the file's size, which frames they are, and the
    video's frame count, frame size and frame rate."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    indices: np.ndarray  # (T,) int64 frame indices
    num_frames: int
    fps: float


def sample_video(path: str | Path, choose: Callable[[int], np.ndarray]) -> SampledVideo:
    """Decode only the frames `choose(num_frames)` picks (e.g. stanet.sampling.sample_frame_indices), with
    the frame count from the container (`probe_video`); when the file decodes fewer frames than its header
    says (a truncated or damaged file), the frames are chosen again from the real count."""
    num_frames = probe_video(path).num_frames
    indices = np.asarray(choose(num_frames), dtype=np.int64)
    try:
        video = read_frames(path, indices)
    except VideoDecodeError as exc:
        if not exc.frames_decoded:
            raise
        num_frames = exc.frames_decoded
        indices = np.asarray(choose(num_frames), dtype=np.int64)
        video = read_frames(path, indices)
    return SampledVideo(frames=video.frames, indices=indices, num_frames=num_frames, fps=video.fps)


class VideoWriter:
    """An H.264 mp4 written one frame at a time, so that a long video costs one frame of memory; `write_video`
    is this for frames already in memory. Frames are uint8 RGB (H, W, 3), or with `input_format="yuv420p"`
    the encoder's own planes (H * 3/2, W: Y, then U and V at quarter size), which skips a colour conversion
    per frame. H and W even. Use as a context manager: the file is complete (encoder flushed, container
    closed) when the block ends."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float = 25.0, *, crf: int = 18,
                 preset: str = "veryfast", variable_rate: bool = False, input_format: str = "rgb24"):
        if height % 2 or width % 2 or height <= 0 or width <= 0:
            raise ValueError(f"H.264 needs even, positive frame sizes, got {height}x{width}")
        if input_format not in ("rgb24", "yuv420p"):
            raise ValueError(f"input_format must be rgb24 or yuv420p, got {input_format!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height, self.frames = width, height, 0
        self._format = input_format
        self._shape = (height, width, 3) if input_format == "rgb24" else (height * 3 // 2, width)
        self._last_tick = -1
        self._container = av.open(str(path), mode="w")
        self._stream = self._container.add_stream("libx264", rate=int(round(fps)))
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": preset, "tune": "zerolatency"}
        self._variable_rate = variable_rate
        if variable_rate:
            self._stream.codec_context.time_base = self._stream.time_base = Fraction(1, VFR_TICKS_PER_SECOND)

    def write(self, frame: np.ndarray, timestamp: float | None = None) -> None:
        """Append one frame; a variable-rate writer needs its `timestamp` (seconds, increasing)."""
        if frame.shape != self._shape or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 {self._shape} ({self._format}), got {frame.dtype} "
                             f"{tuple(frame.shape)}")
        picture = av.VideoFrame.from_ndarray(frame, format=self._format)
        if self._variable_rate:
            tick = round(timestamp * VFR_TICKS_PER_SECOND) if timestamp is not None else -1
            if tick <= self._last_tick or tick < 0:
                raise ValueError(f"frame {self.frames}: timestamp {timestamp} must be >= 0 and at least "
                                 f"1/{VFR_TICKS_PER_SECOND} s after the previous frame's")
            picture.pts, picture.time_base = tick, Fraction(1, VFR_TICKS_PER_SECOND)
            self._last_tick = tick
        for packet in self._stream.encode(picture):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0, *, crf: int = 18,
                timestamps: Sequence[float] | None = None) -> None:
    """Encode uint8 RGB frames (N, H, W, 3) as H.264 in an mp4 file (H and W even). `timestamps` (seconds,
    increasing, one per frame) writes a variable-frame-rate file instead of a constant `fps`."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    n, h, w, _ = frames.shape  # VideoWriter checks that H and W are even
    if timestamps is not None:
        ticks = [round(t * VFR_TICKS_PER_SECOND) for t in timestamps]
        if len(ticks) != n or any(b <= a for a, b in zip(ticks, ticks[1:])) or (ticks and ticks[0] < 0):
            raise ValueError(f"timestamps must be {n} increasing values >= 0, at least "
                             f"1/{VFR_TICKS_PER_SECOND} s apart, got {list(timestamps)[:8]}")
    with VideoWriter(path, w, h, fps, crf=crf, variable_rate=timestamps is not None) as writer:
        for i, frame in enumerate(frames):
            writer.write(frame, None if timestamps is None else timestamps[i])


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int  # frames in the stream (container metadata, else counted by demuxing)
    fps: float  # the same frame rate read_video reports
    height: int
    width: int


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and frame size of a video, decoding only its first frame (which also proves
    the file decodes). Raises VideoDecodeError like `read_video`."""
    first = read_video(path, max_frames=1)
    _, height, width, _ = first.frames.shape  # (1, H, W, 3)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            num_frames = stream.frames
            if num_frames <= 0:
                # No count in the header (some AVI/MKV/WebM files): count the packets, without decoding.
                num_frames = sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise VideoDecodeError(path, f"cannot count frames ({type(exc).__name__}: {exc})") from None
    if num_frames <= 0:
        raise VideoDecodeError(path, "the video stream holds no frame")
    return VideoInfo(num_frames=int(num_frames), fps=first.fps, height=int(height), width=int(width))
