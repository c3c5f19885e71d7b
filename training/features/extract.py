"""`stanet features extract`: run the frozen trunk once over every clip of a dataset and write the feature
cache (training/features/cache.py) that `stanet train --features` reads.

Clips are sampled as evaluation samples them (ClipDataset with train=False: the centre frame of each of T
segments). The trunk comes from a stanet checkpoint (`--checkpoint`) or from a run configuration like
`stanet train`'s (`--preset/--config/--set`, with `train.backbone_weights` naming a local torchvision file).
Re-running the same command resumes: finished shards are kept, a different configuration, trunk or dataset
is refused with the fields that differ. Unreadable videos are reported and skipped with a count.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from stanet.checkpoint import CheckpointError, load_checkpoint
from stanet.constants import ANNOTATIONS_FILE, CLASSES_FILE, SPLITS
from stanet.dataset_format import ClipRecord, DatasetFormatError, load_dataset
from stanet.model import AttentionRecognizer, build_model
from stanet.model.preprocess import normalize_clip
from stanet.video import VideoDecodeError
from training.config import DEFAULT_PRESET, RunConfig, add_run_config_arguments, run_config_from_arguments, run_config_given
from training.data import ClipDataset, ClipSpec
from training.features.cache import (BACKBONE_FILE, DTYPES, INDEX_FILE, CacheHeader, CacheIndex, ClipEntry,
                                     FeatureCacheError, atomic_write, feature_fields, read_index, remove_temp_files,
                                     shard_name, state_sha256, write_shard)
from training.loop import select_device

log = logging.getLogger("stanet.features")


@dataclass(frozen=True)
class ExtractOptions:
    """How to extract. `splits`, `clips_per_shard` and `dtype` are part of the cache's identity (a resumed run
    must keep them); the rest only changes speed and memory."""

    splits: tuple[str, ...] = ("train", "val")
    clips_per_shard: int = 64
    dtype: str = "float16"
    batch_size: int = 16
    num_workers: int = 0  # decoding processes
    device: str = "auto"
    max_shards: int = 0  # stop after writing this many shards in this call (0 = all): a chunked or test run

    def __post_init__(self) -> None:
        problems = []
        if not self.splits or not set(self.splits) <= set(SPLITS):
            problems.append(f"splits must be a non-empty subset of {SPLITS}, got {self.splits}")
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        for name in ("clips_per_shard", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_shards < 0 or self.num_workers < 0:
            problems.append("max_shards and num_workers must be >= 0")
        if problems:
            raise ValueError("invalid extraction options: " + "; ".join(problems))


class _ClipsOrFailures(ClipDataset):
    """ClipDataset whose item is {"index", "error"} for a video that the constructor's one-frame probe
    accepted but whose full decode fails, so one such video is skipped instead of stopping the shard."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return super().__getitem__(index)
        except VideoDecodeError as exc:
            return {"index": index, "error": exc.reason}


def model_from_checkpoint(path: str | Path) -> tuple[AttentionRecognizer, str]:
    """The trunk (and the clip geometry) of a trained stanet checkpoint."""
    return load_checkpoint(path).build_model(), f"checkpoint {path}"


def model_from_run_config(run_config: RunConfig, num_classes: int) -> tuple[AttentionRecognizer, str]:
    """A model of the run configuration with its trunk's weights loaded from `train.backbone_weights`."""
    model_config = run_config.model_config(num_classes)
    weights = run_config.train.backbone_weights
    if not weights:
        if model_config.backbone == "compact":
            raise FeatureCacheError("the compact trunk has no pretrained weights file: take a trained trunk from a "
                                    "stanet checkpoint with --checkpoint CKPT")
        raise FeatureCacheError(f"features of a randomly initialised {model_config.backbone} are of no use: name "
                                f"the weights with --set train.backbone_weights=FILE (a torchvision state dict)")
    return build_model(model_config, backbone_weights=weights), f"weights file {Path(weights).resolve()}"


def dataset_sha256(root: Path) -> str:
    digest = hashlib.sha256()
    for name in (CLASSES_FILE, ANNOTATIONS_FILE):
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def _entry(item: dict[str, torch.Tensor], record: ClipRecord, root: Path, shard: int, offset: int) -> ClipEntry:
    boxes = item["boxes"].numpy()  # (T, 4), NaN where no box
    return ClipEntry(video=record.video.relative_to(root).as_posix(), line=record.line, label=record.label,
                     split=record.split, shard=shard, offset=offset,
                     frame_indices=item["frame_indices"].tolist(), inside=item["inside"].tolist(),
                     boxes=[None if np.isnan(row).any() else row.tolist() for row in boxes])


@torch.no_grad()
def extract_shard(model: AttentionRecognizer, records: list[ClipRecord], root: Path, shard: int,
                  options: ExtractOptions, device: torch.device) -> tuple[np.ndarray, list[ClipEntry], list[dict]]:
    """Features (n, T, C, h, w) of the readable clips of `records`, their index entries, the skipped videos."""
    cfg = model.config
    clips = _ClipsOrFailures(records, ClipSpec(cfg.clip_length, cfg.height, cfg.width), train=False, cache=False,
                             progress=False)

    def skip(record: ClipRecord, reason: str) -> dict[str, Any]:
        return {"video": record.video.relative_to(root).as_posix(), "line": record.line, "split": record.split,
                "reason": reason}

    skipped = [skip(record, reason) for record, reason in clips.skipped]
    loader = DataLoader(clips, batch_size=options.batch_size, num_workers=options.num_workers, collate_fn=list)
    features, entries = [], []
    for batch in loader:
        good = []
        for item in batch:
            record = clips.records[int(item["index"])]
            if "error" in item:  # ClipDataset has logged the probe's failures, not this one
                log.warning("skipped %s (line %d): %s", record.video, record.line, item["error"])
                skipped.append(skip(record, item["error"]))
            else:
                good.append(item)
                entries.append(_entry(item, record, root, shard, offset=len(entries)))
        if good:
            clip = normalize_clip(torch.stack([item["clip"] for item in good]).to(device))  # (B, T, 3, H, W)
            maps = model.forward_features(clip)  # (B, T, C, h, w)
            features.append(maps.float().cpu().numpy().astype(options.dtype))
    if not features:  # every video of the shard unreadable: an empty shard keeps the numbering simple
        return np.zeros((0, *_feature_shape(model)), options.dtype), entries, skipped
    return np.concatenate(features), entries, skipped  # (n, T, C, h, w)


def _feature_shape(model: AttentionRecognizer) -> tuple[int, int, int, int]:
    h, w = model.feature_map_size()
    return (model.config.clip_length, model.feature_channels, h, w)


def _start_or_resume(cache_dir: Path, header: CacheHeader, total_shards: int,
                     backbone_state: dict[str, torch.Tensor]) -> CacheIndex:
    """A new cache (backbone.pt, then an index without shards) or the existing one if it was made by the same
    configuration; anything else is refused, naming what differs."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_temp_files(cache_dir)
    if removed:
        log.info("removed %d temp file(s) of an interrupted extraction in %s", removed, cache_dir)
    if (cache_dir / INDEX_FILE).is_file():
        index = read_index(cache_dir)
        diffs = index.header.differences(header)
        if diffs:
            raise FeatureCacheError(f"{cache_dir} holds features of another configuration (cache vs now: "
                                    + "; ".join(diffs) + "); extract into a new --out directory")
        return index
    foreign = sorted(p.name for p in cache_dir.iterdir() if p.name != BACKBONE_FILE)
    if foreign:
        raise FeatureCacheError(f"{cache_dir} is not empty and not a feature cache (no {INDEX_FILE}; it holds "
                                f"{foreign[:3]}); extract into a new or empty --out directory")
    atomic_write(cache_dir / BACKBONE_FILE, lambda handle: torch.save(backbone_state, handle))
    index = CacheIndex(header=header, total_shards=total_shards)
    atomic_write(cache_dir / INDEX_FILE, lambda handle: handle.write(index.to_json().encode()))
    return index


def extract_features(data_dir: str | Path, cache_dir: str | Path, model: AttentionRecognizer,
                     options: ExtractOptions, *, backbone_source: str = "", progress: bool = True) -> dict[str, Any]:
    """Write (or finish) the feature cache of `data_dir`'s chosen splits under `cache_dir`; returns a summary
    {shards_written, shards_done, total_shards, clips_written, skipped_videos, seconds, clips_per_second}."""
    started = time.monotonic()
    cache_dir = Path(cache_dir)
    dataset = load_dataset(data_dir)
    # Untrimmed records (segments) are not clips of one label: a feature cache holds trimmed clips only.
    records = [record for record in dataset.records if record.split in options.splits and not record.untrimmed]
    if not records:
        raise FeatureCacheError(f"{data_dir} has no clips in the splits {list(options.splits)}")
    device = select_device(options.device)
    model = model.to(device).eval()
    backbone_state = {k: v.detach().cpu() for k, v in model.backbone.state_dict().items()}
    header = CacheHeader(model=feature_fields(model.config), backbone_sha256=state_sha256(backbone_state),
                         dtype=options.dtype, feature_shape=_feature_shape(model),
                         clips_per_shard=options.clips_per_shard, splits=tuple(options.splits),
                         dataset_sha256=dataset_sha256(dataset.root), class_names=dataset.class_names,
                         backbone_source=backbone_source)
    n = options.clips_per_shard
    index = _start_or_resume(cache_dir, header, -(-len(records) // n), backbone_state)
    first = len(index.shards)
    last = index.total_shards if not options.max_shards else min(index.total_shards, first + options.max_shards)
    clips_written = skipped = 0
    bar = tqdm(total=len(records), initial=min(first * n, len(records)), unit="clip", desc="extracting features",
               disable=not progress)
    for shard in range(first, last):
        shard_records = records[shard * n:(shard + 1) * n]
        features, entries, failed = extract_shard(model, shard_records, dataset.root, shard, options, device)
        digest = write_shard(cache_dir / shard_name(shard), features)  # the shard first, then the index
        index.shards.append({"file": shard_name(shard), "clips": len(entries), "sha256": digest, "skipped": failed})
        index.clips.extend(entries)
        atomic_write(cache_dir / INDEX_FILE, lambda handle: handle.write(index.to_json().encode()))
        clips_written += len(entries)
        skipped += len(failed)
        bar.update(len(shard_records))
    bar.close()
    seconds = time.monotonic() - started
    return {"shards_written": last - first, "shards_done": len(index.shards), "total_shards": index.total_shards,
            "clips_written": clips_written, "skipped_videos": skipped, "skipped_total": len(index.skipped()),
            "seconds": round(seconds, 2), "clips_per_second": round(clips_written / max(seconds, 1e-9), 2)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet features extract", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset directory (classes.txt + annotations.jsonl)")
    parser.add_argument("--out", required=True, help="cache directory (created; re-run the command to resume)")
    parser.add_argument("--checkpoint", help="take the trunk and clip geometry from this stanet checkpoint")
    add_run_config_arguments(parser, default_preset=DEFAULT_PRESET)  # or a run configuration, as for `stanet train`
    parser.add_argument("--split", dest="splits", action="append", choices=SPLITS,
                        help="split to extract, repeatable (default: train and val)")
    parser.add_argument("--clips-per-shard", type=int, default=ExtractOptions.clips_per_shard)
    parser.add_argument("--dtype", choices=DTYPES, default=ExtractOptions.dtype)
    parser.add_argument("--batch-size", type=int, default=ExtractOptions.batch_size, help="clips per forward pass")
    parser.add_argument("--num-workers", type=int, default=ExtractOptions.num_workers, help="decoding processes")
    parser.add_argument("--device", default=ExtractOptions.device, help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--max-shards", type=int, default=0, help="stop after this many new shards (0 = all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        options = ExtractOptions(splits=tuple(args.splits or ExtractOptions.splits),
                                 clips_per_shard=args.clips_per_shard, dtype=args.dtype, batch_size=args.batch_size,
                                 num_workers=args.num_workers, device=args.device, max_shards=args.max_shards)
        if args.checkpoint:
            if run_config_given(args):
                raise FeatureCacheError("--checkpoint takes the trunk and clip geometry from the checkpoint: leave "
                                        "out --preset/--config/--set")
            model, source = model_from_checkpoint(args.checkpoint)
        else:
            run_config = run_config_from_arguments(args)
            model, source = model_from_run_config(run_config, len(load_dataset(args.data).class_names))
        summary = extract_features(args.data, args.out, model, options, backbone_source=source,
                                   progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished shards in {args.out} are kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    except (FeatureCacheError, DatasetFormatError, CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f"stanet features extract: error: {exc}", file=sys.stderr)
        return 2
    state = "complete" if summary["shards_done"] == summary["total_shards"] else "incomplete (run again to resume)"
    print(f"{summary['clips_written']} clips in {summary['shards_written']} new shard(s) "
          f"({summary['clips_per_second']:.1f} clips/s); {summary['skipped_videos']} unreadable video(s) skipped; "
          f"cache {args.out} {state}: {summary['shards_done']}/{summary['total_shards']} shards")
    return 0


if __name__ == "__main__":
    sys.exit(main())
