"""THUMOS14 / ActivityNet detection mAP on hand-computed cases (stanet/timeline/map.py)."""

from __future__ import annotations

import numpy as np
import pytest

from stanet.timeline.map import Instance, class_ap, detection_map, interpolated_ap, segment_iou


def gt(video, label, a, b):
    return Instance(video, label, a, b)


def det(video, label, a, b, score):
    return Instance(video, label, a, b, score)


def test_segment_iou():
    assert segment_iou((0, 10), np.array([[0, 10], [5, 15], [20, 30], [2, 4]])).tolist() == \
        pytest.approx([1.0, 5 / 15, 0.0, 0.2])


def test_interpolated_ap_voc_2011():
    # precision 1, .5, 2/3 at recall .5, .5, 1: made monotone -> 1 on [0, .5], 2/3 on (.5, 1]
    assert interpolated_ap(np.array([1, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(0.5 + 1 / 3)


def test_hand_computed_ap_with_a_duplicate_and_a_loose_detection():
    truth = [gt("a", "x", 0, 10), gt("a", "x", 20, 30)]
    found = [det("a", "x", 0, 10, 0.9),  # tIoU 1 with the first: a true positive
             det("a", "x", 0, 9, 0.8),  # the first again (already matched): a false positive at every tIoU
             det("a", "x", 20, 25, 0.7)]  # tIoU 0.5 with the second: a true positive up to 0.5
    aps = class_ap(truth, found, (0.1, 0.5, 0.6))
    # tIoU <= 0.5: TP FP TP -> precision 1, .5, 2/3 at recall .5, .5, 1 -> AP .5 + .5 * 2/3
    # tIoU 0.6: TP FP FP -> recall reaches .5 at precision 1 -> AP .5
    assert aps.tolist() == pytest.approx([0.5 + 1 / 3, 0.5 + 1 / 3, 0.5])


def test_highest_tiou_unmatched_ground_truth_wins():
    # The first detection overlaps both instances; it takes the one of highest tIoU (the second), leaving the
    # first for the next detection. Matching the first instead would lose a true positive at tIoU 0.5.
    truth = [gt("a", "x", 0, 10), gt("a", "x", 8, 18)]
    found = [det("a", "x", 6, 18, 0.9), det("a", "x", 0, 9, 0.8)]
    assert class_ap(truth, found, (0.5,)).tolist() == pytest.approx([1.0])


def test_other_videos_and_ranking_by_score():
    truth = [gt("a", "x", 0, 10), gt("b", "x", 0, 10)]
    found = [det("c", "x", 0, 10, 0.95),  # a video without this class: a false positive
             det("b", "x", 0, 10, 0.5), det("a", "x", 0, 10, 0.9)]
    # by score: FP(c) TP(a) TP(b) -> precision 0, .5, 2/3 at recall 0, .5, 1 -> AP .5 * 2/3 + .5 * 2/3
    assert class_ap(truth, found, (0.5,)).tolist() == pytest.approx([2 / 3])


def test_map_over_classes_and_thumos_keys():
    truth = [gt("a", "x", 0, 10), gt("a", "y", 20, 30)]
    found = [det("a", "x", 0, 10, 0.9), det("a", "z", 20, 30, 0.9)]  # y missed; z has no ground truth
    report = detection_map(truth, found)
    assert list(report["map"]) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
    assert report["map"]["0.5"] == pytest.approx(0.5)  # x: 1, y: 0
    assert report["mean_0.3_0.7"] == pytest.approx(0.5)
    assert report["per_class"]["y"]["0.1"] == 0.0 and "z" not in report["per_class"]
    with pytest.raises(ValueError, match="ground-truth"):
        detection_map([], found)
