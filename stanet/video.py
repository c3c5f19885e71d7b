"""Video decoding and encoding with PyAV (numpy only, no torch): shared by the dataset reader, the
synthetic generator, the serving client and the tests.

Frames are returned in the decoder's output (presentation) order and clips are sampled by frame index, so
variable-frame-rate files and irregular timestamps need nothing special: every decoded frame is kept, none is
dropped or duplicated to a constant rate. The timestamps are returned for whoever wants time (NaN where a
frame has none); `fps` is the container's average rate, metadata only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


VFR_TICKS_PER_SECOND = 1000  # time base of variable-frame-rate files written by write_video


class VideoDecodeError(RuntimeError):
    """A video file could not be read: missing, empty, corrupt, truncated or not a video."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")


@dataclass(frozen=True)
class Video:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    fps: float
    timestamps: np.ndarray | None = None  # (N,) float64 seconds of presentation, NaN where unknown


def read_video(path: str | Path, *, max_frames: int | None = None) -> Video:
    """Decode every frame (or the first `max_frames`) of a video file to RGB uint8."""
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "the file is empty")
    frames: list[np.ndarray] = []
    times: list[float] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else float("nan"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError) as exc:
        if not frames:
            raise VideoDecodeError(path, f"not a decodable video ({type(exc).__name__}: {exc})") from None
        # A truncated file: keep the frames decoded before the damage.
    if not frames:
        raise VideoDecodeError(path, "the video stream holds no decodable frame")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoDecodeError(path, f"frame size changes inside the video: {sorted(shapes)}")
    return Video(frames=np.stack(frames), fps=fps if fps > 0 else 25.0, timestamps=np.asarray(times))


def write_video(path: str | Path, frames: np.ndarray, fps: float = 25.0, *, crf: int = 18,
                timestamps: Sequence[float] | None = None) -> None:
    """Encode uint8 RGB frames (N, H, W, 3) as H.264 in an mp4 file (H and W even). `timestamps` (seconds,
    increasing, one per frame) writes a variable-frame-rate file instead of a constant `fps`."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    n, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 needs even frame sizes, got {h}x{w}")
    if timestamps is not None:
        ticks = [round(t * VFR_TICKS_PER_SECOND) for t in timestamps]
        if len(ticks) != n or any(b <= a for a, b in zip(ticks, ticks[1:])) or (ticks and ticks[0] < 0):
            raise ValueError(f"timestamps must be {n} increasing values >= 0, at least "
                             f"1/{VFR_TICKS_PER_SECOND} s apart, got {list(timestamps)[:8]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        if timestamps is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, VFR_TICKS_PER_SECOND)
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if timestamps is not None:
                picture.pts, picture.time_base = ticks[i], Fraction(1, VFR_TICKS_PER_SECOND)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


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
