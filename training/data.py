"""A torch Dataset over the generic annotated format: decode (PyAV), sample T frames (stanet.sampling, the
same function the serving client uses), resize, and map boxes and the interval onto the sampled frames.
Untrimmed records give one action window per segment and, with a background class, idle stretches give
background windows (training.windows says which frames).

Decoding streams (stanet.video): the cache holds every frame already resized to the model's size, and
without the cache only the sampled frames are decoded, so a long video never sits in memory at its own size.
Randomness comes only from (seed, epoch, sample index), so a resumed run sees exactly the same samples.
Unreadable videos are reported and skipped with a count; they never stop a run. An interval, segment or box
past a video's end stops it (DatasetFormatError naming the line).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from stanet.constants import ANNOTATIONS_FILE
from stanet.dataset_format import ClipRecord, check_frame_count
from stanet.sampling import crop_box, crop_frames, random_crop_window, resize_frames, scale_box
from stanet.video import VideoDecodeError, iter_frames, probe_video, read_frames
from training.windows import (BACKGROUND, ClipSpan, Sample, background_count, clip_span, epoch_backgrounds,
                              plan_samples, window_indices)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipSpec:
    clip_length: int
    height: int
    width: int


@dataclass(frozen=True)
class CropSpec:
    """Random resized crop for training (stanet.sampling.random_crop_window): area fraction in
    [min_area, 1], aspect ratio in [1/max_aspect, max_aspect]."""

    min_area: float = 1.0
    max_aspect: float = 1.0

    @staticmethod
    def from_options(min_area: float, max_aspect: float) -> "CropSpec | None":
        """The crop TrainConfig's crop_min_area / crop_max_aspect ask for; None when both leave frames whole."""
        return CropSpec(min_area, max_aspect) if min_area < 1 or max_aspect > 1 else None


@dataclass
class LoadedVideo:
    frames: np.ndarray | None  # (N, height, width, 3) uint8, already resized; None when not cached
    source_hw: tuple[int, int]  # frame size in the file (boxes are in these pixels)
    num_frames: int
    fps: float


@dataclass(frozen=True)
class BackgroundSpec:
    """A background class: its label index (after the dataset's classes) and the shortest idle stretch that
    gives a background window, as a fraction of the clip span (training.windows)."""

    index: int
    min_idle_fraction: float = 0.5


class ClipDataset(Dataset):
    """Samples are dicts: clip uint8 (T, H, W, 3), label int64, inside bool (T,) (sampled frame inside the
    annotated interval or segment; all False without one and for background), boxes float32 (T, 4) (NaN where
    no box; always NaN for background), index int64 (the sample), frame_indices int64 (T,) (the video frames
    sampled).

    Samples: one per trimmed clip (T frames over the whole clip), then one per segment of the untrimmed
    records (a window of `span` frames), then, with `background`, the epoch's background windows
    (training.windows). Without untrimmed records and background, sample i is record i.

    Training augmentation (train=True only): TSN offsets, then `crop` (one window for the whole clip, cut
    from the frames already resized to the model's size: the cache holds them at that size), then `flip`.
    Boxes follow both; a box that leaves the crop becomes NaN. Evaluation is a plain resize."""

    def __init__(self, records: list[ClipRecord], spec: ClipSpec, *, train: bool, seed: int = 0,
                 cache: bool = True, flip: bool = False, crop: CropSpec | None = None, progress: bool = True,
                 description: str = "videos", background: BackgroundSpec | None = None,
                 span: ClipSpan | None = None, annotations: str | Path | None = None):
        self.spec = spec
        self.train = train
        self.seed = seed
        self.flip = flip
        self.crop = crop
        self.background = background
        self.cache: dict[int, LoadedVideo] = {}
        self.skipped: list[tuple[ClipRecord, str]] = []
        kept = []
        iterator = tqdm(records, desc=f"decoding {description}", unit="video", disable=not progress or not cache,
                        leave=False)
        for record in iterator:
            try:
                loaded = self._load(record) if cache else self._probe(record)
            except VideoDecodeError as exc:
                self.skipped.append((record, exc.reason))
                continue
            check_frame_count(record, loaded.num_frames, annotations or ANNOTATIONS_FILE)
            self.cache[len(kept)] = loaded
            kept.append(record)
        self.records = kept
        if self.skipped:
            first = "; ".join(f"{r.video} (line {r.line}): {why}" for r, why in self.skipped[:3])
            log.warning("skipped %d unreadable video(s) of %d: %s%s", len(self.skipped), len(records), first,
                        " ..." if len(self.skipped) > 3 else "")
        counts = [self.cache[i].num_frames for i in range(len(kept))]
        if span is None and kept:
            span = clip_span(kept, counts, [self.cache[i].fps for i in range(len(kept))])
        self.span = span
        self.actions: list[Sample] = []
        self.background_candidates: list[Sample] = []
        if kept:
            min_idle = max(1, int(np.ceil(background.min_idle_fraction * span.frames))) if background else 1
            self.actions, self.background_candidates = plan_samples(
                kept, counts, span.frames, background_index=background.index if background else None,
                min_idle=min_idle)
        self.background_per_epoch = background_count(self.actions, self.background_candidates)

    def _load(self, record: ClipRecord) -> LoadedVideo:
        """Every frame, resized as it is decoded (memory: the video at the model's size)."""
        frames, source_hw, rate = [], None, []
        try:
            for _, _, frame in iter_frames(record.video, on_open=rate.append):
                source_hw = source_hw or frame.shape[:2]
                frames.append(resize_frames(frame[None], self.spec.height, self.spec.width)[0])
        except VideoDecodeError as exc:
            if not frames:
                raise
            log.warning("%s (line %d): keeping the %d frames before the damage: %s", record.video, record.line,
                        len(frames), exc.reason)
        return LoadedVideo(frames=np.stack(frames), source_hw=tuple(source_hw), num_frames=len(frames), fps=rate[0])

    def _probe(self, record: ClipRecord) -> LoadedVideo:
        info = probe_video(record.video)
        return LoadedVideo(frames=None, source_hw=(info.height, info.width), num_frames=info.num_frames,
                           fps=info.fps)

    def samples(self, epoch: int) -> list[Sample]:
        """Every sample of an epoch: the actions, then that epoch's background windows (validation: always
        the same ones)."""
        chosen = epoch_backgrounds(self.background_candidates, self.background_per_epoch, self.seed,
                                   epoch if self.train else 0)
        return [*self.actions, *chosen]

    def __len__(self) -> int:
        return len(self.actions) + self.background_per_epoch

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        if index < len(self.actions):
            sample = self.actions[index]
        else:
            sample = epoch_backgrounds(self.background_candidates, self.background_per_epoch, self.seed,
                                       epoch if self.train else 0)[index - len(self.actions)]
        record = self.records[sample.record]
        loaded = self.cache[sample.record]
        rng = np.random.default_rng([self.seed, epoch, index])
        indices = window_indices(sample, loaded.num_frames, self.span.frames, self.spec.clip_length,
                                 random=self.train, rng=rng)
        if loaded.frames is not None:
            clip = loaded.frames[indices]
        else:  # only the sampled frames are decoded
            clip = read_frames(record.video, indices).frames
        clip = resize_frames(clip, self.spec.height, self.spec.width)  # (T, H, W, 3)
        inside = np.zeros(self.spec.clip_length, dtype=bool)
        if sample.action is not None:
            first, last = sample.action
            inside = (indices >= first) & (indices <= last)
        boxes = np.full((self.spec.clip_length, 4), np.nan, dtype=np.float32)
        if record.boxes and sample.kind != BACKGROUND:
            target_hw = (self.spec.height, self.spec.width)
            for j, frame_index in enumerate(indices):
                box = record.boxes.get(int(frame_index))
                if box is not None:
                    boxes[j] = scale_box(box, loaded.source_hw, target_hw)
        if self.train and self.crop is not None:
            clip, boxes = self._crop(clip, boxes, np.random.default_rng([self.seed, epoch, index, 1]))
        if self.train and self.flip and rng.random() < 0.5:
            clip = clip[:, :, ::-1]
            x1 = boxes[:, 0].copy()
            boxes[:, 0] = self.spec.width - boxes[:, 2]
            boxes[:, 2] = self.spec.width - x1
        return {
            "clip": torch.from_numpy(np.ascontiguousarray(clip)),
            "label": torch.tensor(sample.label_index, dtype=torch.int64),
            "inside": torch.from_numpy(inside),
            "boxes": torch.from_numpy(boxes),
            "index": torch.tensor(index, dtype=torch.int64),
            "frame_indices": torch.from_numpy(indices),
        }

    def _crop(self, clip: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random resized crop for every frame of `clip` (T, H, W, 3); boxes (T, 4) mapped into it. Its own
        generator (seed, epoch, index, 1), so turning the crop on leaves the TSN offsets and the flip as they were."""
        H, W = self.spec.height, self.spec.width
        window = random_crop_window(H, W, rng, min_area=self.crop.min_area, max_aspect=self.crop.max_aspect)
        moved = np.full_like(boxes, np.nan)
        for j, box in enumerate(boxes):
            if not np.isnan(box).any():
                mapped = crop_box(tuple(box), window, (H, W))
                if mapped is not None:
                    moved[j] = mapped
        return crop_frames(clip, window, H, W), moved


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, epoch) in an order fixed by (seed, epoch); `start_batch` skips batches already
    trained on before an interruption, so `--resume` mid-epoch continues identically."""

    def __init__(self, size: int, batch_size: int, *, shuffle: bool, seed: int, epoch: int = 0,
                 start_batch: int = 0):
        self.size, self.batch_size, self.shuffle, self.seed = size, batch_size, shuffle, seed
        self.epoch, self.start_batch = epoch, start_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Point a long-lived loader (persistent workers) at another epoch, like DistributedSampler.set_epoch."""
        self.epoch, self.start_batch = epoch, start_batch

    def batches(self) -> list[list[tuple[int, int]]]:
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.size) if self.shuffle
                 else np.arange(self.size))
        return [[(int(i), self.epoch) for i in order[s:s + self.batch_size]]
                for s in range(0, self.size, self.batch_size)]

    def __iter__(self):
        return iter(self.batches()[self.start_batch:])

    def __len__(self) -> int:
        return max(0, -(-self.size // self.batch_size) - self.start_batch)
