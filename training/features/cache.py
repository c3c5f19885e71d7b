"""The feature cache on disk: one directory per (dataset, backbone, clip geometry)::

    CACHE_DIR/
      index.json        {"header": ..., "total_shards": K, "shards": [...], "clips": [...]}, rewritten
                        atomically after every finished shard: a shard exists for readers once it is listed
      backbone.pt       the trunk's state dict the features came from (a cache-trained checkpoint gets it)
      shard-00000.npy   (n, T, C, h, w) float16 or float32, n <= clips_per_shard, plain numpy .npy
      shard-00001.npy   ...

Every file is written to a hidden temp file in the same directory, fsynced and renamed into place, so a
crash never leaves a half-written shard or index under its real name. Shard k holds the readable clips of
records [k * clips_per_shard, (k + 1) * clips_per_shard) of the chosen splits, in annotations.jsonl order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from stanet.atomic import atomic_path
from stanet.config import ModelConfig
from stanet.integrity import file_sha256

INDEX_FILE = "index.json"
BACKBONE_FILE = "backbone.pt"
CACHE_FORMAT_VERSION = 1
DTYPES = ("float16", "float32")
SAMPLING = "centre"  # stanet.sampling's evaluation sampling: the centre frame of each of T segments


class FeatureCacheError(ValueError):
    """A feature cache that cannot be used: missing, corrupt, or made for another configuration."""


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.npy"


def feature_fields(config: ModelConfig) -> dict[str, Any]:
    """The ModelConfig fields that determine the trunk's features (the rest only shapes the head)."""
    fields = {"backbone": config.backbone, "clip_length": config.clip_length, "height": config.height,
              "width": config.width}
    if config.backbone == "compact":
        fields["backbone_width"] = config.backbone_width  # ResNet trunks ignore it
    if config.trunk_input != "frame":  # only then, so caches of frame trunks keep their identity
        fields["trunk_input"] = config.trunk_input
        fields["motion_radius"] = config.motion_radius
    return fields


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """A hash of a state dict's names, dtypes, shapes and values (BatchNorm statistics included): the identity
    of the weights that made the features, whatever file they came from."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheHeader:
    """What the features depend on; a resumed extraction and a training run must agree with it."""

    model: dict[str, Any]  # feature_fields(ModelConfig)
    backbone_sha256: str
    dtype: str
    feature_shape: tuple[int, int, int, int]  # (T, C, h, w) of one clip
    clips_per_shard: int
    splits: tuple[str, ...]
    dataset_sha256: str  # of classes.txt + annotations.jsonl: another dataset makes other shards
    class_names: tuple[str, ...]
    sampling: str = SAMPLING
    format_version: int = CACHE_FORMAT_VERSION
    backbone_source: str = ""  # where the weights came from (informative, never compared)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(feature_shape=list(self.feature_shape), splits=list(self.splits),
                      class_names=list(self.class_names))
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "CacheHeader":
        return cls(**{**values, "feature_shape": tuple(values["feature_shape"]), "splits": tuple(values["splits"]),
                      "class_names": tuple(values["class_names"])})

    def differences(self, other: "CacheHeader") -> list[str]:
        """'field: self X, other Y' for every field that differs (model fields one by one)."""
        mine, theirs = self.to_dict(), other.to_dict()
        out = []
        for key in mine:
            if key == "backbone_source":
                continue
            if key == "model":
                for name in sorted(set(mine["model"]) | set(theirs["model"])):
                    a, b = mine["model"].get(name), theirs["model"].get(name)
                    if a != b:
                        out.append(f"model.{name}: {a!r} vs {b!r}")
            elif mine[key] != theirs[key]:
                a, b = (f"{v[:12]}..." if key.endswith("sha256") else repr(v) for v in (mine[key], theirs[key]))
                out.append(f"{key}: {a} vs {b}")
        return out


@dataclass(frozen=True)
class ClipEntry:
    """One cached clip: where its features are and the evaluation targets of its sampled frames."""

    video: str  # relative to the dataset directory
    line: int  # of annotations.jsonl
    label: str
    split: str
    shard: int
    offset: int  # row in the shard
    frame_indices: list[int]  # (T,) the frames sampled from the video
    inside: list[bool]  # (T,) sampled frame inside the annotated interval
    boxes: list[list[float] | None]  # (T,) [x1, y1, x2, y2] at height x width, None where no box


@dataclass
class CacheIndex:
    header: CacheHeader
    total_shards: int
    shards: list[dict[str, Any]] = field(default_factory=list)  # {"file", "clips", "sha256", "skipped"}
    clips: list[ClipEntry] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.shards) == self.total_shards

    def skipped(self) -> list[dict[str, Any]]:
        return [item for shard in self.shards for item in shard["skipped"]]

    def to_json(self) -> str:
        """The header indented, then one line per shard and per clip (a UCF101 index stays a few MB)."""
        def rows(items: list[dict[str, Any]]) -> str:
            return "[" + ",".join(f"\n  {json.dumps(item)}" for item in items) + ("\n ]" if items else "]")

        header = json.dumps(self.header.to_dict(), indent=2).replace("\n", "\n ")
        return (f'{{\n "header": {header},\n "total_shards": {self.total_shards},\n "shards": {rows(self.shards)},'
                f'\n "clips": {rows([asdict(c) for c in self.clips])}\n}}\n')


def read_index(cache_dir: str | Path) -> CacheIndex:
    """Parse CACHE_DIR/index.json; every problem names the file and what was expected."""
    cache_dir = Path(cache_dir)
    path = cache_dir / INDEX_FILE
    if not cache_dir.is_dir():
        raise FeatureCacheError(f"feature cache {cache_dir} does not exist (make it with `stanet features extract`)")
    if not path.is_file():
        raise FeatureCacheError(f"{path} is missing: {cache_dir} is not a feature cache, or its extraction never "
                                f"finished a shard")
    try:
        values = json.loads(path.read_text())
        if values["header"].get("format_version") != CACHE_FORMAT_VERSION:
            raise FeatureCacheError(f"{path}: format_version {values['header'].get('format_version')!r}, this "
                                    f"stanet reads {CACHE_FORMAT_VERSION}; extract the features again")
        return CacheIndex(header=CacheHeader.from_dict(values["header"]), total_shards=int(values["total_shards"]),
                          shards=list(values["shards"]), clips=[ClipEntry(**c) for c in values["clips"]])
    except json.JSONDecodeError as exc:
        raise FeatureCacheError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise FeatureCacheError(f"{path}: not a feature cache index (expected keys header, total_shards, shards, "
                                f"clips with the fields of ClipEntry; {type(exc).__name__}: {exc})") from None


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """`write(handle)` into a hidden temp file beside `path`, fsync, rename over `path`, fsync the directory:
    readers see the old file or the whole new one, never a part."""
    with atomic_path(path, durable=True) as temporary:
        with open(temporary, "wb") as handle:
            write(handle)
        os.chmod(temporary, 0o644)  # 0600 would hide the cache from a training container


def remove_temp_files(cache_dir: Path) -> int:
    """Delete temp files a crashed extraction left behind; returns how many."""
    stale = [path for pattern in (f".{INDEX_FILE}.*.tmp", f".{BACKBONE_FILE}.*.tmp", ".shard-*.npy.*.tmp")
             for path in cache_dir.glob(pattern)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def write_shard(path: Path, features: np.ndarray) -> str:
    """Write one shard atomically; returns its SHA-256."""
    atomic_write(path, lambda handle: np.save(handle, features, allow_pickle=False))
    return file_sha256(path)


def open_shard(path: Path, count: int, header: CacheHeader) -> np.ndarray:
    """Memory-map a shard after checking it holds (count, T, C, h, w) values of the header's dtype in full."""
    expected = f"an .npy array of shape {(count, *header.feature_shape)} {header.dtype}"
    if not path.is_file():
        raise FeatureCacheError(f"shard {path} is listed in {INDEX_FILE} but missing; expected {expected}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FeatureCacheError(f"shard {path} is truncated or corrupt ({exc}); expected {expected} "
                                f"(extract again into a new directory)") from None
    size = path.stat().st_size
    if array.shape != (count, *header.feature_shape) or array.dtype != np.dtype(header.dtype):
        raise FeatureCacheError(f"shard {path} holds {array.shape} {array.dtype}; expected {expected}")
    if isinstance(array, np.memmap) and size != array.offset + array.nbytes:
        raise FeatureCacheError(f"shard {path} has {size} bytes, expected {array.offset + array.nbytes} for "
                                f"{expected}")
    return array


def read_backbone_state(cache_dir: Path, header: CacheHeader) -> dict[str, torch.Tensor]:
    """The trunk weights stored with the cache, checked against the header's hash."""
    path = cache_dir / BACKBONE_FILE
    if not path.is_file():
        raise FeatureCacheError(f"{path} is missing: a feature cache stores the trunk weights its features "
                                f"came from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated or foreign file
        raise FeatureCacheError(f"{path} is not a readable state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state_sha256(state) != header.backbone_sha256:
        raise FeatureCacheError(f"{path} does not hold the weights {INDEX_FILE} names (sha256 "
                                f"{header.backbone_sha256[:12]}...): the file was changed after extraction")
    return state
