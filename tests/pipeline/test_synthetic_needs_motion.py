"""The synthetic benchmark's classes are defined by motion: a classifier that sees one frame stays near
chance, while the attention model that sees the clip learns them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from stanet.dataset_format import load_dataset
from stanet.model.backbone import CompactTrunk
from stanet.model.preprocess import normalize_clip
from training.data import ClipDataset, ClipSpec
from training.evaluate import evaluate

pytestmark = pytest.mark.slow


class SingleFrameClassifier(nn.Module):
    """The same trunk as the recognizer, then a position-aware head (conv + flatten + linear): it may use
    where the actor is and how it looks in that frame, nothing else."""

    def __init__(self, num_classes: int, size: int):
        super().__init__()
        self.trunk = CompactTrunk(16)
        self.head = nn.Sequential(nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(16 * (size // 4) ** 2, num_classes))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(frames))


def single_frames(dataset: ClipDataset, rng: np.random.Generator, acting_only: bool):
    """One frame per clip (a random one, or a random one inside the action interval)."""
    frames, labels = [], []
    for i in range(len(dataset)):
        sample = dataset[(i, int(rng.integers(1 << 30)))]
        choices = np.flatnonzero(sample["inside"].numpy()) if acting_only else np.arange(len(sample["inside"]))
        t = int(rng.choice(choices if len(choices) else np.arange(len(sample["inside"]))))
        frames.append(sample["clip"][t])
        labels.append(int(sample["label"]))
    clip = torch.stack(frames)[:, None]  # (N, 1, H, W, 3)
    return normalize_clip(clip)[:, 0], torch.tensor(labels)  # (N, 3, H, W), (N,)


def test_single_frame_stays_near_chance_while_the_clip_model_learns(easy_dataset, easy_run):
    dataset = load_dataset(easy_dataset)
    k = len(dataset.class_names)
    spec = ClipSpec(clip_length=16, height=32, width=32)
    train = ClipDataset(dataset.split("train"), spec, train=True, progress=False)
    test = ClipDataset(dataset.split("test"), spec, train=False, progress=False)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    single = SingleFrameClassifier(k, 32)
    optimizer = torch.optim.Adam(single.parameters(), lr=2e-3)
    for epoch in range(16):  # fresh frames every epoch: the same number of clips the clip model sees
        x, y = single_frames(train, rng, acting_only=epoch % 2 == 0)
        for start in range(0, len(y), 32):
            loss = nn.functional.cross_entropy(single(x[start:start + 32]), y[start:start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    single.eval()
    with torch.no_grad():
        accuracies = []
        for acting_only in (False, True):
            x, y = single_frames(test, rng, acting_only)
            accuracies.append((single(x).argmax(1) == y).float().mean().item())
    report = evaluate(easy_run / "best.pt", easy_dataset, cam_baseline=False, progress=False)
    clip_accuracy = report["classification"]["top1"]
    chance = 1 / k
    print(f"single frame: {accuracies} (any frame, acting frame); clip model: {clip_accuracy:.3f}; chance {chance}")
    assert max(accuracies) < chance + 0.15, accuracies
    assert clip_accuracy > 0.5 and clip_accuracy > max(accuracies) + 0.25, clip_accuracy
