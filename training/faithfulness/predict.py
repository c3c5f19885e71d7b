"""The PyTorch side of a `Predictor`: uint8 clips in, probabilities and both attention maps out, exactly what
the exported graph computes (normalize_clip, the recognizer, the one softmax)."""

from __future__ import annotations

import numpy as np
import torch

from stanet.model import AttentionRecognizer
from stanet.model.preprocess import normalize_clip
from stanet.model.recognizer import probabilities
from training.faithfulness.curves import Prediction


class TorchPredictor:
    """Calls `model` (in eval mode) on uint8 clips (N, T, H, W, 3), `batch_size` clips at a time."""

    def __init__(self, model: AttentionRecognizer, batch_size: int = 64):
        self.model, self.batch_size = model.eval(), batch_size

    @torch.no_grad()
    def __call__(self, clips: np.ndarray) -> Prediction:
        device = next(self.model.parameters()).device
        parts: list[tuple[np.ndarray, ...]] = []
        for i in range(0, len(clips), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(clips[i:i + self.batch_size])).to(device)
            output = self.model(normalize_clip(batch))
            parts.append((probabilities(output).cpu().numpy(), output.spatial_attention.float().cpu().numpy(),
                          output.temporal_attention.float().cpu().numpy()))
        return Prediction(*(np.concatenate([p[k] for p in parts]) for k in range(3)))
