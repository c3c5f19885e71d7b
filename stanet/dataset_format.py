"""The annotated dataset format that every stage reads (numpy/stdlib only, no torch).

A dataset is a directory holding two files:

- `classes.txt`: one class name per line, in label-index order; blank lines at the end are ignored.
- `annotations.jsonl`: one JSON object per line, one line per clip::

      {"video": "videos/train/00000_hop.mp4",   # path relative to the directory
       "label": "hop",                          # a name from classes.txt
       "split": "train",                        # one of SPLITS
       "interval": [12, 27],                    # optional: first and last action frame, inclusive, 0-based
       "boxes": {"0": [3, 4, 14, 15], ...}}     # optional: frame index -> [x1, y1, x2, y2] in pixels of the
                                                #   original video, x2/y2 exclusive (continuous coordinates)

Loading validates everything except whether the video files exist and decode: the loader reports
unreadable videos and skips them later.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from stanet.atomic import atomic_path
from stanet.constants import ANNOTATIONS_FILE, CLASSES_FILE, SPLITS

REQUIRED_FIELDS = ("video", "label", "split")
OPTIONAL_FIELDS = ("interval", "boxes")
_FRAME_KEY = re.compile(r"[0-9]+")
_MAX_LISTED_CLASSES = 10

# Builds the error for the line being parsed: (problem, field) -> DatasetFormatError.
_ErrorFactory = Callable[..., "DatasetFormatError"]


class DatasetFormatError(ValueError):
    """A dataset directory or one of its files breaks the format.

    The message names the file, the line (when there is one), the field (when there is one), what was
    found and what was expected, e.g. ``data/annotations.jsonl, line 3: field 'split': found 'dev',
    expected one of ('train', 'val', 'test')``.
    """

    def __init__(self, path: str | Path, problem: str, *, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path if line is None else f"{self.path}, line {line}"
        what = problem if field is None else f"field {field!r}: {problem}"
        super().__init__(f"{where}: {what}")


@dataclass(frozen=True)
class ClipRecord:
    """One annotated clip.

    Attributes:
        video: the video file (dataset root / relative path); not checked to exist.
        label: class name.
        label_index: index of `label` in the dataset's class names.
        split: one of SPLITS.
        interval: (first, last) action frames, inclusive, 0-based, or None when not annotated.
        boxes: frame index -> (x1, y1, x2, y2) actor box in pixels of the original video, or None.
        line: 1-based line of the record in annotations.jsonl.
    """

    video: Path
    label: str
    label_index: int
    split: str
    interval: tuple[int, int] | None
    boxes: dict[int, tuple[float, float, float, float]] | None
    line: int


@dataclass(frozen=True)
class AnnotatedDataset:
    """A loaded dataset: class names in label-index order and every clip record in file order."""

    root: Path
    class_names: tuple[str, ...]
    records: tuple[ClipRecord, ...]

    def split(self, name: str) -> list[ClipRecord]:
        """The records of one split, in file order (possibly empty)."""
        if name not in SPLITS:
            raise DatasetFormatError(
                self.root / ANNOTATIONS_FILE, f"unknown split {name!r}, expected one of {SPLITS}", field="split"
            )
        return [record for record in self.records if record.split == name]


def load_dataset(root: str | Path) -> AnnotatedDataset:
    """Read and validate `classes.txt` and `annotations.jsonl` under `root`.

    Raises:
        DatasetFormatError: the directory or a file is missing, or any line breaks the format.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(root, "no such dataset directory")
    root = root.resolve()
    classes_path = root / CLASSES_FILE
    annotations_path = root / ANNOTATIONS_FILE
    for path in (classes_path, annotations_path):
        if not path.is_file():
            raise DatasetFormatError(
                path, f"missing file: a dataset directory needs both {CLASSES_FILE} and {ANNOTATIONS_FILE}"
            )

    class_names = _parse_class_lines(classes_path, classes_path.read_text(encoding="utf-8").splitlines())
    class_index = {name: i for i, name in enumerate(class_names)}
    records = []
    with annotations_path.open(encoding="utf-8") as lines:
        for line_number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                values = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
            except _DuplicateKey as exc:
                raise DatasetFormatError(annotations_path, f"key {exc.key!r} appears twice", line=line_number) from None
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(
                    annotations_path, f"not valid JSON ({exc.msg} at column {exc.colno})", line=line_number
                ) from None
            records.append(_parse_record(values, root, class_index, annotations_path, line_number))
    return AnnotatedDataset(root=root, class_names=class_names, records=tuple(records))


def write_dataset(root: str | Path, class_names: Sequence[str], records: Iterable[dict[str, Any]]) -> None:
    """Validate, then write `classes.txt` and `annotations.jsonl` under `root` (created if missing).

    Each file is written to a temporary file beside it and moved into place with `os.replace`, so a reader
    never sees a half-written file. Records are dicts in the JSON layout above; `interval` and box values
    may be tuples and `boxes` keys may be ints.

    Raises:
        DatasetFormatError: a class name or a record breaks the format (nothing is written then).
    """
    root = Path(root)
    classes_path = root / CLASSES_FILE
    annotations_path = root / ANNOTATIONS_FILE
    names = tuple(class_names)
    for line_number, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name.strip() or name != name.strip() or "\n" in name:
            raise DatasetFormatError(
                classes_path, f"found {name!r}, expected a non-empty name without surrounding whitespace or newlines",
                line=line_number,
            )
    _parse_class_lines(classes_path, names)  # duplicates, empty list
    class_index = {name: i for i, name in enumerate(names)}

    lines = []
    for line_number, values in enumerate(records, start=1):
        record = _parse_record(values, root, class_index, annotations_path, line_number)
        lines.append(json.dumps(_record_to_json(values, record)))

    root.mkdir(parents=True, exist_ok=True)
    _write_atomically(classes_path, "".join(f"{name}\n" for name in names))
    _write_atomically(annotations_path, "".join(f"{line}\n" for line in lines))


# ---------------------------------------------------------------------------------------------------------
# Parsing helpers.


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            raise _DuplicateKey(key)
        values[key] = value
    return values


def _parse_class_lines(path: Path, lines: Sequence[str]) -> tuple[str, ...]:
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DatasetFormatError(path, "found no class names, expected one class name per line")
    first_line: dict[str, int] = {}
    for line_number, name in enumerate(names, start=1):
        if not name:
            raise DatasetFormatError(path, "found a blank line, expected a class name", line=line_number)
        if name in first_line:
            raise DatasetFormatError(
                path, f"class {name!r} is listed twice (first on line {first_line[name]})", line=line_number
            )
        first_line[name] = line_number
    return tuple(names)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _abbreviated(names: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:_MAX_LISTED_CLASSES])
    more = len(names) - _MAX_LISTED_CLASSES
    return shown + (f", ... ({more} more)" if more > 0 else "")


def _parse_record(
    values: Any, root: Path, class_index: dict[str, int], path: Path, line: int
) -> ClipRecord:
    def error(problem: str, field: str | None = None) -> DatasetFormatError:
        return DatasetFormatError(path, problem, line=line, field=field)

    if not isinstance(values, dict):
        raise error(f"found a JSON {_type_name(values)}, expected an object")
    for field in REQUIRED_FIELDS:
        if field not in values:
            raise error(f"missing, expected a {field!r} field on every line", field)
    unknown = sorted(set(values) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise error(f"unknown field(s) {unknown}, expected only {REQUIRED_FIELDS + OPTIONAL_FIELDS}", unknown[0])
    for field in REQUIRED_FIELDS:
        if not isinstance(values[field], str) or not values[field]:
            raise error(f"found {values[field]!r} ({_type_name(values[field])}), expected a non-empty string", field)

    relative = _parse_video_path(values["video"], error)
    label = values["label"]
    if label not in class_index:
        raise error(
            f"found {label!r}, expected one of the {len(class_index)} classes in {CLASSES_FILE}: "
            f"{_abbreviated(list(class_index))}",
            "label",
        )
    split = values["split"]
    if split not in SPLITS:
        raise error(f"found {split!r}, expected one of {SPLITS}", "split")
    interval = _parse_interval(values.get("interval"), error)
    boxes = _parse_boxes(values.get("boxes"), error)
    return ClipRecord(
        video=root / relative,
        label=label,
        label_index=class_index[label],
        split=split,
        interval=interval,
        boxes=boxes,
        line=line,
    )


def _parse_video_path(video: str, error: _ErrorFactory) -> PurePosixPath:
    if PurePosixPath(video).is_absolute() or PureWindowsPath(video).anchor:
        raise error(f"found the absolute path {video!r}, expected a path relative to the dataset directory", "video")
    relative = PurePosixPath(video.replace("\\", "/"))
    if ".." in relative.parts:
        raise error(f"found {video!r}, which escapes the dataset directory with '..'", "video")
    return relative


def _parse_interval(interval: Any, error: _ErrorFactory) -> tuple[int, int] | None:
    if interval is None:
        return None
    if not isinstance(interval, (list, tuple)) or len(interval) != 2 or not all(_is_int(v) for v in interval):
        raise error(f"found {interval!r}, expected [first, last]: two integer frame indices", "interval")
    first, last = interval
    if not 0 <= first <= last:
        raise error(f"found {list(interval)!r}, expected 0 <= first <= last", "interval")
    return (first, last)


def _parse_boxes(boxes: Any, error: _ErrorFactory) -> dict[int, tuple[float, float, float, float]] | None:
    if boxes is None:
        return None
    if not isinstance(boxes, dict):
        raise error(f"found a {_type_name(boxes)}, expected an object mapping frame index to [x1, y1, x2, y2]", "boxes")
    parsed: dict[int, tuple[float, float, float, float]] = {}
    for key, box in boxes.items():
        if _is_int(key) and key >= 0:
            frame = key
        elif isinstance(key, str) and _FRAME_KEY.fullmatch(key):
            frame = int(key)
        else:
            raise error(f"found the frame key {key!r}, expected a non-negative integer frame index", "boxes")
        if frame in parsed:
            raise error(f"frame {frame} has two boxes", "boxes")
        if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(v) for v in box):
            raise error(f"frame {key}: found {box!r}, expected [x1, y1, x2, y2]: four finite numbers", "boxes")
        x1, y1, x2, y2 = (float(v) for v in box)
        if min(x1, y1) < 0 or not (x1 < x2 and y1 < y2):
            raise error(f"frame {key}: found {list(box)!r}, expected 0 <= x1 < x2 and 0 <= y1 < y2", "boxes")
        parsed[frame] = (x1, y1, x2, y2)
    return parsed


def _record_to_json(values: dict[str, Any], record: ClipRecord) -> dict[str, Any]:
    """The canonical JSON object of a validated record (field order fixed, frame keys as sorted strings)."""
    out: dict[str, Any] = {"video": values["video"], "label": record.label, "split": record.split}
    if record.interval is not None:
        out["interval"] = list(record.interval)
    if record.boxes is not None:
        # Keep the caller's numbers (ints stay ints), only normalize containers and key order.
        raw = {int(key): box for key, box in values["boxes"].items()}
        out["boxes"] = {str(frame): list(raw[frame]) for frame in sorted(raw)}
    return out


def _write_atomically(path: Path, text: str) -> None:
    with atomic_path(path, mode=0o666) as temporary:  # open()'s permissions, readable by other users
        temporary.write_text(text, encoding="utf-8")
