"""HMDB51 from its official split files (testTrainMulti_7030_splits/).

- `<class>_test_split{1,2,3}.txt`: "<video name> <flag>" lines, flag 1 = train, 2 = test, 0 = not used in
  this split. The class names come from the file names, sorted (there is no class index file).
- Videos under `SRC/<class>/<video name>`.

The group of a clip is its source movie and action: the name without its six trailing metadata fields
(body part, camera motion, people, viewpoint, quality, clip number), e.g.
'April_09_brush_hair_u_nm_np1_ba_goo_0.avi' -> 'April_09_brush_hair'. Clips cut from one movie scene then
never straddle train and the carved val split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from stanet.dataset_format import DatasetFormatError
from training.importers.source import SourceClip, SourceDataset, VideoProber, find_files, text_lines

FLAG_SPLITS = {"1": "train", "2": "test"}  # "0": not used in this split
_SPLIT_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<split>[0-9]+)\.txt$")
_METADATA_FIELDS = 6


def split_file_name(label: str, split: int) -> str:
    return f"{label}_test_split{split}.txt"


def _is_file_name(name: str) -> bool:
    return "/" not in name and "\\" not in name and name not in (".", "..")


def group_of(video_name: str) -> str:
    parts = Path(video_name).stem.rsplit("_", _METADATA_FIELDS)
    return parts[0] if len(parts) == _METADATA_FIELDS + 1 else Path(video_name).stem


def read(source: Path, annotations: Sequence[Path], split: int, prober: VideoProber) -> SourceDataset:
    """Read every class's split file for split `split` (found under `annotations`)."""
    by_split: dict[int, dict[str, Path]] = {}
    for path in find_files(annotations, "*_test_split*.txt"):
        match = _SPLIT_FILE.match(path.name)
        if match:
            by_split.setdefault(int(match["split"]), {})[match["label"]] = path
    files = by_split.get(split, {})
    where = ", ".join(str(a) for a in annotations)
    if not files:
        raise DatasetFormatError(where, f"missing split files: no '<class>_test_split{split}.txt' in or under it "
                                 f"(found splits {sorted(by_split) or 'none'})")
    for other, other_files in by_split.items():
        missing = sorted(set(other_files) - set(files))
        if missing:
            raise DatasetFormatError(other_files[missing[0]], f"class {missing[0]!r} has split {other} but no "
                                     f"{split_file_name(missing[0], split)}: missing split file")
    class_names = tuple(sorted(files))
    clips: list[SourceClip] = []
    for label in class_names:
        clips += _read_split_file(files[label], label, prober)
    return SourceDataset(class_names=class_names, clips=tuple(clips))


def _read_split_file(path: Path, label: str, prober: VideoProber) -> list[SourceClip]:
    clips = []
    first_line: dict[str, int] = {}
    for line, fields in text_lines(path):
        if len(fields) != 2 or fields[1] not in ("0", *FLAG_SPLITS) or not _is_file_name(fields[0]):
            raise DatasetFormatError(path, f"found {' '.join(fields)!r}, expected '<video file name> <flag>' with "
                                     f"flag 0 (unused), 1 (train) or 2 (test)", line=line)
        name, flag = fields
        if name in first_line:
            raise DatasetFormatError(path, f"{name!r} is listed twice (first on line {first_line[name]})",
                                     line=line)
        first_line[name] = line
        if flag == "0":
            continue
        video = PurePosixPath(label, name)
        if prober.info(video) is not None:
            clips.append(SourceClip(video=video, label=label, split=FLAG_SPLITS[flag],
                                    group=f"{label}/{group_of(name)}"))
    return clips
