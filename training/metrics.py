"""Evaluation metrics as pure functions (numpy + scipy only): classification accuracy, spatial localization
of the attention masks (UCF101-24 protocol, pointing game), temporal localization of the attention weights
(THUMOS14 protocol and rank-based alternatives) and class activation maps for the CAM baseline.

Conventions:
    * A box is (x1, y1, x2, y2) in continuous pixel coordinates of the frame; x2 and y2 are exclusive as
      pixel indices, so a box over columns 3..5 has x1 = 3, x2 = 6 and width x2 - x1 = 3. The paper's code
      uses inclusive corners with "+1" areas; continuous coordinates need no such correction.
    * A mask is a float array (h, w) at feature resolution (e.g. 7x7) that covers the whole frame.
    * Every fraction is returned as a Python float, or None where nothing was there to count, so metric
      dicts serialize to JSON as they are.

Spatial localization, per frame (docs/paper.md, "Evaluation protocols"):

    mask (h, w) --min-max--> [0, 1] --bilinear--> (H, W) --(>= 200/255)--> binary
        --8-connected components--> largest bounding rectangle (w * h) --> box --IoU vs GT--> hit at alpha
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from stanet.overlay import upsample_mask

Box = tuple[float, float, float, float]

PAPER_MASK_THRESHOLD = 200.0 / 255.0  # the paper's cv2.threshold(200) on the uint8 heatmap
SPATIAL_ALPHAS = (0.05, 0.1, 0.2, 0.3)  # the paper's UCF101-24 table
TEMPORAL_ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5)  # the paper's THUMOS14 table
PAPER_TEMPORAL_THRESHOLD_RATIO = 1.15  # 0.023 at T = 50, against the uniform 1/50 = 0.02


# ---------------------------------------------------------------------------------------------- validation


def _shape(x: np.ndarray) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def _finite_array(value: object, name: str, expected: str, ndim: int) -> np.ndarray:
    """`value` as a float64 array of `ndim` dimensions with finite entries, else a ValueError that names the
    argument, the shape found and the shape expected."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != ndim or any(s < 1 for s in array.shape):
        raise ValueError(f"{name} must have shape {expected}, got shape {_shape(array)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _check_box(box: Sequence[float], name: str) -> Box:
    values = np.asarray(box, dtype=np.float64)
    if values.shape != (4,):
        raise ValueError(f"{name} must be a box (x1, y1, x2, y2) of shape (4,), got shape {_shape(values)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} contains NaN or inf: {tuple(values.tolist())}")
    x1, y1, x2, y2 = (float(v) for v in values)
    if x2 < x1 or y2 < y1:
        raise ValueError(f"{name} must have x1 <= x2 and y1 <= y2, got {(x1, y1, x2, y2)}")
    return (x1, y1, x2, y2)


def _check_frame_hw(frame_hw: Sequence[int]) -> tuple[int, int]:
    if len(frame_hw) != 2 or int(frame_hw[0]) < 1 or int(frame_hw[1]) < 1:
        raise ValueError(f"frame_hw must be (H, W) with H, W >= 1, got {tuple(frame_hw)}")
    return int(frame_hw[0]), int(frame_hw[1])


def _mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


# ------------------------------------------------------------------------------------------ classification


def classification_metrics(
    probabilities: np.ndarray, labels: Sequence[int], class_names: Sequence[str]
) -> dict[str, object]:
    """Top-1 / top-5 accuracy, per-class accuracy and the confusion matrix.

    Ties between class scores go to the lower class index (stable sort), for top-1 and top-k alike.

    Args:
        probabilities: (N, K) class scores per clip (probabilities or logits: only the order matters).
        labels: (N,) true class indices in [0, K).
        class_names: K names, in class-index order.

    Returns:
        {"top1": float, "top5": float (top-min(5, K)), "per_class": {name: accuracy or None when the class has
        no clip}, "confusion_matrix": K x K list of ints (rows = true class, columns = predicted),
        "num_clips": N}.
    """
    scores = _finite_array(probabilities, "probabilities", "(N, K)", ndim=2)
    num_clips, num_classes = scores.shape
    labels_array = np.asarray(labels)
    if labels_array.shape != (num_clips,):
        raise ValueError(f"labels must have shape ({num_clips},) to match probabilities, got shape "
                         f"{_shape(labels_array)}")
    if labels_array.dtype.kind not in "iu":
        raise ValueError(f"labels must be integer class indices, got dtype {labels_array.dtype}")
    if np.any(labels_array < 0) or np.any(labels_array >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got values in "
                         f"[{labels_array.min()}, {labels_array.max()}]")
    if len(class_names) != num_classes:
        raise ValueError(f"class_names must have {num_classes} names to match probabilities (N, K), got "
                         f"{len(class_names)}")

    ranking = np.argsort(-scores, axis=1, kind="stable")  # (N, K), best class first
    predicted = ranking[:, 0]
    k = min(5, num_classes)
    in_top_k = np.any(ranking[:, :k] == labels_array[:, None], axis=1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels_array, predicted), 1)
    support = confusion.sum(axis=1)
    per_class = {
        str(name): (float(confusion[i, i] / support[i]) if support[i] else None)
        for i, name in enumerate(class_names)
    }
    return {
        "top1": float(np.mean(predicted == labels_array)),
        "top5": float(np.mean(in_top_k)),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "num_clips": int(num_clips),
    }


# ------------------------------------------------------------------------------------ spatial localization


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes in continuous coordinates.

    Unlike the official code (inclusive "+1" corners, intersection zeroed only when the product is
    negative), each overlap is clamped at 0 on its own, so disjoint and touching boxes get 0.

    Args:
        a: (x1, y1, x2, y2).
        b: (x1, y1, x2, y2).

    Returns:
        IoU in [0, 1]; 0 when both boxes are empty.
    """
    ax1, ay1, ax2, ay2 = _check_box(a, "a")
    bx1, by1, bx2, by2 = _check_box(b, "b")
    overlap_x = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    overlap_y = max(0.0, min(ay2, by2) - max(ay1, by1))
    intersection = overlap_x * overlap_y
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - intersection
    return float(intersection / union) if union > 0 else 0.0


def mask_to_box(
    mask: np.ndarray, frame_hw: tuple[int, int], threshold: float = PAPER_MASK_THRESHOLD
) -> Box | None:
    """The paper's predicted box for one frame (docs/paper.md, "Evaluation protocols").

    Steps: min-max normalize the mask within the frame; upsample it bilinearly to the frame size with
    `stanet.overlay.upsample_mask` (Pillow, float32, pixel-centre alignment like cv2.resize; the paper's uint8
    quantization and JPEG round trip are skipped); keep pixels >= `threshold`; label 8-connected components
    (the blobs cv2.findContours outlines); return the bounding rectangle with the largest width * height
    (ties: the component met first in row-major order).

    Args:
        mask: (h, w) float mask covering the whole frame.
        frame_hw: (H, W) of the frame the box refers to.
        threshold: on the normalized, upsampled mask, in [0, 1].

    Returns:
        (x1, y1, x2, y2) in continuous pixel coordinates, or None when the mask is constant (no location).
    """
    mask = _finite_array(mask, "mask", "(h, w)", ndim=2)
    frame_hw = _check_frame_hw(frame_hw)
    low, high = float(mask.min()), float(mask.max())
    if high == low:
        return None
    normalized = (mask - low) / (high - low)
    binary = upsample_mask(normalized, frame_hw) >= threshold  # (H, W)
    components, count = ndimage.label(binary, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return None  # only possible with a threshold above 1
    best: Box | None = None
    best_area = -1
    for rows, cols in ndimage.find_objects(components):
        area = (rows.stop - rows.start) * (cols.stop - cols.start)
        if area > best_area:
            best_area = area
            best = (float(cols.start), float(rows.start), float(cols.stop), float(rows.stop))
    return best


def pointing_hit(
    mask: np.ndarray, box: Sequence[float], frame_hw: tuple[int, int], tolerance: float = 0.0
) -> bool:
    """The pointing game for one frame: does the mask's maximum fall inside the box?

    The maximum is the centre of the argmax cell (the first one in row-major order when several cells share
    the maximum, so a constant mask points at the top-left cell), mapped to frame pixels:
    x = (col + 0.5) * W / w, y = (row + 0.5) * H / h. The box is closed: a point on its edge is a hit.

    Args:
        mask: (h, w) float mask covering the whole frame.
        box: ground-truth (x1, y1, x2, y2) in frame pixels.
        frame_hw: (H, W) of the frame.
        tolerance: pixels by which the box is grown on every side (>= 0).
    """
    mask = _finite_array(mask, "mask", "(h, w)", ndim=2)
    x1, y1, x2, y2 = _check_box(box, "box")
    height, width = _check_frame_hw(frame_hw)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    row, col = np.unravel_index(int(np.argmax(mask)), mask.shape)
    ys, xs = _cell_centres(mask.shape, (height, width))
    x, y = xs[col], ys[row]
    return bool(x1 - tolerance <= x <= x2 + tolerance and y1 - tolerance <= y <= y2 + tolerance)


def _cell_centres(mask_hw: tuple[int, int], frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Frame-pixel centres (ys (h,), xs (w,)) of a (h, w) mask's cells, as pointing_hit maps them."""
    (h, w), (height, width) = mask_hw, frame_hw
    return (np.arange(h) + 0.5) * height / h, (np.arange(w) + 0.5) * width / w


def peak_offset(mask: np.ndarray, box: Sequence[float], frame_hw: tuple[int, int]) -> tuple[float, float]:
    """(dx, dy) in frame pixels from the box's centre to the mask's maximum (the cell centre pointing_hit
    uses). Averaged over frames it tells a mask that wanders (offsets of every direction) from one that sits
    beside the actor (a steady offset: a cell next to the actor sees it too and serves the classifier as well)."""
    mask = _finite_array(mask, "mask", "(h, w)", ndim=2)
    x1, y1, x2, y2 = _check_box(box, "box")
    ys, xs = _cell_centres(mask.shape, _check_frame_hw(frame_hw))
    row, col = np.unravel_index(int(np.argmax(mask)), mask.shape)
    return float(xs[col] - (x1 + x2) / 2), float(ys[row] - (y1 + y2) / 2)


def mass_on_box(mask: np.ndarray, box: Sequence[float], frame_hw: tuple[int, int]) -> tuple[float, float] | None:
    """(share of the min-max normalized mask's sum on the cells whose centre lies in the box, share of the
    cells that do): a mask no better than uniform has the two equal, an inverted one (high on the background,
    low on the actor) puts less than the cells' share on the box. None for a constant mask or a box that holds
    no cell centre."""
    mask = _finite_array(mask, "mask", "(h, w)", ndim=2)
    x1, y1, x2, y2 = _check_box(box, "box")
    ys, xs = _cell_centres(mask.shape, _check_frame_hw(frame_hw))
    inside = (ys[:, None] >= y1) & (ys[:, None] <= y2) & (xs[None, :] >= x1) & (xs[None, :] <= x2)  # (h, w)
    low, high = float(mask.min()), float(mask.max())
    if high == low or not inside.any():
        return None
    normalized = (mask - low) / (high - low)
    return float(normalized[inside].sum() / normalized.sum()), float(inside.mean())


def spatial_localization(
    masks: Sequence[np.ndarray],
    boxes: Sequence[Sequence[Sequence[float] | None]],
    frame_hw: tuple[int, int],
    alphas: Sequence[float] = SPATIAL_ALPHAS,
) -> dict[str, object]:
    """Box IoU and pointing game of the spatial attention over every frame that has a ground-truth box.

    Unlike the paper, which counts only frames with both a GT box and a prediction, a frame whose mask gives
    no box (a constant mask) counts as a miss with IoU 0; `num_predicted` says how many frames had a box.

    Args:
        masks: one (T, h, w) array per clip.
        boxes: one length-T sequence per clip of GT boxes (x1, y1, x2, y2) in frame pixels, or None where the
            frame has no annotation.
        frame_hw: (H, W) of the frames the boxes refer to.
        alphas: IoU thresholds.

    Returns:
        {"iou_at": {str(alpha): fraction of frames with IoU >= alpha}, "mean_iou", "pointing_game",
        "peak_offset": {"x", "y", "distance"} (means over frames, frame pixels: peak_offset),
        "mass_on_box": {"mask", "cells"} (means over the frames mass_on_box scores), "num_frames",
        "num_predicted"}; the fractions and means are None when no frame has a GT box.
    """
    if len(masks) != len(boxes):
        raise ValueError(f"masks and boxes must have one entry per clip, got {len(masks)} and {len(boxes)}")
    frame_hw = _check_frame_hw(frame_hw)
    ious: list[float] = []
    hits: list[bool] = []
    offsets: list[tuple[float, float]] = []
    on_box: list[tuple[float, float]] = []
    num_predicted = 0
    for i, (clip_masks, clip_boxes) in enumerate(zip(masks, boxes)):
        clip_masks = _finite_array(clip_masks, f"masks[{i}]", "(T, h, w)", ndim=3)
        if len(clip_boxes) != clip_masks.shape[0]:
            raise ValueError(f"boxes[{i}] must have one entry per frame of masks[{i}] (T = "
                             f"{clip_masks.shape[0]}), got {len(clip_boxes)}")
        for t, gt in enumerate(clip_boxes):
            if gt is None:
                continue
            gt = _check_box(gt, f"boxes[{i}][{t}]")
            predicted = mask_to_box(clip_masks[t], frame_hw)
            num_predicted += predicted is not None
            ious.append(box_iou(predicted, gt) if predicted is not None else 0.0)
            hits.append(pointing_hit(clip_masks[t], gt, frame_hw))
            offsets.append(peak_offset(clip_masks[t], gt, frame_hw))
            shares = mass_on_box(clip_masks[t], gt, frame_hw)
            if shares is not None:
                on_box.append(shares)
    iou_array = np.asarray(ious)
    dx, dy = (np.asarray(v) for v in zip(*offsets)) if offsets else (np.zeros(0), np.zeros(0))
    return {
        "iou_at": {str(alpha): (float(np.mean(iou_array >= alpha)) if ious else None) for alpha in alphas},
        "mean_iou": _mean_or_none(ious),
        "pointing_game": _mean_or_none(hits),
        "peak_offset": {"x": _mean_or_none(dx), "y": _mean_or_none(dy), "distance": _mean_or_none(np.hypot(dx, dy))},
        "mass_on_box": {"mask": _mean_or_none([m for m, _ in on_box]), "cells": _mean_or_none([c for _, c in on_box])},
        "num_frames": len(ious),
        "num_predicted": num_predicted,
    }


# ----------------------------------------------------------------------------------- temporal localization


def _temporal_inputs(
    weights: Sequence[np.ndarray], inside: Sequence[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs (weights (T,), inside (T,) bool) per clip, checked."""
    if len(weights) != len(inside):
        raise ValueError(f"weights and inside must have one entry per clip, got {len(weights)} and "
                         f"{len(inside)}")
    pairs = []
    for i, (clip_weights, clip_inside) in enumerate(zip(weights, inside)):
        clip_weights = _finite_array(clip_weights, f"weights[{i}]", "(T,)", ndim=1)
        clip_inside = np.asarray(clip_inside)
        if clip_inside.shape != clip_weights.shape:
            raise ValueError(f"inside[{i}] must have shape {_shape(clip_weights)} to match weights[{i}], got "
                             f"shape {_shape(clip_inside)}")
        if clip_inside.dtype != np.bool_:
            raise ValueError(f"inside[{i}] must be a bool array, got dtype {clip_inside.dtype}")
        pairs.append((clip_weights, clip_inside))
    return pairs


def temporal_localization_paper(
    weights: Sequence[np.ndarray],
    inside: Sequence[np.ndarray],
    correct: Sequence[bool] | None = None,
    alphas: Sequence[float] = TEMPORAL_ALPHAS,
    threshold_ratio: float = PAPER_TEMPORAL_THRESHOLD_RATIO,
) -> dict[str, float | None]:
    """The paper's THUMOS14 hit rate (docs/paper.md, "Evaluation protocols"), per alpha.

    Frames with weight > threshold_ratio / T are "selected"; ratio = |selected & inside| / |inside| (a
    recall, which the paper calls IOU); a clip is a hit when it is correctly classified and ratio > alpha.
    The value is hits / clips with a non-empty interval (the paper divides by all test clips, which all have
    one). Selecting every frame scores 1, so read it together with `frame_average_precision`.

    Args:
        weights: one (T,) temporal attention vector per clip.
        inside: one (T,) bool array per clip: the sampled frame lies inside the GT interval.
        correct: per clip, whether it was classified correctly; None counts every clip as correct.
        alphas: ratio thresholds.
        threshold_ratio: selection threshold as a multiple of the uniform weight 1/T.

    Returns:
        {str(alpha): hit rate, or None when no clip has a non-empty interval}.
    """
    pairs = _temporal_inputs(weights, inside)
    if correct is None:
        correct = [True] * len(pairs)
    if len(correct) != len(pairs):
        raise ValueError(f"correct must have one entry per clip ({len(pairs)}), got {len(correct)}")
    ratios = []  # per clip with an interval; -inf for misclassified clips, which never hit
    for (clip_weights, clip_inside), is_correct in zip(pairs, correct):
        if not clip_inside.any():
            continue
        selected = clip_weights > threshold_ratio / clip_weights.shape[0]
        ratio = np.count_nonzero(selected & clip_inside) / np.count_nonzero(clip_inside)
        ratios.append(ratio if is_correct else -np.inf)
    ratio_array = np.asarray(ratios)
    return {str(alpha): (float(np.mean(ratio_array > alpha)) if ratios else None) for alpha in alphas}


def _average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Step-wise AP over the distinct score thresholds: sum_k (R_k - R_{k-1}) P_k, with tied scores
    entering together (as scikit-learn's average_precision_score), so uniform weights score the prevalence
    whatever the frame order."""
    order = np.argsort(-scores, kind="stable")
    ranked_scores, ranked = scores[order], positives[order]
    last_of_group = np.r_[ranked_scores[1:] != ranked_scores[:-1], True]  # end of each tie group
    true_positives = np.cumsum(ranked)[last_of_group]
    counted = np.arange(1, ranked.shape[0] + 1)[last_of_group]
    precision = true_positives / counted
    recall_step = np.diff(np.r_[0, true_positives]) / max(int(positives.sum()), 1)
    return float((precision * recall_step).sum())


def frame_average_precision(weights: Sequence[np.ndarray], inside: Sequence[np.ndarray]) -> float | None:
    """Mean over clips of the average precision of the weights as scores for "frame inside the interval".

    AP = mean, over the inside frames, of the precision at that frame's rank (frames ranked by decreasing
    weight; tied weights enter together, so uniform weights score the fraction of inside frames). Clips whose interval is empty or the whole clip are skipped: every
    ranking of them scores the same.

    Args:
        weights: one (T,) temporal attention vector per clip.
        inside: one (T,) bool array per clip.

    Returns:
        The mean AP, or None when no clip qualifies.
    """
    pairs = _temporal_inputs(weights, inside)
    values = [_average_precision(w, m) for w, m in pairs if m.any() and not m.all()]
    return _mean_or_none(values)


def attention_mass_inside(weights: Sequence[np.ndarray], inside: Sequence[np.ndarray]) -> float | None:
    """Mean over clips with a non-empty interval of the temporal weight that falls inside it.

    Args:
        weights: one (T,) temporal attention vector per clip (summing to 1).
        inside: one (T,) bool array per clip.

    Returns:
        The mean mass, or None when no clip has a non-empty interval.
    """
    pairs = _temporal_inputs(weights, inside)
    return _mean_or_none([float(w[m].sum()) for w, m in pairs if m.any()])


def temporal_localization(
    weights: Sequence[np.ndarray], inside: Sequence[np.ndarray], correct: Sequence[bool] | None = None
) -> dict[str, object]:
    """Temporal attention against the GT intervals.

    Args:
        weights: one (T,) temporal attention vector per clip.
        inside: one (T,) bool array per clip.
        correct: per clip, whether it was classified correctly (only the paper hit rate uses it).

    Returns:
        {"frame_ap", "mass_inside", "interval_fraction" (mean fraction of frames inside, over the clips with
        a non-empty interval: the mass a uniform weighting gets), "paper_hit_rate" ({str(alpha): value}),
        "num_clips"}.
    """
    pairs = _temporal_inputs(weights, inside)
    return {
        "frame_ap": frame_average_precision(weights, inside),
        "mass_inside": attention_mass_inside(weights, inside),
        "interval_fraction": _mean_or_none([float(m.mean()) for _, m in pairs if m.any()]),
        "paper_hit_rate": temporal_localization_paper(weights, inside, correct),
        "num_clips": len(pairs),
    }


# ---------------------------------------------------------------------------------------------------- CAM


def class_activation_maps(features: np.ndarray, classifier_weight: np.ndarray, class_index: int) -> np.ndarray:
    """Class activation maps (Zhou et al. 2016) of one class, for the CAM localization baseline.

    CAM_t = sum_c W[k, c] * features[t, c], then min-max normalized per frame (a constant frame gives 0).

    Args:
        features: (T, C, h, w) last-conv features of a clip.
        classifier_weight: (K, C) weight of the linear classifier on the pooled features.
        class_index: k in [0, K).

    Returns:
        (T, h, w) float64 maps in [0, 1].
    """
    features = _finite_array(features, "features", "(T, C, h, w)", ndim=4)
    classifier_weight = _finite_array(classifier_weight, "classifier_weight", "(K, C)", ndim=2)
    num_classes, channels = classifier_weight.shape
    if features.shape[1] != channels:
        raise ValueError(f"features must have shape (T, {channels}, h, w) to match classifier_weight (K, C) = "
                         f"{_shape(classifier_weight)}, got shape {_shape(features)}")
    if not 0 <= class_index < num_classes:
        raise ValueError(f"class_index must be in [0, {num_classes}), got {class_index}")
    cam = np.einsum("c,tchw->thw", classifier_weight[class_index], features)  # (T, h, w)
    low = cam.min(axis=(1, 2), keepdims=True)
    spread = cam.max(axis=(1, 2), keepdims=True) - low
    return np.where(spread > 0, (cam - low) / np.where(spread > 0, spread, 1.0), 0.0)
