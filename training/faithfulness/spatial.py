"""Spatial deletion and insertion curves of one clip for several maps, in one batch of forward passes."""

from __future__ import annotations

import numpy as np

from training.faithfulness.curves import Predictor, deletion_and_insertion, pixel_curve_clips, pixel_ranks
from training.faithfulness.seeds import stream


def spatial_curves(predict: Predictor, clip: np.ndarray, baseline: np.ndarray, maps: dict[str, np.ndarray],
                   class_index: int, steps: int, *, seed: int = 0,
                   clip_id: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """{map name: {"deletion": (steps + 1,), "insertion": (steps + 1,)}} probabilities of `class_index` for
    the uint8 clip (T, H, W, 3) as each (T, h, w) map's top pixels are removed / revealed."""
    frame_hw = clip.shape[1:3]
    rankings = {name: pixel_ranks(values, frame_hw, stream(seed, clip_id, f"spatial ties {name}"))
                for name, values in maps.items()}
    return deletion_and_insertion(predict, class_index, rankings, lambda ranks, insertion: pixel_curve_clips(
        clip, baseline, ranks, steps, insertion=insertion))
