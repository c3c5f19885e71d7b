"""The model-parameter randomization test (Adebayo et al. 2018, "Sanity checks for saliency maps"), cascading:
the weights are re-initialized stage by stage from the output down (the classifier, the temporal attention
(with the ConvLSTM), the projection if any, the spatial attention, then the trunk's blocks from the last to
the first), and after each stage the masks and temporal weights are compared with the trained model's by
Spearman rank correlation, per clip, then averaged. Maps that barely change once the weights that produce
them are destroyed do not explain the model.

By construction the mask is computed from the trunk's features before the temporal attention and the
classifier, so randomizing those two leaves it exactly unchanged (Spearman 1); the stage that tests it is the
spatial attention's, and the trunk stages after it. Masks are ranked at their own resolution (T, h, w):
upsampling adds no ranking information.

Re-initialization is each layer's own `reset_parameters` (PyTorch's default initialization, BatchNorm back to
identity statistics), under a seed per stage.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from stanet.model import AttentionRecognizer
from training.faithfulness.curves import Prediction
from training.faithfulness.maps import trunk_blocks
from training.faithfulness.predict import TorchPredictor


def cascade_stages(model: AttentionRecognizer) -> list[tuple[str, nn.Module]]:
    """(stage name, module) in the order they are randomized, output first."""
    stages: list[tuple[str, nn.Module]] = [("classifier", model.classifier), ("temporal_attention", model.temporal)]
    if model.projection is not None:
        stages.append(("projection", model.projection))
    if model.spatial is not None:
        stages.append(("spatial_attention", model.spatial))
    stages += list(reversed(trunk_blocks(model)))
    return stages


def randomize_(module: nn.Module, seed: int) -> None:
    """Re-initialize every layer of `module` in place (its `reset_parameters`), reproducibly."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in module.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.reset_running_stats()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho of two arrays of the same shape, flattened; None where either is constant."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def cascading_randomization(model: AttentionRecognizer, clips: np.ndarray, trained: Prediction, *, seed: int = 0,
                            batch_size: int = 64) -> dict:
    """Randomize a copy of `model` stage by stage; for uint8 clips (N, T, H, W, 3) and the trained model's
    `trained` outputs on them, the per-stage mean Spearman of masks and of temporal weights.

    Returns {"stages": [name, ...], "spatial_spearman": [...], "temporal_spearman": [...], "spatial": [(N, T, h,
    w) masks per stage], "temporal": [(N, T) per stage]}; a None correlation means every map was constant (no
    spatial attention, uniform weights).
    """
    randomized = copy.deepcopy(model).eval()
    predict = TorchPredictor(randomized, batch_size)
    out: dict = {"stages": [], "spatial_spearman": [], "temporal_spearman": [], "spatial": [], "temporal": []}
    for number, (name, module) in enumerate(cascade_stages(randomized)):
        randomize_(module, seed * 1000 + number)
        result = predict(clips)
        out["stages"].append(name)
        out["spatial_spearman"].append(_mean([rank_correlation(a, b) for a, b in zip(result.spatial, trained.spatial)]))
        out["temporal_spearman"].append(_mean([rank_correlation(a, b)
                                               for a, b in zip(result.temporal, trained.temporal)]))
        out["spatial"].append(result.spatial)
        out["temporal"].append(result.temporal)
    return out
