"""The data of a training run: its class names, train and val sets and the model configuration they imply,
from a dataset's videos or from a feature cache (`train.features`: the frozen trunk already ran)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from stanet.config import ModelConfig
from stanet.dataset_format import load_dataset
from training.config import RunConfig
from training.data import ClipDataset, ClipSpec, CropSpec
from training.features.dataset import CachedData, open_cache_for_training
from training.loop import TrainingError


@dataclass(frozen=True)
class RunData:
    class_names: list[str]
    train_set: Dataset  # ClipDataset or FeatureDataset; both list their unreadable videos in `skipped`
    val_set: Dataset
    model_config: ModelConfig
    source: str | Path  # the dataset directory or the feature cache, for messages
    cache: CachedData | None = None  # a feature cache: a fresh model takes its trunk from there

    @property
    def skipped_videos(self) -> int:
        return len(self.train_set.skipped) + len(self.val_set.skipped)


def prepare_data(data_dir: str | Path | None, run_config: RunConfig, *, progress: bool) -> RunData:
    """Open the run's data; refuses a dataset without train or val clips, or whose every video is unreadable."""
    if run_config.train.features:
        data = _feature_cache(run_config)
    else:
        data = _videos(data_dir, run_config, progress)
    for name, part in (("train", data.train_set), ("val", data.val_set)):
        if len(part) == 0:
            raise TrainingError(f"every {name} video of {data.source} is unreadable ({len(part.skipped)} skipped)")
    return data


def _feature_cache(run_config: RunConfig) -> RunData:
    config = run_config.train
    cached = open_cache_for_training(config.features, run_config.model, config)
    class_names = list(cached.class_names)
    return RunData(class_names=class_names, train_set=cached.train, val_set=cached.val,
                   model_config=run_config.model_config(len(class_names)), source=config.features, cache=cached)


def _videos(data_dir: str | Path | None, run_config: RunConfig, progress: bool) -> RunData:
    config = run_config.train
    if data_dir is None:
        raise TrainingError("a dataset directory (--data) is needed, or a feature cache (--features)")
    dataset = load_dataset(data_dir)
    class_names = list(dataset.class_names)
    model_config = run_config.model_config(len(class_names))
    spec = ClipSpec(model_config.clip_length, model_config.height, model_config.width)
    if not dataset.split("train"):
        raise TrainingError(f"{data_dir} has no clips with split 'train'")
    if not dataset.split("val"):
        raise TrainingError(f"{data_dir} has no clips with split 'val': learning-rate schedule and model "
                            f"selection use the validation split (never the test split)")
    crop = CropSpec.from_options(config.crop_min_area, config.crop_max_aspect)
    train_set = ClipDataset(dataset.split("train"), spec, train=True, seed=config.seed, cache=config.cache_videos,
                            flip=config.flip, crop=crop, progress=progress, description="train videos")
    val_set = ClipDataset(dataset.split("val"), spec, train=False, seed=config.seed, cache=config.cache_videos,
                          progress=progress, description="val videos")
    return RunData(class_names=class_names, train_set=train_set, val_set=val_set, model_config=model_config,
                   source=data_dir)
