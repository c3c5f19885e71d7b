"""UCF101-24 person boxes from the widely used `UCF101v2-GT.pkl` (or the same content as JSON).

Content (a dict):
- 'labels': the 24 class names, in label order.
- 'gttubes': {video: {label index: [tube, ...]}}, video like 'Basketball/v_Basketball_g01_c01', a tube an
  (n, 5) array of rows (frame, x1, y1, x2, y2), frames 1-based, boxes in pixels.
- 'train_videos', 'test_videos': one list of videos per split (or a single list of videos: split 1 only).
- 'nframes', 'resolution': per-video frame count and (height, width); not needed (the video itself is
  probed), so not read.

Mapping onto the format: **one record per tube** (several actors of a video give several records with the
same video and label), interval = the tube's first and last frame (0-based), boxes = the tube's per-frame
boxes (0-based frame keys, x2/y2 as given: continuous coordinates). The group is the video's UCF101 gNN.
The pickle is loaded with a restricted unpickler (safe_pickle): only numpy arrays and builtin containers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from stanet.dataset_format import DatasetFormatError
from stanet.video import VideoInfo
from training.importers import ucf101
from training.importers.safe_pickle import load_restricted_pickle
from training.importers.source import VIDEO_EXTENSIONS, SourceClip, SourceDataset, VideoProber, find_files

GROUND_TRUTH_NAMES = ("UCF101v2-GT.pkl", "UCF101v2-GT.json")
REQUIRED_KEYS = ("labels", "gttubes", "train_videos", "test_videos")
_TUBE_COLUMNS = 5  # frame, x1, y1, x2, y2


def load_ground_truth(path: Path) -> dict[str, Any]:
    """The ground-truth dict from a .pkl (restricted unpickler) or a .json file, with its keys checked."""
    if path.suffix == ".json":
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetFormatError(path, f"not valid JSON ({exc})") from None
    else:
        content = load_restricted_pickle(path)
    if not isinstance(content, dict):
        raise DatasetFormatError(path, f"found a {type(content).__name__}, expected a dict with keys {REQUIRED_KEYS}")
    for key in REQUIRED_KEYS:
        if key not in content:
            raise DatasetFormatError(path, f"missing, expected the keys {REQUIRED_KEYS}", field=key)
    labels = content["labels"]
    if not isinstance(labels, (list, tuple)) or not labels or not all(isinstance(v, str) for v in labels):
        raise DatasetFormatError(path, "expected a non-empty list of class names", field="labels")
    if not isinstance(content["gttubes"], dict):
        raise DatasetFormatError(path, "expected a dict {video: {label index: [tubes]}}", field="gttubes")
    return content


def split_videos(content: dict[str, Any], key: str, split: int, path: Path) -> list[str]:
    """The videos of `split` (1-based) in content[key]: a list of per-split lists, or one list (split 1)."""
    lists = content[key]
    if isinstance(lists, (list, tuple)) and all(isinstance(v, str) for v in lists):
        lists = [lists]
    if not isinstance(lists, (list, tuple)) or not all(
            isinstance(videos, (list, tuple)) and all(isinstance(v, str) for v in videos) for videos in lists):
        raise DatasetFormatError(path, "expected a list of video names per split", field=key)
    if not 1 <= split <= len(lists):
        raise DatasetFormatError(path, f"has {len(lists)} split(s), expected split {split} to exist", field=key)
    return list(lists[split - 1])


def read(source: Path, annotations: Sequence[Path], split: int, prober: VideoProber) -> SourceDataset:
    """Read the ground truth (the given .pkl/.json file, or one named like GROUND_TRUTH_NAMES under
    `annotations`) and the tubes of split `split`'s train and test videos."""
    path = _find_ground_truth(annotations)
    content = load_ground_truth(path)
    class_names = tuple(content["labels"])
    clips: list[SourceClip] = []
    for split_name, key in (("train", "train_videos"), ("test", "test_videos")):
        for name in split_videos(content, key, split, path):
            tubes = content["gttubes"].get(name)
            if not isinstance(tubes, dict) or not tubes:
                raise DatasetFormatError(path, f"video {name!r} of {key} has no entry {{label index: [tubes]}}",
                                         field="gttubes")
            video = _find_video(source, name)
            info = prober.named(name, video)
            if info is None:
                continue
            for label_index, label_tubes in sorted(tubes.items(), key=lambda item: str(item[0])):
                label = _label(label_index, class_names, path, name)
                if not isinstance(label_tubes, (list, tuple)):
                    raise DatasetFormatError(path, f"gttubes[{name!r}][{label_index!r}]: found a "
                                             f"{type(label_tubes).__name__}, expected a list of tubes")
                for t, tube in enumerate(label_tubes):
                    where = f"gttubes[{name!r}][{label_index!r}][{t}]"
                    interval, boxes = tube_to_annotation(tube, info, path, where)
                    group = f"{label}/{ucf101.group_of(video.name)}"
                    clips.append(SourceClip(video=video, label=label, split=split_name, group=group,
                                            interval=interval, boxes=boxes))
    return SourceDataset(class_names=class_names, clips=tuple(clips))


def tube_to_annotation(tube: Any, info: VideoInfo, path: Path, where: str
                       ) -> tuple[tuple[int, int], dict[int, tuple[float, float, float, float]]]:
    """An (n, 5) tube of 1-based (frame, x1, y1, x2, y2) rows -> (0-based interval, 0-based frame -> box),
    checked against the video's frame count and size."""
    try:
        rows = np.asarray(tube, dtype=np.float64)  # (n, 5)
    except (TypeError, ValueError):
        raise DatasetFormatError(path, f"{where}: expected an (n, 5) array of numbers") from None
    if rows.ndim != 2 or rows.shape[1] != _TUBE_COLUMNS or len(rows) == 0 or not np.isfinite(rows).all():
        raise DatasetFormatError(path, f"{where}: found shape {rows.shape}, expected (n, 5) finite rows of "
                                 f"(frame, x1, y1, x2, y2) with n >= 1")
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for r, (frame, x1, y1, x2, y2) in enumerate(rows):
        at = f"{where} row {r}"
        if frame != int(frame) or not 1 <= frame <= info.num_frames:
            raise DatasetFormatError(path, f"{at}: found frame {frame:g}, expected a 1-based frame number in "
                                     f"1..{info.num_frames} (the video's length)")
        if not (0 <= x1 < x2 <= info.width and 0 <= y1 < y2 <= info.height):
            raise DatasetFormatError(path, f"{at}: found the box {[_number(v) for v in (x1, y1, x2, y2)]}, "
                                     f"expected 0 <= x1 < x2 <= {info.width} and 0 <= y1 < y2 <= {info.height} "
                                     f"(inside the {info.width}x{info.height} frame)")
        index = int(frame) - 1
        if index in boxes:
            raise DatasetFormatError(path, f"{at}: frame {int(frame)} appears twice in the tube")
        boxes[index] = (_number(x1), _number(y1), _number(x2), _number(y2))
    return (min(boxes), max(boxes)), boxes


def _number(value: float) -> float | int:
    """A box coordinate for JSON: whole numbers as ints, others rounded to 1/100 pixel."""
    rounded = round(float(value), 2)
    return int(rounded) if rounded.is_integer() else rounded


def _label(label_index: Any, class_names: tuple[str, ...], path: Path, video: str) -> str:
    text = str(label_index)  # an int (pickle) or a digit string (JSON object keys)
    index = int(text) if text.isdigit() and not isinstance(label_index, bool) else -1
    if not 0 <= index < len(class_names):
        raise DatasetFormatError(path, f"gttubes[{video!r}]: found label index {label_index!r}, expected 0.."
                                 f"{len(class_names) - 1} (an index into labels)")
    return class_names[index]


def _find_ground_truth(annotations: Sequence[Path]) -> Path:
    given = [a for a in annotations if a.is_file()]
    if given:
        return given[0]
    for name in GROUND_TRUTH_NAMES:
        matches = find_files(annotations, name)
        if matches:
            return matches[0]
    raise DatasetFormatError(", ".join(str(a) for a in annotations),
                             f"missing ground truth: no {' or '.join(GROUND_TRUTH_NAMES)} in or under it "
                             f"(or pass the file with --annotations)")


def _find_video(source: Path, name: str) -> PurePosixPath | None:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        return None
    for extension in VIDEO_EXTENSIONS:
        candidate = relative.with_name(relative.name + extension)
        if (source / candidate).is_file():
            return candidate
    return None
