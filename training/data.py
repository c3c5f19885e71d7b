"""A torch Dataset over the generic annotated format: decode (PyAV), sample T frames (stanet.sampling, the
same function the serving client uses), resize, and map boxes and the interval onto the sampled frames.

Randomness comes only from (seed, epoch, clip index), so a resumed run sees exactly the same samples.
Unreadable videos are reported and skipped with a count; they never stop a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from stanet.dataset_format import ClipRecord
from stanet.sampling import crop_box, crop_frames, random_crop_window, resize_frames, sample_clip, scale_box
from stanet.video import VideoDecodeError, read_video

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
    frames: np.ndarray  # (N, height, width, 3) uint8, already resized
    source_hw: tuple[int, int]  # frame size in the file (boxes are in these pixels)


class ClipDataset(Dataset):
    """Samples are dicts: clip uint8 (T, H, W, 3), label int64, inside bool (T,) (sampled frame inside the
    annotated interval; all False without one), boxes float32 (T, 4) (NaN where no box), index int64,
    frame_indices int64 (T,) (the video frames sampled).

    Training augmentation (train=True only): TSN offsets, then `crop` (one window for the whole clip, cut
    from the frames already resized to the model's size: the cache holds them at that size), then `flip`.
    Boxes follow both; a box that leaves the crop becomes NaN. Evaluation is a plain resize."""

    def __init__(self, records: list[ClipRecord], spec: ClipSpec, *, train: bool, seed: int = 0,
                 cache: bool = True, flip: bool = False, crop: CropSpec | None = None, progress: bool = True,
                 description: str = "videos"):
        self.spec = spec
        self.train = train
        self.seed = seed
        self.flip = flip
        self.crop = crop
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
            if cache:
                self.cache[len(kept)] = loaded
            kept.append(record)
        self.records = kept
        if self.skipped:
            first = "; ".join(f"{r.video} (line {r.line}): {why}" for r, why in self.skipped[:3])
            log.warning("skipped %d unreadable video(s) of %d: %s%s", len(self.skipped), len(records), first,
                        " ..." if len(self.skipped) > 3 else "")

    def _load(self, record: ClipRecord) -> LoadedVideo:
        video = read_video(record.video)
        return LoadedVideo(frames=resize_frames(video.frames, self.spec.height, self.spec.width),
                           source_hw=tuple(video.frames.shape[1:3]))

    def _probe(self, record: ClipRecord) -> None:
        read_video(record.video, max_frames=1)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        record = self.records[index]
        loaded = self.cache.get(index) or self._load(record)
        rng = np.random.default_rng([self.seed, epoch, index])
        clip, indices = sample_clip(loaded.frames, self.spec.clip_length, self.spec.height, self.spec.width,
                                    random=self.train, rng=rng)  # (T, H, W, 3)
        inside = np.zeros(self.spec.clip_length, dtype=bool)
        if record.interval is not None:
            first, last = record.interval
            inside = (indices >= first) & (indices <= last)
        boxes = np.full((self.spec.clip_length, 4), np.nan, dtype=np.float32)
        if record.boxes:
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
            "label": torch.tensor(record.label_index, dtype=torch.int64),
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
