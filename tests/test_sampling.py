"""Frame sampling shared by training, evaluation, export and the client."""

from __future__ import annotations

import numpy as np
import pytest

from stanet.sampling import sample_clip, sample_frame_indices, scale_box


def test_centre_sampling_takes_each_segments_middle():
    np.testing.assert_array_equal(sample_frame_indices(32, 4), [4, 12, 20, 28])
    np.testing.assert_array_equal(sample_frame_indices(10, 3), [1, 5, 8])


def test_random_sampling_stays_inside_each_segment_and_is_seeded():
    a = sample_frame_indices(100, 10, random=True, rng=np.random.default_rng(3))
    b = sample_frame_indices(100, 10, random=True, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert all(10 * i <= a[i] < 10 * (i + 1) for i in range(10))


def test_short_videos_repeat_their_last_frame():
    np.testing.assert_array_equal(sample_frame_indices(3, 6), [0, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(sample_frame_indices(1, 4), [0, 0, 0, 0])


def test_sample_clip_resizes_the_sampled_frames():
    frames = np.zeros((8, 20, 30, 3), dtype=np.uint8)
    frames[5] = 200
    clip, indices = sample_clip(frames, 4, 10, 16)
    assert clip.shape == (4, 10, 16, 3) and clip.dtype == np.uint8
    np.testing.assert_array_equal(indices, [1, 3, 5, 7])
    assert clip[2].min() == 200 and clip[1].max() == 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="at least 1 frame"):
        sample_frame_indices(0, 4)
    with pytest.raises(ValueError, match="random sampling needs an rng"):
        sample_frame_indices(10, 4, random=True)
    with pytest.raises(ValueError, match=r"frames must be \(N, H, W, 3\) RGB"):
        sample_clip(np.zeros((4, 8, 8), dtype=np.uint8), 2, 4, 4)


def test_scale_box():
    assert scale_box((10, 20, 30, 40), (100, 200), (50, 50)) == (2.5, 10.0, 7.5, 20.0)
