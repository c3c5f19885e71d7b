"""Metrics against hand-computed answers (numpy only, milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    attention_mass_inside,
    box_iou,
    class_activation_maps,
    classification_metrics,
    frame_average_precision,
    mask_to_box,
    mass_on_box,
    peak_offset,
    pointing_hit,
    spatial_localization,
    temporal_localization,
    temporal_localization_paper,
)

# ------------------------------------------------------------------------------------------ classification


def test_classification_metrics_three_classes():
    probabilities = np.array([
        [0.7, 0.2, 0.1],  # true a, predicted a
        [0.2, 0.5, 0.3],  # true a, predicted b
        [0.1, 0.8, 0.1],  # true b, predicted b
        [0.5, 0.1, 0.4],  # true c, predicted a
        [0.3, 0.3, 0.4],  # true c, predicted c
    ])
    result = classification_metrics(probabilities, [0, 0, 1, 2, 2], ["a", "b", "c"])
    assert result["top1"] == pytest.approx(3 / 5)
    assert result["top5"] == 1.0  # K = 3 < 5: top-3 always contains the label
    assert result["per_class"] == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert result["num_clips"] == 5


def test_classification_metrics_top5_with_more_classes_and_empty_class():
    scores = np.array([
        [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 4 is ranked 5th: a top-5 hit
        [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 5 is ranked 6th: a miss
    ])
    result = classification_metrics(scores, [4, 5], list("abcdefg"))
    assert result["top1"] == 0.0
    assert result["top5"] == 0.5
    assert result["per_class"]["a"] is None  # no clip of class a
    assert result["per_class"]["e"] == 0.0


def test_classification_ties_go_to_the_lower_index():
    result = classification_metrics(np.array([[0.5, 0.5]]), [1], ["a", "b"])
    assert result["confusion_matrix"] == [[0, 0], [1, 0]]


def test_classification_metrics_rejects_bad_inputs():
    probabilities = np.full((5, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\).*got shape \(4,\)"):
        classification_metrics(probabilities, [0, 1, 2, 0], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"class_names must have 3 names"):
        classification_metrics(probabilities, [0] * 5, ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        classification_metrics(probabilities, [0, 1, 2, 3, 0], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"probabilities must have shape \(N, K\), got shape \(3,\)"):
        classification_metrics(np.ones(3), [0], ["a", "b", "c"])


# ------------------------------------------------------------------------------------------------- box IoU


def test_box_iou_identical_partial_and_contained():
    assert box_iou((0, 0, 4, 4), (0, 0, 4, 4)) == 1.0
    # Intersection 2x2 = 4, union 16 + 16 - 4 = 28.
    assert box_iou((0, 0, 4, 4), (2, 2, 6, 6)) == pytest.approx(4 / 28)
    # Contained: intersection = the inner box (4), union = the outer box (16).
    assert box_iou((0, 0, 4, 4), (1, 1, 3, 3)) == pytest.approx(0.25)


def test_box_iou_disjoint_and_touching_boxes_are_zero():
    assert box_iou((0, 0, 2, 2), (5, 0, 7, 2)) == 0.0  # apart along x only
    # Apart along both axes: the official code's (xB - xA + 1) * (yB - yA + 1) = (-2) * (-2) = 4 > 0.
    assert box_iou((0, 0, 2, 2), (5, 5, 8, 8)) == 0.0
    assert box_iou((0, 0, 2, 2), (2, 0, 4, 2)) == 0.0  # sharing an edge
    assert box_iou((0, 0, 2, 2), (2, 2, 4, 4)) == 0.0  # sharing a corner


def test_box_iou_rejects_bad_boxes():
    with pytest.raises(ValueError, match=r"a must be a box .*got shape \(3,\)"):
        box_iou((0, 0, 4), (0, 0, 4, 4))
    with pytest.raises(ValueError, match=r"b must have x1 <= x2"):
        box_iou((0, 0, 4, 4), (5, 0, 4, 4))


# --------------------------------------------------------------------------------------------- mask_to_box


def test_mask_to_box_single_hot_cell_upsampled():
    # 7x7 -> 70x70 (x10). Bilinear at pixel centres: pixel i samples cell coordinate u = (i + 0.5) / 10 - 0.5,
    # so around the hot cell (3, 3) the value is (1 - |u - 3|) * (1 - |v - 3|). Its largest factor along the
    # other axis is 0.95 (pixels 34, 35), so a pixel passes 200/255 = 0.784 when |u - 3| <= 1 - 0.784/0.95
    # = 0.174, i.e. i in [32.76, 36.24] -> pixels 33..36 along both axes.
    mask = np.zeros((7, 7))
    mask[3, 3] = 0.9
    assert mask_to_box(mask, (70, 70)) == (33.0, 33.0, 37.0, 37.0)


def test_mask_to_box_keeps_the_largest_rectangle_not_the_hottest_blob():
    # Frame size = mask size, so the upsampling is the identity and the boxes are the cells themselves.
    mask = np.zeros((6, 8))
    mask[1:3, 1:4] = 0.9  # 2x3 blob, 0.9 after min-max: above 200/255
    mask[4, 6] = 1.0  # hotter but 1x1
    assert mask_to_box(mask, (6, 8)) == (1.0, 1.0, 4.0, 3.0)


def test_mask_to_box_joins_diagonal_neighbours():
    mask = np.zeros((4, 4))
    mask[0, 0] = mask[1, 1] = 1.0  # one component under 8-connectivity
    mask[3, 3] = 1.0
    assert mask_to_box(mask, (4, 4)) == (0.0, 0.0, 2.0, 2.0)


def test_mask_to_box_constant_mask_has_no_box():
    assert mask_to_box(np.full((7, 7), 0.3), (240, 320)) is None


def test_mask_to_box_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"mask must have shape \(h, w\), got shape \(2, 7, 7\)"):
        mask_to_box(np.zeros((2, 7, 7)), (240, 320))
    with pytest.raises(ValueError, match=r"frame_hw must be \(H, W\)"):
        mask_to_box(np.eye(7), (240,))


# ------------------------------------------------------------------------------------------- pointing game


def test_pointing_hit_inside_outside_and_tolerance():
    mask = np.zeros((4, 4))
    mask[1, 2] = 1.0  # cell centre in a 40x40 frame: x = 2.5 * 10 = 25, y = 1.5 * 10 = 15
    assert pointing_hit(mask, (20, 10, 30, 20), (40, 40))
    assert not pointing_hit(mask, (0, 0, 10, 10), (40, 40))
    assert not pointing_hit(mask, (27, 10, 35, 20), (40, 40))
    assert pointing_hit(mask, (27, 10, 35, 20), (40, 40), tolerance=2.0)
    assert pointing_hit(mask, (25, 15, 30, 20), (40, 40))  # on the edge counts


def test_pointing_hit_ties_use_the_first_cell():
    mask = np.zeros((4, 4))
    mask[0, 0] = mask[3, 3] = 1.0  # first maximum: (0, 0) -> point (5, 5)
    assert pointing_hit(mask, (0, 0, 10, 10), (40, 40))
    assert not pointing_hit(mask, (30, 30, 40, 40), (40, 40))


# ------------------------------------------------------------------------------------ spatial localization


def _hot(cell: tuple[int, int], hw=(4, 4)) -> np.ndarray:
    mask = np.zeros(hw)
    mask[cell] = 1.0
    return mask


def test_spatial_localization_hand_computed():
    # Frame 4x4 = mask size (no interpolation): a hot cell (r, c) gives the box (c, r, c + 1, r + 1).
    masks = [
        np.stack([_hot((1, 1)), _hot((0, 0))]),  # clip 0
        np.stack([np.full((4, 4), 0.5), _hot((3, 3))]),  # clip 1
    ]
    boxes = [
        [(1, 1, 3, 3), None],  # IoU 1/4, pointing (1.5, 1.5): hit; frame 1 not annotated
        [(2, 2, 4, 4), (3, 2, 4, 4)],  # constant mask: no box (IoU 0), points at (0.5, 0.5): miss;
    ]  # then box (3, 3, 4, 4) vs area 2: IoU 1/2, pointing (3.5, 3.5): hit
    result = spatial_localization(masks, boxes, (4, 4), alphas=(0.05, 0.1, 0.2, 0.3, 0.5, 0.6))
    assert result["iou_at"] == pytest.approx(
        {"0.05": 2 / 3, "0.1": 2 / 3, "0.2": 2 / 3, "0.3": 1 / 3, "0.5": 1 / 3, "0.6": 0.0})
    assert result["mean_iou"] == pytest.approx((0.25 + 0.0 + 0.5) / 3)
    assert result["pointing_game"] == pytest.approx(2 / 3)
    assert result["num_frames"] == 3
    assert result["num_predicted"] == 2


def test_peak_offset_and_mass_on_box_by_hand():
    # 4x4 mask over an 8x8 frame: cell centres at 1, 3, 5, 7 px. The peak is cell (row 0, col 2), centre (5, 1).
    mask = np.zeros((4, 4))
    mask[0, 2], mask[1, 1] = 1.0, 0.5
    box = (2.0, 2.0, 4.0, 4.0)  # centre (3, 3); holds the one cell centre (3, 3): cell (1, 1)
    assert peak_offset(mask, box, (8, 8)) == pytest.approx((2.0, -2.0))
    mass, cells = mass_on_box(mask, box, (8, 8))
    assert mass == pytest.approx(0.5 / 1.5) and cells == pytest.approx(1 / 16)
    inverted = 1.0 - (np.arange(16).reshape(4, 4) == 5)  # everything but the box's cell
    assert mass_on_box(inverted, box, (8, 8)) == pytest.approx((0.0, 1 / 16))  # below the cells' share
    assert mass_on_box(np.ones((4, 4)), box, (8, 8)) is None  # constant: no ranking
    assert mass_on_box(mask, (0.0, 0.0, 0.5, 0.5), (8, 8)) is None  # no cell centre inside


def test_spatial_localization_reports_the_mean_offset_and_mass_on_box():
    mask = np.zeros((2, 4, 4))
    mask[0, 0, 2] = 1.0  # offset (+2, -2) from the box centre (3, 3)
    mask[1, 2, 0] = 1.0  # cell (2, 0), centre (1, 5): offset (-2, +2); none of its mass on the box
    box = (2.0, 2.0, 4.0, 4.0)
    result = spatial_localization([mask], [[box, box]], (8, 8))
    assert result["peak_offset"]["x"] == pytest.approx(0.0) and result["peak_offset"]["y"] == pytest.approx(0.0)
    assert result["peak_offset"]["distance"] == pytest.approx(np.hypot(2, 2))
    assert result["mass_on_box"] == pytest.approx({"mask": 0.0, "cells": 1 / 16})


def test_spatial_localization_without_annotations():
    result = spatial_localization([np.zeros((2, 4, 4))], [[None, None]], (4, 4))
    assert result["num_frames"] == 0
    assert result["mean_iou"] is None and result["pointing_game"] is None
    assert set(result["iou_at"]) == {"0.05", "0.1", "0.2", "0.3"}


def test_spatial_localization_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match=r"boxes\[0\] must have one entry per frame of masks\[0\] \(T = 2\)"):
        spatial_localization([np.zeros((2, 4, 4))], [[None]], (4, 4))
    with pytest.raises(ValueError, match=r"masks\[0\] must have shape \(T, h, w\), got shape \(4, 4\)"):
        spatial_localization([np.zeros((4, 4))], [[None]], (4, 4))
    with pytest.raises(ValueError, match=r"one entry per clip, got 1 and 2"):
        spatial_localization([np.zeros((1, 4, 4))], [[None], [None]], (4, 4))


# ----------------------------------------------------------------------------------- temporal localization

SCORES = np.array([0.4, 0.3, 0.2, 0.1])


def test_frame_average_precision_hand_computed():
    assert frame_average_precision([SCORES], [np.array([True, True, False, False])]) == 1.0
    # Positives at ranks 1 and 3: (1/1 + 2/3) / 2.
    assert frame_average_precision([SCORES], [np.array([True, False, True, False])]) == pytest.approx(5 / 6)
    # Ties keep frame order: positives at ranks 2 and 4 -> (1/2 + 2/4) / 2.
    assert frame_average_precision([np.full(4, 0.25)], [np.array([False, True, False, True])]) == 0.5


def test_frame_average_precision_skips_all_inside_and_empty_clips():
    weights = [SCORES, SCORES, SCORES, SCORES[::-1]]
    inside = [
        np.array([True, True, False, False]),  # AP 1
        np.array([True, False, True, False]),  # AP 5/6
        np.ones(4, dtype=bool),  # skipped: every ranking is perfect
        np.zeros(4, dtype=bool),  # skipped: nothing to find
    ]
    assert frame_average_precision(weights, inside) == pytest.approx((1 + 5 / 6) / 2)
    assert frame_average_precision([SCORES], [np.ones(4, dtype=bool)]) is None


MASS_WEIGHTS = [np.array([0.1, 0.6, 0.2, 0.1]), np.full(4, 0.25), np.full(4, 0.25)]
MASS_INSIDE = [np.array([False, True, True, False]), np.array([True, False, False, False]), np.zeros(4, bool)]


def test_attention_mass_inside():
    # 0.6 + 0.2 = 0.8 and 0.25; the clip without an interval is skipped.
    assert attention_mass_inside(MASS_WEIGHTS, MASS_INSIDE) == pytest.approx((0.8 + 0.25) / 2)


# T = 4: selected = weight > 1.15 / 4 = 0.2875.
PAPER_WEIGHTS = [
    np.array([0.1, 0.6, 0.2, 0.1]),  # selects {1}; inside {1, 2}: ratio 1/2
    np.array([0.05, 0.3, 0.3, 0.35]),  # selects {1, 2, 3}; inside all: ratio 3/4
    np.array([0.7, 0.1, 0.1, 0.1]),  # selects {0}; inside {1, 2, 3}: ratio 0
    np.array([0.05, 0.3, 0.3, 0.35]),  # ratio 3/4 but misclassified
    np.array([0.05, 0.3, 0.3, 0.35]),  # no interval: not counted at all
]
PAPER_INSIDE = [
    np.array([False, True, True, False]),
    np.ones(4, dtype=bool),
    np.array([False, True, True, True]),
    np.ones(4, dtype=bool),
    np.zeros(4, dtype=bool),
]
PAPER_CORRECT = [True, True, True, False, True]


def test_temporal_localization_paper_hit_rate():
    result = temporal_localization_paper(PAPER_WEIGHTS, PAPER_INSIDE, PAPER_CORRECT, alphas=(0.1, 0.5, 0.8))
    # Four clips have an interval; hits need ratio > alpha (strict) and a correct class.
    assert result == pytest.approx({"0.1": 2 / 4, "0.5": 1 / 4, "0.8": 0.0})
    # Without `correct` every clip counts as classified correctly: the misclassified one now hits.
    assert temporal_localization_paper(PAPER_WEIGHTS, PAPER_INSIDE, alphas=(0.1,)) == {"0.1": 3 / 4}


def test_temporal_localization_paper_threshold_at_t50():
    weights = np.full(50, 0.02)
    weights[0], weights[1] = 0.0231, 0.0229  # threshold 1.15 / 50 = 0.023
    inside = np.zeros(50, dtype=bool)
    inside[:2] = True  # ratio 1/2
    assert temporal_localization_paper([weights], [inside], [True], alphas=(0.4, 0.5)) == {"0.4": 1.0, "0.5": 0.0}


def test_temporal_localization_combines_everything():
    result = temporal_localization(MASS_WEIGHTS, MASS_INSIDE, [True, False, True])
    assert result["mass_inside"] == pytest.approx(0.525)
    assert result["interval_fraction"] == pytest.approx((0.5 + 0.25) / 2)
    # Clip 0 ranks its inside frames 1st and 2nd (AP 1); clip 1 ties everywhere: tied frames enter
    # together, so its AP is the fraction of inside frames, 1/4.
    assert result["frame_ap"] == pytest.approx((1.0 + 0.25) / 2)
    # Clip 0: selects {1} of inside {1, 2} -> 1/2; clip 1 is misclassified.
    assert result["paper_hit_rate"] == pytest.approx({"0.1": 0.5, "0.2": 0.5, "0.3": 0.5, "0.4": 0.5, "0.5": 0.0})
    assert result["num_clips"] == 3


def test_uniform_weights_score_the_prevalence_wherever_the_interval_is():
    for inside in ([True, True, False, False, False], [False, False, False, True, True]):
        assert frame_average_precision([np.full(5, 0.2)], [np.array(inside)]) == pytest.approx(0.4)


def test_temporal_inputs_are_checked():
    with pytest.raises(ValueError, match=r"inside\[0\] must have shape \(4,\) to match weights\[0\], got shape \(3,\)"):
        attention_mass_inside([SCORES], [np.ones(3, dtype=bool)])
    with pytest.raises(ValueError, match=r"inside\[0\] must be a bool array"):
        frame_average_precision([SCORES], [np.ones(4)])
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(T,\), got shape \(2, 2\)"):
        temporal_localization([np.ones((2, 2))], [np.ones(4, dtype=bool)])
    with pytest.raises(ValueError, match=r"correct must have one entry per clip \(1\), got 2"):
        temporal_localization_paper([SCORES], [np.ones(4, dtype=bool)], [True, True])


# ---------------------------------------------------------------------------------------------------- CAM


def test_class_activation_maps_hand_computed():
    features = np.array([
        [[[1, 2, 3]], [[0, 1, 0]]],  # frame 0: channels 0 and 1, each 1x3
        [[[1, 1, 1]], [[2, 2, 2]]],  # frame 1
    ], dtype=float)  # (T=2, C=2, h=1, w=3)
    weight = np.array([[9.0, 9.0], [2.0, -1.0]])  # (K=2, C=2)
    cam = class_activation_maps(features, weight, 1)
    # Frame 0: 2 * [1, 2, 3] - [0, 1, 0] = [2, 3, 6] -> [0, 1/4, 1]. Frame 1: 2 - 2 = 0 everywhere -> zeros.
    np.testing.assert_allclose(cam, [[[0.0, 0.25, 1.0]], [[0.0, 0.0, 0.0]]])
    assert cam.shape == (2, 1, 3)


def test_class_activation_maps_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"features must have shape \(T, 3, h, w\).*got shape \(2, 2, 1, 3\)"):
        class_activation_maps(np.zeros((2, 2, 1, 3)), np.zeros((4, 3)), 0)
    with pytest.raises(ValueError, match=r"class_index must be in \[0, 4\), got 4"):
        class_activation_maps(np.zeros((2, 3, 1, 3)), np.zeros((4, 3)), 4)
    with pytest.raises(ValueError, match=r"features must have shape \(T, C, h, w\), got shape \(3, 1, 3\)"):
        class_activation_maps(np.zeros((3, 1, 3)), np.zeros((4, 3)), 0)
