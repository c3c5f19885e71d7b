"""Temporal deletion and insertion: whole frames removed (replaced by their baseline frames) or revealed in
the order of the model's temporal weights, against a random order of the frames (seeded per clip)."""

from __future__ import annotations

import numpy as np

from training.faithfulness.curves import Predictor, deletion_and_insertion, frame_curve_clips, frame_ranks
from training.faithfulness.seeds import stream


def random_order_weights(length: int, seed: int, clip_id: int) -> np.ndarray:
    """(T,) random weights: ranking frames by them is a uniformly random order."""
    return stream(seed, clip_id, "temporal random order").random(length)


def temporal_curves(predict: Predictor, clip: np.ndarray, baseline: np.ndarray, orders: dict[str, np.ndarray],
                    class_index: int, steps: int, *, seed: int = 0,
                    clip_id: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """{name: {"deletion": (S + 1,), "insertion": (S + 1,)}}, S = curves.frame_steps(T, steps): probabilities
    of `class_index` for the uint8 clip (T, H, W, 3) as the frames each (T,) weight vector ranks first are
    removed / revealed."""
    rankings = {name: frame_ranks(weights, stream(seed, clip_id, f"temporal ties {name}"))
                for name, weights in orders.items()}
    return deletion_and_insertion(predict, class_index, rankings, lambda ranks, insertion: frame_curve_clips(
        clip, baseline, ranks, steps, insertion=insertion))
