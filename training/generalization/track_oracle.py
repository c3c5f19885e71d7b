"""The track oracle: how well a dataset's classes can be told from the actor's ground-truth path alone.

A member that no recipe learns may be too hard for the clip the model sees, or hard for the model. The oracle
tells the two apart. It classifies each clip from the centres of its ground-truth boxes at the frames the
model samples (the centred sampling of evaluation and serving, stanet.sampling), described by features that do
not change when the path is moved or scaled (track_features), with a small MLP trained on the train split and
scored on the test split. It sees no pixels, so its top-1 is no upper bound for
a model that also sees the actor's pose; a recipe far below it is failing to read a path that the clip shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from stanet.dataset_format import ClipRecord
from stanet.sampling import sample_frame_indices

HIDDEN = 128
STEPS = 1500  # full-batch Adam steps: the feature sets are a few thousand rows


@dataclass(frozen=True)
class OracleResult:
    """Top-1 of the track oracle; `clips` counts the train and test clips that had boxes."""

    train_top1: float
    test_top1: float
    chance: float
    train_clips: int
    test_clips: int


def track_centres(record: ClipRecord, clip_length: int) -> np.ndarray | None:
    """(clip_length, 2) box centres (x, y) at the sampled frames of the frames the boxes span; a frame without
    a box takes the previous one's (the first ones the next one's). None for a record without boxes."""
    if not record.boxes:
        return None
    num_frames = max(record.boxes) + 1
    centres: list[tuple[float, float] | None] = []
    for index in sample_frame_indices(num_frames, clip_length):
        box = record.boxes.get(int(index))
        centres.append(None if box is None else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
    known = [c for c in centres if c is not None]
    if not known:
        return None
    filled, last = [], known[0]
    for centre in centres:
        last = centre if centre is not None else last
        filled.append(last)
    return np.asarray(filled, dtype=np.float64)


def track_features(centres: np.ndarray) -> np.ndarray:
    """Features of a (T, 2) path. Unchanged by moving, rotating or scaling it: the pairwise distances
    (T*(T-1)/2) over their maximum, the step lengths (T-1) over theirs, the absolute sine of the turn between
    consecutive steps (T-2). Unchanged by moving and scaling only: the centres about their mean over the largest
    distance (2T), for classes that a direction tells apart."""
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)  # (T, T)
    pairs = distances[np.triu_indices(len(centres), 1)]
    steps = np.diff(centres, axis=0)  # (T-1, 2)
    lengths = np.linalg.norm(steps, axis=1)
    cross = steps[:-1, 0] * steps[1:, 1] - steps[:-1, 1] * steps[1:, 0]
    turns = np.abs(cross) / (lengths[:-1] * lengths[1:] + 1e-6)
    scale = pairs.max() + 1e-6
    relative = (centres - centres.mean(0)) / scale  # direction kept: classes may be "left" vs "right"
    return np.concatenate([pairs / scale, lengths / (lengths.max() + 1e-6), turns, relative.ravel()])


def _split_features(records: Sequence[ClipRecord], split: str, clip_length: int) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for record in records:
        if record.split != split or record.untrimmed:
            continue
        centres = track_centres(record, clip_length)
        if centres is not None:
            rows.append(track_features(centres))
            labels.append(record.label_index)
    if not rows:
        raise ValueError(f"no {split} clip with boxes: the track oracle needs per-frame actor boxes")
    return np.stack(rows), np.asarray(labels)


def track_oracle(records: Sequence[ClipRecord], num_classes: int, clip_length: int, *, seed: int = 0,
                 steps: int = STEPS) -> OracleResult:
    """Train the oracle on the train split's tracks and score it on the test split's."""
    train_x, train_y = _split_features(records, "train", clip_length)
    test_x, test_y = _split_features(records, "test", clip_length)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    xs = torch.as_tensor((train_x - mean) / std, dtype=torch.float32)
    xt = torch.as_tensor((test_x - mean) / std, dtype=torch.float32)
    ys, yt = torch.as_tensor(train_y), torch.as_tensor(test_y)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        net = torch.nn.Sequential(torch.nn.Linear(xs.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                  torch.nn.Linear(HIDDEN, num_classes))
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-3)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(xs), ys).backward()
            optimizer.step()
    finally:
        torch.random.set_rng_state(generator_state)
    net.eval()
    return OracleResult(train_top1=_top1(net, xs, ys), test_top1=_top1(net, xt, yt), chance=1.0 / num_classes,
                        train_clips=len(ys), test_clips=len(yt))


@torch.no_grad()
def _top1(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((net(x).argmax(1) == y).float().mean())
