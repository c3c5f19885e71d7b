"""Fuzzing the client's decoding path (what parses untrusted bytes before anything reaches the server):
corrupted, truncated and random files must end in VideoDecodeError naming the file, or decode to frames
that sample into a valid clip; never another exception, a crash or a hang. Bounded: a fixed number of
seeded examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stanet.sampling import sample_clip
from stanet.video import VideoDecodeError, read_video, write_video

EXAMPLES = 300
OUTCOMES = {"decoded": 0, "refused": 0}


@pytest.fixture(scope="module")
def valid_video(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "valid.mp4"
    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    write_video(path, frames)
    return path.read_bytes()


def _decode(path: Path) -> None:
    try:
        video = read_video(path)
    except VideoDecodeError as exc:
        assert str(path) in str(exc) and exc.reason
        OUTCOMES["refused"] += 1
        return
    OUTCOMES["decoded"] += 1
    assert video.frames.dtype == np.uint8 and video.frames.ndim == 4 and video.frames.shape[-1] == 3
    clip, indices = sample_clip(video.frames, 16, 32, 32)
    assert clip.shape == (16, 32, 32, 3) and len(indices) == 16


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 7)), min_size=1, max_size=40),
       cut=st.one_of(st.none(), st.integers(0, 1 << 30)))
def test_corrupted_videos_decode_or_fail_cleanly(valid_video, tmp_path, flips, cut):
    data = bytearray(valid_video)
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path / "mutated.mp4"
    path.write_bytes(bytes(data))
    _decode(path)


@settings(max_examples=EXAMPLES // 3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=4096), suffix=st.sampled_from([".mp4", ".avi", ".mkv", ".gif", ""]))
def test_random_bytes_fail_cleanly(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    _decode(path)


def test_the_fuzzing_reached_both_outcomes():
    """Mutations that still decode (partly) and ones that do not: the fuzzer exercised both paths."""
    print(OUTCOMES)
    assert OUTCOMES["decoded"] > 10 and OUTCOMES["refused"] > 10, OUTCOMES
