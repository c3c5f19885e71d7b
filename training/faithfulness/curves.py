"""Deletion and insertion curves (RISE, Petsiuk et al. 2018) and their area.

A curve follows the probability of one class (the model's prediction on the intact clip) while the parts a
map ranks first are removed (deletion: intact clip -> all removed) or revealed (insertion: everything removed
-> intact clip), in equal steps. A removed pixel or frame takes the value of the baseline clip
(`baseline_clip`). A map that ranks what the answer depends on first makes the deletion curve fall early (low
area) and the insertion curve rise early (high area).

Area: the trapezoid rule over the fraction removed or revealed, x = 0, 1/n, ..., 1, so an area is the mean
probability along the curve (in [0, 1], whatever the number of steps).

Spatial curves step each frame by the same fraction of its pixels, in the order of that frame's map: the
spatial test asks where in a frame, the temporal test (whole frames, `frame_curve_clips`, in as many steps or
one frame per step for shorter clips) asks when. A map
(T, h, w) at the model's feature resolution is upsampled to the frame's pixels with `stanet.overlay
.upsample_mask` (bilinear, pixel centres, the same upsampling as every overlay), then pixels are ranked by
value; exact ties (flat regions of the map) are broken by a seeded random order, never by position.
Every clip a curve produces is uint8, the wire format of the served graph.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from stanet.constants import MEAN_RGB
from stanet.overlay import upsample_mask


@dataclass
class Prediction:
    probabilities: np.ndarray  # (N, K)
    spatial: np.ndarray  # (N, T, h, w)
    temporal: np.ndarray  # (N, T)


# uint8 clips (N, T, H, W, 3) -> what the model (PyTorch or a served graph) answers
Predictor = Callable[[np.ndarray], Prediction]


def _check_clip(clip: np.ndarray) -> np.ndarray:
    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
        raise ValueError(f"clip must be uint8 (T, H, W, 3), got {clip.dtype} {tuple(clip.shape)}")
    return clip


def baseline_clip(clip: np.ndarray, kind: str, blur_sigma: float = 0.125) -> np.ndarray:
    """What removed pixels become, (T, H, W, 3) uint8: "blur" = each frame blurred by a Gaussian of sigma
    `blur_sigma` x min(H, W) pixels (edges reflected), "mean" = the dataset mean colour MEAN_RGB."""
    clip = _check_clip(clip)
    if kind == "blur":
        sigma = blur_sigma * min(clip.shape[1:3])
        blurred = gaussian_filter(clip.astype(np.float32), sigma=(0, sigma, sigma, 0), mode="reflect")
        return np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    if kind == "mean":
        colour = np.round(np.asarray(MEAN_RGB) * 255.0).astype(np.uint8)  # (3,)
        return np.broadcast_to(colour, clip.shape).copy()
    raise ValueError(f"unknown baseline {kind!r}; expected 'blur' or 'mean'")


def pixel_ranks(maps: np.ndarray, frame_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(T, h, w) map -> (T, H*W) int rank of every pixel in its frame, 0 = ranked first (highest value).

    The map is upsampled to (H, W) bilinearly (`upsample_mask`); ties are broken by a random order from `rng`.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"map must be (T, h, w), got shape {tuple(maps.shape)}")
    if not np.all(np.isfinite(maps)):
        raise ValueError("map contains NaN or inf")
    height, width = frame_hw
    ranks = np.empty((maps.shape[0], height * width), dtype=np.int64)
    for t, frame_map in enumerate(maps):
        values = upsample_mask(frame_map, (height, width)).astype(np.float64).ravel()  # (H*W,)
        order = np.lexsort((rng.random(values.size), -values))  # by value descending, then random
        ranks[t, order] = np.arange(values.size)
    return ranks


def frame_ranks(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) temporal weights -> (T,) rank of every frame, 0 = the highest weight; ties broken at random."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or not np.all(np.isfinite(weights)):
        raise ValueError(f"temporal weights must be finite (T,), got shape {tuple(weights.shape)}")
    order = np.lexsort((rng.random(weights.size), -weights))
    ranks = np.empty(weights.size, dtype=np.int64)
    ranks[order] = np.arange(weights.size)
    return ranks


def _blend(clip: np.ndarray, baseline: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Clips (S, T, H, W, 3): `baseline` where `removed` (S, T, H, W) is True, `clip` elsewhere."""
    return np.where(removed[..., None], baseline[None], clip[None])


def pixel_curve_clips(clip: np.ndarray, baseline: np.ndarray, ranks: np.ndarray, steps: int, *,
                      insertion: bool) -> np.ndarray:
    """The steps + 1 clips (steps + 1, T, H, W, 3) of one curve: at step k the round(k/steps * H*W) pixels of
    each frame ranked first are removed (deletion) or the only ones revealed (insertion)."""
    clip = _check_clip(clip)
    T, H, W, _ = clip.shape
    counts = np.round(np.arange(steps + 1) / steps * H * W).astype(np.int64)  # (S,)
    first = ranks[None] < counts[:, None, None]  # (S, T, H*W): ranked among the first count_k
    removed = ~first if insertion else first
    return _blend(clip, baseline, removed.reshape(steps + 1, T, H, W))


def frame_steps(length: int, steps: int) -> int:
    """Points after the first of a temporal curve: `steps`, or one per frame when the clip is shorter."""
    return min(steps, length)


def frame_curve_clips(clip: np.ndarray, baseline: np.ndarray, ranks: np.ndarray, steps: int, *,
                      insertion: bool) -> np.ndarray:
    """The S + 1 clips (S + 1, T, H, W, 3) of a temporal curve, S = frame_steps(T, steps): at step k the
    round(k/S * T) frames ranked first are replaced by their baseline frames (deletion) or are the only
    intact ones (insertion). Whole frames only."""
    clip = _check_clip(clip)
    T, H, W, _ = clip.shape
    S = frame_steps(T, steps)
    counts = np.round(np.arange(S + 1) / S * T).astype(np.int64)  # (S + 1,)
    first = ranks[None] < counts[:, None]  # (S + 1, T)
    removed = ~first if insertion else first
    return _blend(clip, baseline, np.broadcast_to(removed[:, :, None, None], (S + 1, T, H, W)))


def auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at equal steps of x from 0 to 1 (trapezoid rule)."""
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or curve.size < 2:
        raise ValueError(f"a curve needs at least 2 points, got shape {tuple(curve.shape)}")
    return float(np.trapezoid(curve, np.linspace(0.0, 1.0, curve.size)))


def follow(predict: Predictor, clips: list[np.ndarray], class_index: int) -> list[np.ndarray]:
    """Run every curve's clips through `predict` in one call, each distinct clip once (every curve starts or
    ends at the intact clip and at the baseline); the probability of `class_index` along each curve."""
    every = np.concatenate(clips)  # (sum of sizes, T, H, W, 3)
    slot: dict[bytes, int] = {}
    where = np.array([slot.setdefault(hashlib.blake2b(c.tobytes(), digest_size=16).digest(), len(slot)) for c in every])
    unique = np.empty(len(slot), dtype=np.int64)
    unique[where] = np.arange(len(every))  # one representative of each distinct clip
    probabilities = predict(every[unique]).probabilities[where, class_index]  # (sum of sizes,)
    return np.split(probabilities, np.cumsum([len(c) for c in clips])[:-1])


def deletion_and_insertion(predict: Predictor, class_index: int, rankings: dict[str, np.ndarray],
                           curve_clips) -> dict[str, dict[str, np.ndarray]]:
    """{name: {"deletion": curve, "insertion": curve}} for each ranking, all clips in one `follow` call;
    `curve_clips(ranks, insertion)` builds one curve's perturbed clips (pixels or whole frames)."""
    names, batches = [], []
    for name, ranks in rankings.items():
        for kind in ("deletion", "insertion"):
            names.append((name, kind))
            batches.append(curve_clips(ranks, kind == "insertion"))
    out: dict[str, dict[str, np.ndarray]] = {name: {} for name in rankings}
    for (name, kind), curve in zip(names, follow(predict, batches, class_index)):
        out[name][kind] = curve
    return out
