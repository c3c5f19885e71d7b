"""Streamed decoding (stanet.video.iter_frames, read_frames, sample_video): the frames it keeps equal a full
decode's, timestamps come from the file (variable frame rate included), and memory does not grow with the
length of the video."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from stanet.sampling import sample_frame_indices
from stanet.video import VideoDecodeError, iter_frames, read_frames, read_video, sample_video, write_video

SIZE = 96  # frames of 96x96x3 = 27 KB each


def _video(path: Path, frames: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    # Smooth content (a moving gradient) so H.264 keeps it close; every frame differs.
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    pictures = np.empty((frames, SIZE, SIZE, 3), np.uint8)
    for i in range(frames):
        pictures[i, ..., 0] = (x * 2 + i * 3) % 256
        pictures[i, ..., 1] = (y * 2 + i) % 256
        pictures[i, ..., 2] = rng.integers(0, 256)
    write_video(path, pictures, fps=25)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("streaming")
    return _video(root / "short.mp4", 40), _video(root / "long.mp4", 400, seed=1)


def test_streamed_frames_equal_the_full_decode(videos) -> None:
    _, long = videos
    full = read_video(long)
    streamed = list(iter_frames(long))
    assert [item.index for item in streamed] == list(range(len(full.frames))) == list(range(400))
    np.testing.assert_array_equal(np.stack([item.frame for item in streamed]), full.frames)
    np.testing.assert_allclose([item.seconds for item in streamed], np.arange(400) / 25, atol=1e-6)
    np.testing.assert_allclose(full.timestamps, np.arange(400) / 25, atol=1e-6)

    window = list(iter_frames(long, start=100, stop=132))
    assert [index for index, _, _ in window] == list(range(100, 132))
    np.testing.assert_array_equal(np.stack([frame for _, _, frame in window]), full.frames[100:132])

    indices = np.array([399, 3, 3, 250, 0])
    picked = read_frames(long, indices)
    np.testing.assert_array_equal(picked.frames, full.frames[indices])
    np.testing.assert_allclose(picked.timestamps, indices / 25, atol=1e-6)

    sampled = sample_video(long, lambda n: sample_frame_indices(n, 16))
    assert sampled.num_frames == 400 and sampled.fps == 25
    np.testing.assert_array_equal(sampled.indices, sample_frame_indices(400, 16))
    np.testing.assert_array_equal(sampled.frames, full.frames[sampled.indices])


def test_variable_frame_rate_timestamps_are_seconds(tmp_path: Path) -> None:
    times = [0.0, 0.04, 0.2, 0.25, 1.0, 1.01, 2.5]
    frames = np.random.default_rng(0).integers(0, 256, (len(times), 32, 32, 3), dtype=np.uint8)
    write_video(tmp_path / "vfr.mp4", frames, timestamps=times)
    np.testing.assert_allclose([seconds for _, seconds, _ in iter_frames(tmp_path / "vfr.mp4")], times, atol=1e-3)


def test_asking_past_the_end_names_the_real_length(videos) -> None:
    short, _ = videos
    with pytest.raises(VideoDecodeError, match=r"frame 40 asked for, the video decodes 40 frames") as info:
        read_frames(short, [0, 40])
    assert info.value.frames_decoded == 40 and str(short) in str(info.value)
    with pytest.raises(VideoDecodeError, match="no such file"):
        list(iter_frames(short.with_name("missing.mp4")))


def _peak_bytes(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_length(videos) -> None:
    short, long = videos  # 40 and 400 frames
    frame_bytes = SIZE * SIZE * 3

    def sample(path: Path):
        return lambda: sample_video(path, lambda n: sample_frame_indices(n, 16))

    def stream(path: Path):
        return lambda: sum(int(frame[0, 0, 0]) for _, _, frame in iter_frames(path))

    short_sample, long_sample = _peak_bytes(sample(short)), _peak_bytes(sample(long))
    short_stream, long_stream = _peak_bytes(stream(short)), _peak_bytes(stream(long))
    full = _peak_bytes(lambda: read_video(long))
    # 10x the frames: the streamed paths stay within a few frames of the short video's peak (lenient bound),
    # while decoding everything holds every frame (the check can fail).
    assert long_sample < short_sample + 8 * frame_bytes, (short_sample, long_sample)
    assert long_stream < short_stream + 8 * frame_bytes, (short_stream, long_stream)
    assert long_sample < 40 * frame_bytes and full > 400 * frame_bytes, (long_sample, full)


def test_damage_in_the_middle_yields_the_frames_before_it_then_names_the_error(videos, tmp_path: Path) -> None:
    _, long = videos
    data = bytearray(long.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    full = read_video(long)
    seen = []
    with pytest.raises(VideoDecodeError, match=r"decoding failed after frame") as info:
        for index, _, frame in iter_frames(damaged):
            seen.append(index)
    assert 0 < len(seen) == info.value.frames_decoded < 400 and seen == list(range(len(seen)))
    assert str(damaged) in str(info.value)
    kept = read_video(damaged)  # the whole-file reader keeps what decoded, as before
    assert len(kept.frames) == len(seen)
    np.testing.assert_array_equal(kept.frames[:10], full.frames[:10])


def test_far_frames_are_sought_and_equal_the_streamed_ones(videos, tmp_path: Path) -> None:
    from stanet.video_seek import SEEK_GAP_FRAMES, read_by_seeking, worth_seeking  # noqa: PLC0415

    _, long = videos
    full = read_video(long)
    wanted = [5, 6, 340, 399]
    assert worth_seeking(wanted) and not worth_seeking([0, SEEK_GAP_FRAMES])
    fps, found = read_by_seeking(long, wanted)  # the seek path really answers for this file
    assert fps == 25 and sorted(found) == wanted
    for index in wanted:
        np.testing.assert_array_equal(found[index][1], full.frames[index])
        assert found[index][0] == pytest.approx(index / 25, abs=1e-6)
    picked = read_frames(long, [399, 5, 340, 6, 399])
    np.testing.assert_array_equal(picked.frames, full.frames[[399, 5, 340, 6, 399]])
    np.testing.assert_array_equal(read_frames(long, [399, 5], seek=False).frames, picked.frames[:2])

    times = np.concatenate([np.arange(200) * 0.04, 8.0 + np.arange(200) * 0.1])  # 25 fps, then 10 fps
    frames = np.stack([frame for _, _, frame in iter_frames(long)])
    write_video(tmp_path / "vfr.mp4", frames, timestamps=times)
    streamed = read_frames(tmp_path / "vfr.mp4", [1, 350], seek=False)
    sought = read_frames(tmp_path / "vfr.mp4", [1, 350])
    np.testing.assert_array_equal(sought.frames, streamed.frames)
    np.testing.assert_allclose(sought.timestamps, [0.04, 8.0 + 150 * 0.1], atol=1e-3)
    np.testing.assert_allclose(streamed.timestamps, sought.timestamps)
    assert read_by_seeking(tmp_path / "missing.mp4", [1, 350]) is None


def test_the_frame_by_frame_writer_takes_rgb_or_the_encoders_own_planes(tmp_path: Path) -> None:
    from stanet.video import VideoWriter

    h, w = 48, 64
    planes = np.zeros((h * 3 // 2, w), np.uint8)  # Y above U and V
    planes[:h] = 200
    planes[h:] = 128  # no colour
    with VideoWriter(tmp_path / "yuv.mp4", w, h, 10, input_format="yuv420p") as writer:
        for _ in range(5):
            writer.write(planes)
    with VideoWriter(tmp_path / "rgb.mp4", w, h, 10) as writer:
        for _ in range(5):
            writer.write(np.full((h, w, 3), 200, np.uint8))
    yuv, rgb = read_video(tmp_path / "yuv.mp4"), read_video(tmp_path / "rgb.mp4")
    assert yuv.frames.shape == rgb.frames.shape == (5, h, w, 3)
    # Y = 200 with neutral chroma is a grey of about (200 - 16) * 255 / 219 = 214 in every channel.
    assert np.abs(yuv.frames.astype(int) - 214).max() <= 3
    assert np.abs(rgb.frames.astype(int) - 200).max() <= 3
    with VideoWriter(tmp_path / "bad.mp4", w, h, 10) as writer:
        with pytest.raises(ValueError, match=r"uint8 \(48, 64, 3\) \(rgb24\)"):
            writer.write(planes)
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", 63, 48)
