"""Timeline windows, per-frame aggregation and segments on hand-made cases: known segments in, known
segments out (stanet/timeline/)."""

from __future__ import annotations

import numpy as np
import pytest

from stanet.timeline.aggregate import aggregate_windows, mask_peaks
from stanet.timeline.segments import (SegmentOptions, find_segments, frame_seconds, runs, temporal_nms,
                                      window_segments, Segment)
from stanet.timeline.windows import ClipSpan, TimelineError, plan_windows, stride_frames

CLASSES = ("background", "hop", "wave")


def test_windows_stride_half_and_last_aligned_to_end():
    windows = plan_windows(100, 32, 16, stride_frames(32, 25.0))
    assert [w.start for w in windows] == [0, 16, 32, 48, 64, 68]
    assert windows[-1].stop == 100
    assert windows[0].frame_indices.tolist() == list(range(1, 32, 2))  # centres of 2-frame segments


def test_windows_exact_fit_adds_no_extra_window():
    assert [w.start for w in plan_windows(96, 32, 16, 16)] == [0, 16, 32, 48, 64]


def test_video_shorter_than_a_window_gives_one_padded_window():
    (window,) = plan_windows(20, 32, 16, 16)
    assert (window.start, window.stop) == (0, 32)
    assert window.frame_indices[:10].tolist() == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    assert window.frame_indices[10:].tolist() == [19] * 6  # the last frame repeats past the end


@pytest.mark.parametrize("stride, message", [(0, "must be > 0"), (-3, "must be > 0"),
                                             (101, "longer than the video")])
def test_bad_stride_is_named(stride, message):
    with pytest.raises(TimelineError, match=message):
        plan_windows(100, 32, 16, stride)


def test_stride_in_seconds_and_both_units_refused():
    assert stride_frames(32, 30.0, stride_seconds=0.5) == 15
    assert stride_frames(32, 30.0, stride_frames=7) == 7
    with pytest.raises(TimelineError, match="> 0 seconds"):
        stride_frames(32, 30.0, stride_seconds=0.0)
    with pytest.raises(TimelineError, match="not both"):
        stride_frames(32, 30.0, stride_seconds=1.0, stride_frames=3)


def test_clip_span_in_seconds_maps_to_any_frame_rate():
    span = ClipSpan(frames=32, seconds=32 / 25)
    assert span.frames_at(25.0) == 32 and span.frames_at(50.0) == 64
    with pytest.raises(TimelineError):
        ClipSpan(frames=0, seconds=1.0)


def _answers(windows, action: tuple[int, int], label: int, T: int):
    """What an ideal model answers: a window touching the action says `label` with probability 1 and puts
    its temporal attention uniformly on the samples inside the action; any other window says background."""
    probs, temporal = [], []
    for w in windows:
        centres = w.start + (np.arange(T) + 0.5) * w.span / T
        inside = (centres >= action[0]) & (centres <= action[1] + 1)
        p = np.zeros(len(CLASSES))
        if inside.any():
            p[label] = 1.0
            temporal.append(inside / inside.sum())
        else:
            p[0] = 1.0
            temporal.append(np.full(T, 1.0 / T))
        probs.append(p)
    return np.array(probs), np.array(temporal)


def test_known_segment_in_known_segment_out():
    N, span, T, fps = 200, 32, 16, 25.0
    windows = plan_windows(N, span, T, 16)
    probs, temporal = _answers(windows, (60, 139), label=1, T=T)
    scores = aggregate_windows(windows, probs, temporal, None, N, (48, 64))
    options = SegmentOptions(smoothing=0.0)
    (segment,) = find_segments(scores.weighted, CLASSES, span, fps, options=options, background=0)
    assert (segment.label, segment.start_frame, segment.end_frame) == ("hop", 60, 139)
    assert segment.score == pytest.approx(1.0)
    assert (segment.start, segment.end) == (pytest.approx(60 / fps), pytest.approx(140 / fps))
    # Uniform weights (the plain variant) spread each window's label over its whole span: a wider segment.
    (plain,) = find_segments(scores.plain, CLASSES, span, fps, options=options, background=0)
    assert plain.start_frame < 60 and plain.end_frame > 139
    assert segment.to_dict() == {"label": "hop", "score": 1.0, "start": 2.4, "end": 5.6, "start_frame": 60,
                                 "end_frame": 139}


def test_two_actions_of_two_classes():
    N, span, T = 400, 32, 16
    windows = plan_windows(N, span, T, 16)
    p1, t1 = _answers(windows, (40, 99), 1, T)
    p2, t2 = _answers(windows, (240, 319), 2, T)
    touched2 = p2[:, 2] > 0
    probs, temporal = np.where(touched2[:, None], p2, p1), np.where(touched2[:, None], t2, t1)
    scores = aggregate_windows(windows, probs, temporal, None, N, (32, 32))
    found = find_segments(scores.weighted, CLASSES, span, 25.0, options=SegmentOptions(smoothing=0.0), background=0)
    assert [(s.label, s.start_frame, s.end_frame) for s in found] == [("hop", 40, 99), ("wave", 240, 319)]


def test_where_track_is_the_mask_peak_in_pixels():
    masks = np.zeros((4, 4, 8))  # (T, h, w)
    masks[:, 1, 6] = 1.0
    assert mask_peaks(masks, (40, 80)).tolist() == [[65.0, 15.0]] * 4  # ((6 + .5) * 10, (1 + .5) * 10)
    N, span, T = 16, 16, 4
    windows = plan_windows(N, span, T, 8)
    probs = np.array([[0.0, 1.0, 0.0]])
    scores = aggregate_windows(windows, probs, np.full((1, T), 0.25), masks[None], N, (40, 80))
    (segment,) = find_segments(scores.weighted, CLASSES, span, 25.0, options=SegmentOptions(smoothing=0.0),
                               background=0, where=scores.where)
    assert segment.where.shape == (16, 2) and segment.where[0].tolist() == [65.0, 15.0]


def test_threshold_min_duration_smoothing_and_nms():
    N, span = 100, 20
    scores = np.zeros((N, 3))
    scores[10:30, 1] = 0.9  # 20 frames: kept
    scores[31:50, 1] = 0.9  # a one-frame dip at 30: smoothing joins the two
    scores[70:73, 2] = 0.95  # 3 frames < min duration 0.25 x 20 = 5 frames: dropped
    scores[80:90, 2] = 0.4  # below the threshold (0.5 here)
    unsmoothed = find_segments(scores, CLASSES, span, 10.0, options=SegmentOptions(0.5, smoothing=0.0), background=0)
    assert [(s.label, s.start_frame, s.end_frame) for s in unsmoothed] == [("hop", 10, 29), ("hop", 31, 49)]
    smoothed = find_segments(scores, CLASSES, span, 10.0, options=SegmentOptions(0.5, smoothing=0.15), background=0)
    assert [(s.label, s.start_frame, s.end_frame) for s in smoothed] == [("hop", 10, 49)]
    # The background class is never a segment, even when it scores high.
    scores[:, 0] = 1.0
    assert all(s.label != "background" for s in find_segments(scores, CLASSES, span, 10.0, background=0))


def test_temporal_nms_keeps_the_best_of_overlapping_segments_of_a_class():
    def seg(k, score, a, b):
        return Segment(CLASSES[k], k, score, a, b, a / 10, (b + 1) / 10)

    kept = temporal_nms([seg(1, 0.6, 0, 9), seg(1, 0.9, 1, 10), seg(2, 0.5, 0, 9), seg(1, 0.7, 30, 39)], 0.5)
    assert [(s.label, s.score) for s in kept] == [("wave", 0.5), ("hop", 0.9), ("hop", 0.7)]


def test_runs_and_variable_frame_rate_seconds():
    assert runs(np.array([0, 1, 1, 0, 1], dtype=bool)) == [(1, 2), (4, 4)]
    assert runs(np.zeros(3, dtype=bool)) == []
    times = np.array([0.0, 0.1, 0.3, 0.6])
    assert frame_seconds(4, 25.0, times).tolist() == pytest.approx([0.0, 0.1, 0.3, 0.6, 0.9])
    assert frame_seconds(2, 4.0).tolist() == [0.0, 0.25, 0.5]


def test_window_baseline_labels_each_window_over_its_span():
    windows = plan_windows(64, 32, 16, 16)
    probs = np.array([[0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.1, 0.2, 0.7]])
    found = window_segments(windows, probs, CLASSES, 64, 32.0, background=0)
    assert [(s.label, s.start_frame, s.end_frame, s.score) for s in found] == [
        ("hop", 0, 31, 0.7), ("hop", 16, 47, 0.05), ("wave", 32, 63, 0.7)]


def _bright_model(T: int):
    """A stand-in for a model that knows the action: a clip with bright frames is "hop" and attends to them."""
    def predict(clips):
        bright = clips.reshape(len(clips), T, -1).mean(axis=2) > 128  # (B, T)
        probs = np.where(bright.any(axis=1)[:, None], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0])
        temporal = np.where(bright.any(axis=1)[:, None], bright / np.maximum(bright.sum(1, keepdims=True), 1), 1 / T)
        spatial = np.ones((len(clips), T, 2, 2))
        return probs, temporal, spatial
    return predict


def _stream(frames):
    return ((frame, i / 25.0) for i, frame in enumerate(frames))


def test_pipeline_from_frames_to_segments_with_concurrency_and_batches():
    from stanet.timeline.pipeline import TimelineOptions, compute_timeline

    frames = np.zeros((200, 24, 40, 3), np.uint8)
    frames[60:140] = 255
    span = ClipSpan(frames=32, seconds=32 / 25)
    options = TimelineOptions(segments=SegmentOptions(smoothing=0.0))
    for batch, concurrency in ((1, 1), (3, 2)):
        seen = []
        timeline = compute_timeline(_stream(frames), 200, 25.0, span, 16, (16, 16), CLASSES, _bright_model(16),
                                    batch_size=batch, concurrency=concurrency, options=options, on_window=seen.append)
        assert sum(seen) == len(timeline.windows) == 12 and timeline.damage is None
        assert [(s.label, s.start_frame, s.end_frame) for s in timeline.segments] == [("hop", 60, 139)]
        assert timeline.frame_hw == (24, 40) and timeline.background == 0
    uniform = timeline.variant_segments("uniform", options.segments)
    assert uniform[0].start_frame < 60
    assert all(s.label == "hop" for s in timeline.variant_segments("windows", options.segments))


def test_pipeline_on_a_stream_that_ends_early_keeps_the_segments_before_the_damage():
    from stanet.timeline.pipeline import TimelineOptions, compute_timeline

    frames = np.zeros((120, 16, 16, 3), np.uint8)
    frames[40:80] = 255
    timeline = compute_timeline(_stream(frames), 300, 25.0, ClipSpan(32, 32 / 25), 16, (16, 16), CLASSES,
                                _bright_model(16), options=TimelineOptions(segments=SegmentOptions(smoothing=0.0)))
    assert timeline.num_frames == 120 and "ends at frame 120 of the 300" in timeline.damage
    assert [(s.start_frame, s.end_frame) for s in timeline.segments] == [(40, 79)]


def test_frame_weight_modes_by_hand():
    from stanet.timeline.aggregate import attention_weights

    a = np.array([0.5, 0.25, 0.25, 0.0])  # T = 4
    assert attention_weights(a, "clipped").tolist() == [1.0, 1.0, 1.0, 0.0]
    assert attention_weights(a, "relative").tolist() == [1.0, 0.5, 0.5, 0.0]
    assert attention_weights(a, "mass").tolist() == [2.0, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="frame weight must be one of"):
        attention_weights(a, "max")
