"""Background and action windows (training.windows): background windows lie outside every action, at the
span and stride of action clips; untrimmed segments give action windows inside (long) or around (short) them;
trimmed clips keep their whole-clip sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stanet.dataset_format import ClipRecord, Segment
from stanet.sampling import sample_frame_indices
from training.windows import (ACTION, BACKGROUND, CLIP, background_count, clip_span, epoch_backgrounds,
                              idle_stretches, plan_samples, window_indices)

T, SPAN = 8, 32


def _trimmed(interval, label_index=0) -> ClipRecord:
    return ClipRecord(video=Path("clip.mp4"), label="a", label_index=label_index, split="train", interval=interval,
                      boxes=None, line=1)


def _untrimmed(*segments) -> ClipRecord:
    return ClipRecord(video=Path("long.mp4"), label=None, label_index=None, split="train", interval=None,
                      boxes=None, line=2, segments=tuple(Segment(f"c{k}", k, f, l) for k, f, l in segments))


def test_idle_stretches_are_the_frames_outside_every_action() -> None:
    assert idle_stretches([(10, 20), (15, 30), (50, 59)], 60) == [(0, 9), (31, 49)]
    assert idle_stretches([], 5) == [(0, 4)]
    assert idle_stretches([(0, 4)], 5) == []


def test_untrimmed_and_trimmed_records_plan_actions_and_background() -> None:
    records = [_trimmed((10, 21)), _trimmed(None, 1), _untrimmed((0, 100, 115), (1, 200, 260), (0, 262, 270))]
    actions, backgrounds = plan_samples(records, [32, 32, 400], SPAN, background_index=2, min_idle=16)
    assert [(s.record, s.kind, s.label_index, s.action) for s in actions] == [
        (0, CLIP, 0, (10, 21)), (1, CLIP, 1, None),
        (2, ACTION, 0, (100, 115)), (2, ACTION, 1, (200, 260)), (2, ACTION, 0, (262, 270))]
    # The trimmed clip's idle parts (10 and 10 frames) are shorter than min_idle; the untrimmed video's gaps
    # [0, 99] (3 spans), [116, 199] (2), [271, 399] (4) give candidates; the 1-frame gap at 261 none.
    assert [(s.region, s.label_index) for s in backgrounds] == (
        [((0, 99), 2)] * 3 + [((116, 199), 2)] * 2 + [((271, 399), 2)] * 4)
    assert all(s.kind == BACKGROUND and s.action is None for s in backgrounds)
    assert plan_samples(records, [32, 32, 400], SPAN, background_index=None, min_idle=16)[1] == []
    # As many background samples per epoch as the average class has: 5 actions over 2 classes -> 3.
    assert background_count(actions, backgrounds) == 3
    chosen = [epoch_backgrounds(backgrounds, 3, seed=1, epoch=e) for e in range(4)]
    assert chosen[0] == epoch_backgrounds(backgrounds, 3, seed=1, epoch=0) and len({tuple(map(id, c)) for c in chosen}) > 1


@pytest.mark.parametrize("random", [False, True])
def test_background_windows_lie_outside_every_segment_with_the_action_span(random: bool) -> None:
    record = _untrimmed((0, 100, 115), (1, 200, 260))
    actions, backgrounds = plan_samples([record], [400], SPAN, background_index=2, min_idle=16)
    rng = np.random.default_rng(0)
    action_frames = set(range(100, 116)) | set(range(200, 261))
    stride = np.diff(sample_frame_indices(SPAN, T))  # the action clips' stride (centres)
    for _ in range(20):
        for sample in backgrounds:
            indices = window_indices(sample, 400, SPAN, T, random=random, rng=rng)
            assert len(indices) == T and not action_frames & set(indices.tolist())
            first, last = sample.region
            assert first <= indices.min() and indices.max() <= last
            assert indices.max() - indices.min() < SPAN and np.all(np.diff(indices) >= 0)
            if not random:
                np.testing.assert_array_equal(np.diff(indices), stride)


def test_short_idle_stretches_give_a_window_of_the_whole_stretch() -> None:
    record = _untrimmed((0, 20, 40))  # gaps [0, 19] (20 frames) and [41, 59] (19)
    _, backgrounds = plan_samples([record], [60], SPAN, background_index=1, min_idle=16)
    assert [s.region for s in backgrounds] == [(0, 19), (41, 59)]
    indices = window_indices(backgrounds[0], 60, SPAN, T, random=False, rng=None)
    np.testing.assert_array_equal(indices, sample_frame_indices(20, T))


def test_action_windows_hold_the_segment_or_lie_inside_it() -> None:
    rng = np.random.default_rng(3)
    short = plan_samples([_untrimmed((0, 100, 115))], [400], SPAN, background_index=None, min_idle=1)[0][0]
    long = plan_samples([_untrimmed((0, 100, 199))], [400], SPAN, background_index=None, min_idle=1)[0][0]
    edge = plan_samples([_untrimmed((0, 2, 9))], [400], SPAN, background_index=None, min_idle=1)[0][0]
    for _ in range(20):
        short_indices = window_indices(short, 400, SPAN, T, random=True, rng=rng)
        assert short_indices.min() >= 115 - SPAN + 1 and short_indices.max() <= 100 + SPAN - 1
        long_indices = window_indices(long, 400, SPAN, T, random=True, rng=rng)
        assert 100 <= long_indices.min() and long_indices.max() <= 199
        assert window_indices(edge, 400, SPAN, T, random=True, rng=rng).min() >= 0
    centred = window_indices(short, 400, SPAN, T, random=False, rng=None)
    assert centred.min() < 100 and centred.max() > 115  # the short action with idle time on both sides


def test_trimmed_clips_keep_whole_clip_sampling_and_the_span_is_their_median_length() -> None:
    actions, _ = plan_samples([_trimmed((3, 9))], [48], SPAN, background_index=None, min_idle=1)
    np.testing.assert_array_equal(window_indices(actions[0], 48, SPAN, T, random=False, rng=None),
                                  sample_frame_indices(48, T))
    span = clip_span([_trimmed(None), _trimmed(None), _trimmed(None), _untrimmed((0, 1, 5))], [30, 32, 40, 900],
                     [10.0, 10.0, 10.0, 10.0])
    assert (span.frames, span.seconds) == (32, 3.2)
    assert clip_span([_untrimmed((0, 1, 10), (1, 20, 39))], [100], [25.0]).frames == 15
