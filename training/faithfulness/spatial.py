"""Spatial deletion and insertion curves of one clip for several maps, in one batch of forward passes."""

from __future__ import annotations

import numpy as np

from training.faithfulness.curves import Predictor, follow, pixel_curve_clips, pixel_ranks
from training.faithfulness.seeds import stream


def spatial_curves(predict: Predictor, clip: np.ndarray, baseline: np.ndarray, maps: dict[str, np.ndarray],
                   class_index: int, steps: int, *, seed: int = 0,
                   clip_id: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """{map name: {"deletion": (steps + 1,), "insertion": (steps + 1,)}} probabilities of `class_index` for
    the uint8 clip (T, H, W, 3) as each (T, h, w) map's top pixels are removed / revealed."""
    frame_hw = clip.shape[1:3]
    names, batches = [], []
    for name, values in maps.items():
        ranks = pixel_ranks(values, frame_hw, stream(seed, clip_id, f"spatial ties {name}"))
        for kind in ("deletion", "insertion"):
            names.append((name, kind))
            batches.append(pixel_curve_clips(clip, baseline, ranks, steps, insertion=kind == "insertion"))
    out: dict[str, dict[str, np.ndarray]] = {name: {} for name in maps}
    for (name, kind), curve in zip(names, follow(predict, batches, class_index)):
        out[name][kind] = curve
    return out
