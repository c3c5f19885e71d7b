"""The data of a training run: its class names, train and val sets and the model configuration they imply,
from a dataset's videos or from a feature cache (`train.features`: the frozen trunk already ran)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from stanet.config import ModelConfig
from stanet.constants import ANNOTATIONS_FILE, BACKGROUND_CLASS
from stanet.dataset_format import load_dataset
from training.config import RunConfig
from training.data import BackgroundSpec, ClipDataset, ClipSpec, CropSpec
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
    background: bool = False  # class_names ends with BACKGROUND_CLASS, learned from idle stretches

    @property
    def clip_span(self) -> dict[str, float] | None:
        """The training clips' span {"frames", "seconds"} (training.windows.ClipSpan), saved in checkpoints;
        None for a feature cache."""
        span = getattr(self.train_set, "span", None)
        return span.to_dict() if span is not None else None

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
    background = None
    if config.background:
        if BACKGROUND_CLASS in class_names:
            raise TrainingError(f"{data_dir}: train.background=true appends a class {BACKGROUND_CLASS!r}, and "
                                f"{BACKGROUND_CLASS!r} is already one of the dataset's classes (rename it)")
        background = BackgroundSpec(index=len(class_names), min_idle_fraction=config.background_min_idle)
        class_names.append(BACKGROUND_CLASS)
    model_config = run_config.model_config(len(class_names))
    spec = ClipSpec(model_config.clip_length, model_config.height, model_config.width)
    if not dataset.split("train"):
        raise TrainingError(f"{data_dir} has no clips with split 'train'")
    if not dataset.split("val"):
        raise TrainingError(f"{data_dir} has no clips with split 'val': learning-rate schedule and model "
                            f"selection use the validation split (never the test split)")
    crop = CropSpec.from_options(config.crop_min_area, config.crop_max_aspect)
    annotations = dataset.root / ANNOTATIONS_FILE
    train_set = ClipDataset(dataset.split("train"), spec, train=True, seed=config.seed, cache=config.cache_videos,
                            flip=config.flip, crop=crop, progress=progress, description="train videos",
                            background=background, annotations=annotations)
    val_set = ClipDataset(dataset.split("val"), spec, train=False, seed=config.seed, cache=config.cache_videos,
                          progress=progress, description="val videos", background=background,
                          span=train_set.span, annotations=annotations)
    if background is not None and not train_set.background_candidates:
        raise TrainingError(
            f"{data_dir}: train.background=true, but no training video has an idle stretch of at least "
            f"{config.background_min_idle:g} x the clip span ({train_set.span.frames if train_set.span else '?'} "
            f"frames) outside its interval or segments: add untrimmed videos (docs/datasets.md, 'Untrimmed "
            f"videos'), trimmed clips with longer idle parts, or lower train.background_min_idle")
    return RunData(class_names=class_names, train_set=train_set, val_set=val_set, model_config=model_config,
                   source=data_dir, background=background is not None)
