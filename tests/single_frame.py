"""A classifier that sees one frame of a clip: the check that a benchmark's classes are defined by motion
(it must stay near chance where the clip model learns them)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from stanet.dataset_format import load_dataset
from stanet.model.backbone import CompactTrunk
from stanet.model.preprocess import normalize_clip
from training.data import ClipDataset, ClipSpec


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


def single_frame_accuracies(data_dir, clip_length: int = 16, size: int = 32, epochs: int = 16) -> list[float]:
    """Test accuracy of a `SingleFrameClassifier` trained on the dataset's train split: [any frame, a frame
    inside the action]. Fresh frames every epoch: as many clips as the clip model sees."""
    dataset = load_dataset(data_dir)
    spec = ClipSpec(clip_length=clip_length, height=size, width=size)
    train = ClipDataset(dataset.split("train"), spec, train=True, progress=False)
    test = ClipDataset(dataset.split("test"), spec, train=False, progress=False)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    single = SingleFrameClassifier(len(dataset.class_names), size)
    optimizer = torch.optim.Adam(single.parameters(), lr=2e-3)
    for epoch in range(epochs):
        x, y = single_frames(train, rng, acting_only=epoch % 2 == 0)
        for start in range(0, len(y), 32):
            loss = nn.functional.cross_entropy(single(x[start:start + 32]), y[start:start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    single.eval()
    with torch.no_grad():
        return [(single(x).argmax(1) == y).float().mean().item()
                for x, y in (single_frames(test, rng, acting_only) for acting_only in (False, True))]
