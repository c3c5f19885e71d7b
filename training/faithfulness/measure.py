"""Faithfulness of one model on a set of clips: spatial and temporal deletion/insertion areas for every map,
and the cascading randomization test, as the `faithfulness` section of `stanet evaluate`'s report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from stanet.model import AttentionRecognizer
from training.faithfulness.config import FaithfulnessConfig
from training.faithfulness.curves import Prediction, Predictor, auc, baseline_clip
from training.faithfulness.maps import cam_maps, grad_cam_maps, random_map
from training.faithfulness.predict import TorchPredictor
from training.faithfulness.randomization import cascading_randomization
from training.faithfulness.seeds import stream
from training.faithfulness.spatial import spatial_curves
from training.faithfulness.temporal import random_order_weights, temporal_curves

SPATIAL_MAPS = ("model", "random", "cam", "grad_cam")
TEMPORAL_ORDERS = ("model", "random")
# The target the issue sets for the randomization test: masks after the attention modules are randomized.
RANDOMIZATION_MAX_SPEARMAN = 0.5


def choose_clips(total: int, config: FaithfulnessConfig) -> np.ndarray:
    """Sorted indices of the clips scored: all of them, or `config.clips` drawn without replacement."""
    if config.clips is None or config.clips >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(config.seed).choice(total, size=config.clips, replace=False))


def model_curves(predict: Predictor, clips: np.ndarray, clip_ids: np.ndarray, config: FaithfulnessConfig,
                 extra_maps: dict[str, np.ndarray] | None = None, progress: Callable[[int], None] | None = None,
                 intact: Prediction | None = None, random: bool = True) -> dict[str, Any]:
    """Curves of every clip through `predict` (PyTorch or a served graph), for the maps `predict` itself
    returns (its mask and temporal weights), random maps/orders, and `extra_maps` {name: (N, T, h, w)};
    `intact`: `predict`'s answer on the intact clips when the caller has it; `random=False` skips the random
    maps and orders.

    Returns {"prediction": Prediction on the intact clips, "classes": (N,), "spatial": {map: {kind: (N, steps
    + 1)}}, "temporal": {order: {kind: (N, S + 1)}}}, S = curves.frame_steps(T, steps).
    """
    intact = predict(clips) if intact is None else intact
    classes = intact.probabilities.argmax(axis=1)
    spatial: dict[str, dict[str, list]] = {}
    temporal: dict[str, dict[str, list]] = {}
    for i, (clip, clip_id) in enumerate(zip(clips, clip_ids)):
        clip_id = int(clip_id)
        baseline = baseline_clip(clip, config.baseline, config.blur_sigma)
        maps = {"model": intact.spatial[i]}
        if random:
            maps["random"] = random_map(intact.spatial[i].shape, stream(config.seed, clip_id, "random map"))
        maps.update({name: values[i] for name, values in (extra_maps or {}).items()})
        for name, curves in spatial_curves(predict, clip, baseline, maps, int(classes[i]), config.steps,
                                           seed=config.seed, clip_id=clip_id).items():
            for kind, curve in curves.items():
                spatial.setdefault(name, {}).setdefault(kind, []).append(curve)
        orders = {"model": intact.temporal[i]}
        if random:
            orders["random"] = random_order_weights(len(clip), config.seed, clip_id)
        for name, curves in temporal_curves(predict, clip, baseline, orders, int(classes[i]), config.steps,
                                            seed=config.seed, clip_id=clip_id).items():
            for kind, curve in curves.items():
                temporal.setdefault(name, {}).setdefault(kind, []).append(curve)
        if progress is not None:
            progress(1)

    def stacked(section):
        return {name: {kind: np.stack(curves) for kind, curves in kinds.items()} for name, kinds in section.items()}

    return {"prediction": intact, "classes": classes, "spatial": stacked(spatial), "temporal": stacked(temporal)}


def areas(curves: dict[str, dict[str, np.ndarray]], names: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    """{"deletion_auc": {name: mean area}, "insertion_auc": {...}}; None for a map that was not computed."""
    out: dict[str, dict[str, float | None]] = {}
    for kind in ("deletion", "insertion"):
        out[f"{kind}_auc"] = {name: (float(np.mean([auc(c) for c in curves[name][kind]])) if name in curves else None)
                              for name in names}
    return out


def check_targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each {"passed": bool | None, ...numbers}; None where a number is missing."""
    spatial, temporal = report["spatial"], report["temporal"]
    out: dict[str, Any] = {}
    for other in ("random", "cam", "grad_cam"):
        for kind, better in (("deletion_auc", np.less), ("insertion_auc", np.greater)):
            model, theirs = spatial[kind]["model"], spatial[kind][other]
            out[f"spatial_{kind}_model_vs_{other}"] = {
                "model": model, other: theirs,
                "passed": None if theirs is None or model is None else bool(better(model, theirs))}
    for kind, better in (("deletion_auc", np.less), ("insertion_auc", np.greater)):
        model, random = temporal[kind]["model"], temporal[kind]["random"]
        out[f"temporal_{kind}_model_vs_random"] = {"model": model, "random": random,
                                                   "passed": bool(better(model, random))}
    randomization = report["randomization"]
    if "spatial_attention" in randomization["stages"]:
        rho = randomization["spatial_spearman"][randomization["stages"].index("spatial_attention")]
        out["randomization_mask_spearman_after_attention"] = {
            "spearman": rho, "limit": RANDOMIZATION_MAX_SPEARMAN,
            "passed": None if rho is None else bool(rho < RANDOMIZATION_MAX_SPEARMAN)}
    return out


def measure_faithfulness(model: AttentionRecognizer, clips: np.ndarray, clip_ids: np.ndarray,
                         config: FaithfulnessConfig, *, cam_weight: np.ndarray | None = None,
                         progress: Callable[[int], None] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report section, raw results for the figures) for uint8 clips (N, T, H, W, 3) with their clip ids."""
    predict = TorchPredictor(model, config.batch_size)
    intact = predict(clips)
    classes = [int(k) for k in intact.probabilities.argmax(axis=1)]
    extra = {"grad_cam": np.concatenate([grad_cam_maps(model, clips[i:i + config.batch_size],
                                                       classes[i:i + config.batch_size])
                                         for i in range(0, len(clips), config.batch_size)])}
    if cam_weight is not None:
        extra["cam"] = cam_maps(model, clips, cam_weight, classes)
    raw = model_curves(predict, clips, clip_ids, config, extra, progress, intact)
    randomization = cascading_randomization(model, clips, raw["prediction"], seed=config.seed,
                                            batch_size=config.batch_size)
    report: dict[str, Any] = {
        "spatial": areas(raw["spatial"], SPATIAL_MAPS),
        "temporal": areas(raw["temporal"], TEMPORAL_ORDERS),
        "randomization": {key: randomization[key] for key in ("stages", "spatial_spearman", "temporal_spearman")},
    }
    report["targets"] = check_targets(report)
    raw["randomization"] = randomization
    raw["maps"] = extra
    return report, raw

