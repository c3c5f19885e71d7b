"""The maps whose rankings the curves compare, each (T, h, w) at the model's feature resolution: the model's
own mask (from its output), random maps, CAM of the no-attention baseline and Grad-CAM of the model.

- random: uniform noise drawn at the mask's resolution and upsampled like it, so the comparison is the
  ranking, not the grain.
- CAM (Zhou et al. 2016) of the evaluation's CAM baseline: the linear classifier without attention that
  `stanet evaluate` fits on the same trunk's pooled features (`training.evaluate.fit_cam_classifier`), for
  the class the attention model predicts.
- Grad-CAM (Selvaraju et al. 2017) of the attention model itself, on its last trunk layer, for the class it
  predicts: Captum's `LayerGradCam` (ReLU of the gradient-weighted sum of the layer's channels), not
  hand-written hooks.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import LayerGradCam
from torch import nn

from stanet.model import AttentionRecognizer
from stanet.model.preprocess import normalize_clip
from training import metrics


def random_map(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A (T, h, w) map of independent uniform values."""
    return rng.random(shape)


def trunk_blocks(model: AttentionRecognizer) -> list[tuple[str, nn.Module]]:
    """The trunk's blocks that have weights, input to output, named by their path in the model: the compact
    trunk's three conv-BN-ReLU layers (`backbone.layers.0/2/4`), a ResNet's stem and layer1..4."""
    children = list(model.backbone.named_children())
    if len(children) == 1 and isinstance(children[0][1], nn.Sequential):  # CompactTrunk: one Sequential
        prefix, sequential = children[0]
        children = [(f"{prefix}.{name}", module) for name, module in sequential.named_children()]
    return [(f"backbone.{name}", module) for name, module in children
            if any(True for _ in module.parameters())]


def last_trunk_layer(model: AttentionRecognizer) -> nn.Module:
    """The layer Grad-CAM explains: the trunk's last block, whose output is the features the mask sees."""
    return trunk_blocks(model)[-1][1]


def grad_cam_maps(model: AttentionRecognizer, clips: np.ndarray, targets: list[int]) -> np.ndarray:
    """Grad-CAM of the model's last trunk layer for uint8 clips (N, T, H, W, 3) and one class per clip;
    returns (N, T, h, w) float64, >= 0 (the frames of a clip share the class, each frame its own map)."""
    model.eval()
    device = next(model.parameters()).device
    inputs = normalize_clip(torch.from_numpy(np.ascontiguousarray(clips)).to(device))  # (N, T, 3, H, W)
    grad_cam = LayerGradCam(lambda x: model(x).logits, last_trunk_layer(model))
    with torch.enable_grad():
        # the layer's batch is N*T frames: attributions (N*T, 1, h, w)
        attributions = grad_cam.attribute(inputs, target=list(targets), relu_attributions=True)
    N, T = clips.shape[:2]
    return attributions.detach().float().cpu().numpy().reshape(N, T, *attributions.shape[-2:]).astype(np.float64)


@torch.no_grad()
def cam_maps(model: AttentionRecognizer, clips: np.ndarray, cam_weight: np.ndarray, targets: list[int]) -> np.ndarray:
    """CAM of the no-attention baseline classifier `cam_weight` (K, C) on the model's trunk features, one
    class per clip: (N, T, h, w) in [0, 1] (`training.metrics.class_activation_maps`)."""
    model.eval()
    device = next(model.parameters()).device
    features = model.forward_features(normalize_clip(torch.from_numpy(np.ascontiguousarray(clips)).to(device)))
    features = model.split_prior(features)[0].float().cpu().numpy()  # (N, T, C, h, w)
    return np.stack([metrics.class_activation_maps(f, cam_weight, int(k)) for f, k in zip(features, targets)])
