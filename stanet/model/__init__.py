"""The attention recognizer and its parts. `build_model(config)` is the only constructor callers need."""

from __future__ import annotations

from pathlib import Path

from stanet.config import ModelConfig
from stanet.model.backbone import load_backbone_weights
from stanet.model.recognizer import AttentionRecognizer, RecognizerOutput


def build_model(config: ModelConfig, *, backbone_weights: str | Path | None = None) -> AttentionRecognizer:
    """Build the recognizer; `backbone_weights` is a local torchvision state-dict file for resnet trunks."""
    model = AttentionRecognizer(config)
    if backbone_weights is not None:
        load_backbone_weights(model.backbone, backbone_weights)
    return model


__all__ = ["AttentionRecognizer", "ModelConfig", "RecognizerOutput", "build_model"]
