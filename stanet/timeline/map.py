"""Temporal action detection mAP, the THUMOS14 protocol as the ActivityNet evaluation code computes it
(numpy only, no torch).

Per class: the detections of every video sorted by score (highest first; ties keep their given order), each
matched, at each tIoU threshold, to the not yet matched ground-truth instance of the same video and class
with the highest tIoU, if that tIoU reaches the threshold (else it is a false positive). AP is the area under
the interpolated precision-recall curve (VOC 2011 style: precision made monotone from the right, summed over
the recall steps). mAP is the mean AP over the classes that have ground truth (a class without detections
scores 0). THUMOS14 reports tIoU 0.1, 0.2, ..., 0.7 and the mean over 0.3-0.7.

Intervals are continuous [start, end) in any unit (seconds here); tIoU = |a n b| / |a u b|.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

THUMOS_TIOUS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
MEAN_TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)  # the THUMOS14 "average mAP"


@dataclass(frozen=True)
class Instance:
    """A ground-truth action (score unused) or a detection."""

    video: str
    label: str
    start: float
    end: float
    score: float = 1.0


def segment_iou(target: tuple[float, float], candidates: np.ndarray) -> np.ndarray:
    """tIoU of one [start, end) interval with each row of candidates (M, 2)."""
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 2)
    inter = np.clip(np.minimum(target[1], candidates[:, 1]) - np.maximum(target[0], candidates[:, 0]), 0, None)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the precision-recall curve with precision made non-increasing from the right."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def class_ap(ground_truth: list[Instance], detections: list[Instance], tious: tuple[float, ...]) -> np.ndarray:
    """AP at each tIoU for one class: (len(tious),)."""
    if not ground_truth:
        raise ValueError("AP needs at least one ground-truth instance")
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, gt in enumerate(ground_truth):
        by_video[gt.video].append(i)
    bounds = np.array([(g.start, g.end) for g in ground_truth], dtype=np.float64).reshape(-1, 2)
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)  # stable: ties keep order
    tp = np.zeros((len(tious), len(order)))
    matched = np.zeros((len(tious), len(ground_truth)), dtype=bool)
    for rank, d in enumerate(order):
        det = detections[d]
        candidates = by_video.get(det.video, [])
        if not candidates:
            continue
        ious = segment_iou((det.start, det.end), bounds[candidates])
        by_iou = np.argsort(-ious, kind="stable")
        for j, threshold in enumerate(tious):
            for c in by_iou:
                if ious[c] < threshold:
                    break
                gt_index = candidates[c]
                if not matched[j, gt_index]:
                    matched[j, gt_index] = True
                    tp[j, rank] = 1
                    break
    tp_sum = np.cumsum(tp, axis=1)
    fp_sum = np.cumsum(1 - tp, axis=1)
    recall = tp_sum / len(ground_truth)
    precision = tp_sum / np.maximum(tp_sum + fp_sum, 1e-12)
    return np.array([interpolated_ap(precision[j], recall[j]) for j in range(len(tious))])


def detection_map(ground_truth: list[Instance], detections: list[Instance],
                  tious: tuple[float, ...] = THUMOS_TIOUS) -> dict:
    """{"map": {"0.1": ..., ...}, "mean_0.3_0.7": ..., "per_class": {label: {tiou: ap}}} (percent-free,
    fractions in [0, 1]). `mean_0.3_0.7` is present when all of MEAN_TIOUS are in `tious`."""
    classes = sorted({g.label for g in ground_truth})
    if not classes:
        raise ValueError("mAP needs at least one ground-truth instance")
    per_class = {}
    for label in classes:
        aps = class_ap([g for g in ground_truth if g.label == label], [d for d in detections if d.label == label],
                       tious)
        per_class[label] = {f"{t:g}": float(ap) for t, ap in zip(tious, aps)}
    maps = {f"{t:g}": float(np.mean([per_class[c][f"{t:g}"] for c in classes])) for t in tious}
    out = {"map": maps, "per_class": per_class, "classes": len(classes), "ground_truth": len(ground_truth),
           "detections": len(detections)}
    if all(f"{t:g}" in maps for t in MEAN_TIOUS):
        out["mean_0.3_0.7"] = float(np.mean([maps[f"{t:g}"] for t in MEAN_TIOUS]))
    return out
