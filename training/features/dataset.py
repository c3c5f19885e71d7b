"""Training on a feature cache: a Dataset giving ClipDataset(train=False)'s samples with "features"
(T, C, h, w) in place of "clip", and the checks that a run may use a cache at all.

The trunk is frozen by definition (its features were computed once), so a run needs
`model.freeze_backbone=true`, the cache's clip geometry and trunk, and a complete cache. The run's checkpoint
is still a full model: the trunk weights stored with the cache are loaded into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from stanet.config import ModelConfig
from stanet.model import AttentionRecognizer
from stanet.model.backbone import build_backbone, load_backbone_weights
from training.config import TrainConfig
from training.features.cache import (CacheHeader, CacheIndex, FeatureCacheError, feature_fields, open_shard,
                                     read_backbone_state, read_index, state_sha256)


class FeatureDataset(Dataset):
    """One split of a cache. Samples are dicts: features float16/float32 (T, C, h, w), label int64, inside bool
    (T,), boxes float32 (T, 4) (NaN where no box), index int64, frame_indices int64 (T,). Every shard is
    checked when the dataset is made (a truncated or corrupt one is named) and memory-mapped on first use."""

    def __init__(self, cache_dir: str | Path, index: CacheIndex, split: str):
        self.cache_dir = Path(cache_dir)
        self.header = index.header
        self.entries = [clip for clip in index.clips if clip.split == split]
        self.skipped = [item for item in index.skipped() if item.get("split") == split]
        self.label_index = {name: i for i, name in enumerate(index.header.class_names)}
        self.shard_files = {i: (shard["file"], shard["clips"]) for i, shard in enumerate(index.shards)}
        for shard in sorted({clip.shard for clip in self.entries}):
            self._open(shard)  # fail now, naming the shard, not in the middle of an epoch
        self._shards: dict[int, np.ndarray] = {}

    def _open(self, shard: int) -> np.ndarray:
        if shard not in self.shard_files:
            raise FeatureCacheError(f"{self.cache_dir}: a clip points at shard {shard}, which the index does not list")
        name, count = self.shard_files[shard]
        return open_shard(self.cache_dir / name, count, self.header)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_shards": {}}  # worker processes map the shards themselves

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index = key[0] if isinstance(key, tuple) else key  # (index, epoch) from EpochBatchSampler
        entry = self.entries[index]
        if entry.shard not in self._shards:
            self._shards[entry.shard] = self._open(entry.shard)
        features = np.array(self._shards[entry.shard][entry.offset])  # (T, C, h, w), copied out of the map
        boxes = np.array([[np.nan] * 4 if box is None else box for box in entry.boxes], dtype=np.float32)  # (T, 4)
        return {
            "features": torch.from_numpy(features),
            "label": torch.tensor(self.label_index[entry.label], dtype=torch.int64),
            "inside": torch.tensor(entry.inside, dtype=torch.bool),
            "boxes": torch.from_numpy(boxes),
            "index": torch.tensor(index, dtype=torch.int64),
            "frame_indices": torch.tensor(entry.frame_indices, dtype=torch.int64),
        }


def check_run_fits_cache(header: CacheHeader, model_config: ModelConfig, train: TrainConfig,
                         cache_dir: Path) -> None:
    """Refuse a run that cannot use this cache, naming every field that differs."""
    problems = []
    if not model_config.freeze_backbone:
        problems.append("training on cached features needs a frozen trunk (--set model.freeze_backbone=true): "
                        "the features were computed once")
    if train.flip:
        problems.append("train.flip cannot be applied to cached features (set train.flip=false)")
    if train.crop_min_area < 1.0:
        problems.append("train.crop_min_area cannot be applied to cached features (the crop is cut from frames; "
                        "set train.crop_min_area=1)")
    wanted = feature_fields(model_config)
    for name in sorted(set(wanted) | set(header.model)):
        if wanted.get(name) != header.model.get(name):
            problems.append(f"model.{name}: the run has {wanted.get(name)!r}, the cache {header.model.get(name)!r}")
    if train.backbone_weights:
        trunk = build_backbone(model_config)
        load_backbone_weights(trunk, train.backbone_weights)
        if state_sha256(trunk.state_dict()) != header.backbone_sha256:
            problems.append(f"train.backbone_weights {train.backbone_weights} are not the weights the cache was "
                            f"extracted with ({header.backbone_source or 'see index.json'})")
    for split in ("train", "val"):
        if split not in header.splits:
            problems.append(f"the cache has no {split!r} split (it holds {list(header.splits)}); extract with "
                            f"--split train --split val")
    if problems:
        raise FeatureCacheError(f"feature cache {cache_dir} does not fit this run: " + "; ".join(problems))


@dataclass
class CachedData:
    """What `stanet train --features` needs from a cache."""

    class_names: tuple[str, ...]
    train: FeatureDataset
    val: FeatureDataset
    backbone_state: dict[str, torch.Tensor]

    def load_backbone(self, model: AttentionRecognizer) -> None:
        """Put the cache's trunk into the model, so its checkpoint is a complete model."""
        model.backbone.load_state_dict(self.backbone_state)


def open_cache_for_training(cache_dir: str | Path, model_fields: dict[str, Any], train: TrainConfig) -> CachedData:
    """Read and check the cache for a run whose model section is `model_fields` (without num_classes)."""
    cache_dir = Path(cache_dir)
    index = read_index(cache_dir)
    if not index.complete:
        raise FeatureCacheError(f"feature cache {cache_dir} is incomplete ({len(index.shards)} of "
                                f"{index.total_shards} shards): run the same `stanet features extract` again "
                                f"to finish it")
    header = index.header
    check_run_fits_cache(header, ModelConfig(num_classes=len(header.class_names), **model_fields), train, cache_dir)
    return CachedData(class_names=header.class_names, train=FeatureDataset(cache_dir, index, "train"),
                      val=FeatureDataset(cache_dir, index, "val"),
                      backbone_state=read_backbone_state(cache_dir, header))
