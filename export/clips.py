"""uint8 clips for the gates and for int8 calibration, sampled exactly as evaluation and serving sample them
(stanet.sampling: TSN segment centres, bilinear resize), so export depends on `stanet` only."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.errors import ExportError
from stanet.config import ModelConfig
from stanet.constants import BACKGROUND_CLASS
from stanet.dataset_format import DatasetFormatError, load_dataset
from stanet.sampling import resize_frames, sample_frame_indices
from stanet.video import VideoDecodeError, sample_video

log = logging.getLogger(__name__)


@dataclass
class ClipSet:
    clips: np.ndarray  # (N, T, H, W, 3) uint8
    labels: np.ndarray  # (N,) int64 class indices; -1 for random clips
    source: str  # e.g. "random (seed 0)" or "data/synthetic test split"
    skipped: int = 0  # videos that could not be decoded

    def __len__(self) -> int:
        return len(self.clips)


def random_clips(count: int, config: ModelConfig, *, seed: int = 0) -> ClipSet:
    rng = np.random.default_rng(seed)
    clips = rng.integers(0, 256, size=(count, config.clip_length, config.height, config.width, 3), dtype=np.uint8)
    return ClipSet(clips=clips, labels=np.full(count, -1, dtype=np.int64), source=f"random uint8 (seed {seed})")


def dataset_clips(root: str | Path, splits: tuple[str, ...], config: ModelConfig | tuple[int, int, int],
                  class_names: tuple[str, ...] | None, *, limit: int) -> ClipSet:
    """Up to `limit` clips of the first non-empty split in `splits`, spread evenly over it (so every part of
    the file, and usually every class, is represented). Undecodable videos are skipped and counted.

    Args:
        config: the model's config, or its clip shape (T, H, W) where only a served model's signature is known.
        class_names: the checkpoint's classes, which the dataset's must equal; None skips the check.
    """
    clip_length, height, width = (config if isinstance(config, tuple)
                                  else (config.clip_length, config.height, config.width))
    try:
        dataset = load_dataset(root)
    except DatasetFormatError as exc:
        raise ExportError(f"cannot read the dataset: {exc}") from None
    if class_names is not None and tuple(class_names[-1:]) == (BACKGROUND_CLASS,) \
            and BACKGROUND_CLASS not in dataset.class_names:
        class_names = tuple(class_names[:-1])  # a model with a background class (train.background)
    if class_names is not None and tuple(dataset.class_names) != tuple(class_names):
        raise ExportError(f"{root} has classes {list(dataset.class_names)}, the checkpoint was trained on "
                          f"{list(class_names)} (same names in the same order expected)")
    def trimmed(name: str) -> list:
        return [record for record in dataset.split(name) if not record.untrimmed]

    split, records = next(((s, trimmed(s)) for s in splits if trimmed(s)), (None, []))
    if not records:
        raise ExportError(f"{root} has no clips in the {' or '.join(splits)} split")
    if len(records) > limit:
        picks = np.unique(np.linspace(0, len(records) - 1, limit).round().astype(int))
        records = [records[i] for i in picks]
    clips, labels, skipped = [], [], 0
    for record in records:
        try:
            # Streamed: only the sampled frames are decoded and kept (what sample_clip takes).
            frames = sample_video(record.video, lambda n: sample_frame_indices(n, clip_length)).frames
        except VideoDecodeError as exc:
            log.warning("skipping %s (line %d): %s", record.video, record.line, exc.reason)
            skipped += 1
            continue
        clips.append(resize_frames(frames, height, width))
        labels.append(record.label_index)
    if not clips:
        raise ExportError(f"none of the {len(records)} videos of {root} ({split} split) could be decoded")
    return ClipSet(clips=np.stack(clips), labels=np.asarray(labels, dtype=np.int64),
                   source=f"{root} {split} split", skipped=skipped)
