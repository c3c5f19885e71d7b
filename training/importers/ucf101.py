"""UCF101 from its official split lists (ucfTrainTestlist/).

- `classInd.txt`: "1 ApplyEyeMakeup" lines; the line order (1..101) is the label order.
- `trainlist0N.txt`: "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" (video path relative to the video
  root, 1-based class index); `testlist0N.txt`: the path only.
- Videos under `SRC/<class>/`.

The group of a clip is its gNN (the 25 groups of a class are different actors and scenes; the official
splits never cut a group), so the carved val split takes whole groups too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from stanet.dataset_format import DatasetFormatError
from training.importers.source import SourceClip, SourceDataset, VideoProber, find_one_file, text_lines, video_path

CLASS_INDEX_FILE = "classInd.txt"
_GROUP = re.compile(r"_g(\d+)_c\d+$")


def split_list_names(split: int) -> dict[str, str]:
    """Source split -> list file name, e.g. {"train": "trainlist01.txt", "test": "testlist01.txt"}."""
    return {"train": f"trainlist{split:02d}.txt", "test": f"testlist{split:02d}.txt"}


def parse_class_index(path: Path) -> tuple[str, ...]:
    """Class names from classInd.txt, checking the indices run 1, 2, 3, ... in line order."""
    names: list[str] = []
    for line, fields in text_lines(path):
        if len(fields) != 2 or not fields[0].isdigit():
            raise DatasetFormatError(path, f"found {' '.join(fields)!r}, expected '<index> <class name>'", line=line)
        if int(fields[0]) != len(names) + 1:
            raise DatasetFormatError(path, f"found index {fields[0]}, expected {len(names) + 1} (indices count up "
                                     f"from 1 in line order)", line=line)
        if fields[1] in names:
            raise DatasetFormatError(path, f"class {fields[1]!r} is listed twice", line=line)
        names.append(fields[1])
    if not names:
        raise DatasetFormatError(path, "found no classes, expected '<index> <class name>' lines")
    return tuple(names)


def group_of(video_name: str) -> str:
    """'v_ApplyEyeMakeup_g08_c01.avi' -> 'g08'; a name without a gNN is its own group."""
    match = _GROUP.search(Path(video_name).stem)
    return f"g{int(match.group(1)):02d}" if match else Path(video_name).stem


def read(source: Path, annotations: Sequence[Path], split: int, prober: VideoProber) -> SourceDataset:
    """Read classInd.txt and split `split`'s train/test lists (found under `annotations`)."""
    class_file = find_one_file(annotations, CLASS_INDEX_FILE, "UCF101 class index (ucfTrainTestlist/)")
    class_names = parse_class_index(class_file)
    clips: list[SourceClip] = []
    for source_split, name in split_list_names(split).items():
        list_file = class_file.parent / name
        if not list_file.is_file():
            raise DatasetFormatError(list_file, f"missing split file: split {split} needs {name} beside "
                                     f"{CLASS_INDEX_FILE}")
        clips += _read_list(list_file, source_split, class_names, source, prober)
    return SourceDataset(class_names=class_names, clips=tuple(clips))


def _read_list(path: Path, split: str, class_names: tuple[str, ...], source: Path,
               prober: VideoProber) -> list[SourceClip]:
    expected = "'<class>/<video> <class index>'" if split == "train" else "'<class>/<video>'"
    clips = []
    first_line: dict[str, int] = {}
    for line, fields in text_lines(path):
        if len(fields) not in (1, 2) or (split == "train" and len(fields) != 2):
            raise DatasetFormatError(path, f"found {' '.join(fields)!r}, expected {expected}", line=line)
        video = video_path(source, fields[0], path, line)
        if len(video.parts) < 2:
            raise DatasetFormatError(path, f"found {fields[0]!r}, expected {expected} (the class folder first)",
                                     line=line)
        label = video.parts[0]
        if label not in class_names:
            raise DatasetFormatError(path, f"class {label!r} is not in {CLASS_INDEX_FILE} "
                                     f"({len(class_names)} classes)", line=line)
        if len(fields) == 2:
            index = class_names.index(label) + 1
            if fields[1] != str(index):
                raise DatasetFormatError(path, f"found class index {fields[1]!r} for {label!r}, expected {index} "
                                         f"as in {CLASS_INDEX_FILE}", line=line)
        if str(video) in first_line:
            raise DatasetFormatError(path, f"{fields[0]!r} is listed twice (first on line "
                                     f"{first_line[str(video)]})", line=line)
        first_line[str(video)] = line
        if prober.info(video) is not None:
            clips.append(SourceClip(video=video, label=label, split=split, group=f"{label}/{group_of(video.name)}"))
    return clips
