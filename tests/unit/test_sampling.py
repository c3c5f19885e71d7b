"""Frame sampling shared by training, evaluation, export and the client."""

from __future__ import annotations

import numpy as np
import pytest

from stanet.sampling import (crop_box, crop_frames, random_crop_window, sample_clip, sample_frame_indices,
                             scale_box)


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


def test_crop_window_respects_area_and_aspect_and_is_seeded():
    for seed in range(20):
        x1, y1, x2, y2 = random_crop_window(40, 60, np.random.default_rng(seed), min_area=0.5, max_aspect=1.5)
        assert 0 <= x1 < x2 <= 60 and 0 <= y1 < y2 <= 40
        assert (x2 - x1) * (y2 - y1) >= 0.5 * 40 * 60 * 0.9  # rounding to whole pixels
    a = random_crop_window(40, 60, np.random.default_rng(3), min_area=0.3, max_aspect=2.0)
    assert a == random_crop_window(40, 60, np.random.default_rng(3), min_area=0.3, max_aspect=2.0)
    assert random_crop_window(40, 60, np.random.default_rng(3), min_area=1.0, max_aspect=1.0) == (0, 0, 60, 40)
    with pytest.raises(ValueError, match=r"min_area must be in \(0, 1\]"):
        random_crop_window(40, 60, np.random.default_rng(0), min_area=0.0, max_aspect=1.0)


def test_crop_keeps_the_box_on_the_actor():
    """A hand-made frame: a bright actor at x 20-30, y 10-20 of a 40x40 frame; crop the window x 10-30,
    y 0-20 (20x20) and scale it 2x to 40x40: the actor must fill exactly the mapped box (20, 20, 40, 40)."""
    frames = np.zeros((2, 40, 40, 3), dtype=np.uint8)
    frames[:, 10:20, 20:30] = 255
    window = (10, 0, 30, 20)
    cropped = crop_frames(frames, window, 40, 40)
    box = crop_box((20, 10, 30, 20), window, (40, 40))
    assert box == (20.0, 20.0, 40.0, 40.0)
    x1, y1, x2, y2 = (int(v) for v in box)
    assert cropped[:, y1 + 1:y2 - 1, x1 + 1:x2 - 1].min() == 255  # inside the box: the actor
    outside = cropped.copy()
    outside[:, y1 - 1:, x1 - 1:] = 0
    assert outside.max() == 0  # outside it (one pixel of bilinear edge spared): nothing
    # a box partly out of the window is clipped to it; one wholly outside is gone
    assert crop_box((25, 15, 35, 25), window, (40, 40)) == (30.0, 30.0, 40.0, 40.0)
    assert crop_box((32, 5, 38, 10), window, (40, 40)) is None
    with pytest.raises(ValueError, match="crop window .* is not inside frames of 40x40"):
        crop_frames(frames, (0, 0, 41, 20), 40, 40)
