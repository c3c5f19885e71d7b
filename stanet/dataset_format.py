"""The annotated dataset format that every stage reads (numpy/stdlib only, no torch).

A dataset is a directory holding two files:

- `classes.txt`: one class name per line, in label-index order; blank lines at the end are ignored.
- `annotations.jsonl`: one JSON object per line, one line per clip (trimmed) or per video (untrimmed)::

      {"video": "videos/train/00000_hop.mp4",   # path relative to the directory
       "label": "hop",                          # a name from classes.txt
       "split": "train",                        # one of SPLITS
       "interval": [12, 27],                    # optional: first and last action frame, inclusive, 0-based
       "boxes": {"0": [3, 4, 14, 15], ...}}     # optional: frame index -> [x1, y1, x2, y2] in pixels of the
                                                #   original video, x2/y2 exclusive (continuous coordinates)

  An untrimmed record (a long video holding several actions and idle time) has `segments` instead of
  `label` and `interval`::

      {"video": "videos/test/00003.mp4", "split": "test",
       "segments": [{"label": "hop", "interval": [40, 95]},     # one action instance each, frames inclusive
                    {"label": "walk", "interval": [180, 260]}],  # same-class segments may not overlap
       "boxes": {...}}                                          # optional, as above

Loading validates everything except whether the video files exist and decode and whether intervals end
inside the video (`check_frame_count` does that once the frame count is known): the loader reports
unreadable videos and skips them later. `record_segments` gives the actions of either kind of record.
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

REQUIRED_FIELDS = ("video", "label", "split")  # of a trimmed record; an untrimmed one has "segments" for "label"
OPTIONAL_FIELDS = ("interval", "boxes")
SEGMENTS_FIELD = "segments"
SEGMENT_FIELDS = ("label", "interval")
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
class Segment:
    """One action instance of an untrimmed record: class, and first and last frame (inclusive, 0-based)."""

    label: str
    label_index: int
    first: int
    last: int


@dataclass(frozen=True)
class ClipRecord:
    """One annotated clip (trimmed: one label) or untrimmed video (`segments`, label None).

    Attributes:
        video: the video file (dataset root / relative path); not checked to exist.
        label: class name; None for an untrimmed record.
        label_index: index of `label` in the dataset's class names; None for an untrimmed record.
        split: one of SPLITS.
        interval: (first, last) action frames, inclusive, 0-based, or None when not annotated (always None
            for an untrimmed record).
        boxes: frame index -> (x1, y1, x2, y2) actor box in pixels of the original video, or None.
        line: 1-based line of the record in annotations.jsonl.
        segments: the action instances of an untrimmed record, sorted by first frame; () for a trimmed one.
    """

    video: Path
    label: str | None
    label_index: int | None
    split: str
    interval: tuple[int, int] | None
    boxes: dict[int, tuple[float, float, float, float]] | None
    line: int
    segments: tuple[Segment, ...] = ()

    @property
    def untrimmed(self) -> bool:
        """True for a record with `segments` (a long video) instead of one label."""
        return self.label is None


def record_segments(record: ClipRecord, num_frames: int | None = None) -> list[tuple[str, int, int]]:
    """The actions of a record as (label, first, last) frames, inclusive, sorted by first frame.

    An untrimmed record gives its segments; a trimmed one with an `interval` gives that one segment; a
    trimmed one without gives the whole video (0, num_frames - 1), which needs `num_frames`.

    Raises:
        ValueError: a trimmed record without an interval and no `num_frames`.
    """
    if record.untrimmed:
        return [(s.label, s.first, s.last) for s in record.segments]
    if record.interval is not None:
        return [(record.label, *record.interval)]
    if num_frames is None or num_frames < 1:
        raise ValueError(f"{record.video} (line {record.line}) has no interval: its segment is the whole video, "
                         f"which needs the video's frame count, got {num_frames!r}")
    return [(record.label, 0, num_frames - 1)]


def check_frame_count(record: ClipRecord, num_frames: int, annotations: str | Path) -> None:
    """Refuse a record whose interval, a segment or a box lies past the last frame of its video.

    Args:
        record: a loaded record.
        num_frames: the frames its video holds (decoded or probed).
        annotations: the annotations file the record came from, for the message.

    Raises:
        DatasetFormatError: naming the file, the record's line and the field.
    """
    def error(problem: str, field: str) -> DatasetFormatError:
        return DatasetFormatError(annotations, f"{problem}, expected frames 0..{num_frames - 1}: the video "
                                  f"{record.video.name} holds {num_frames} frames", line=record.line, field=field)

    if record.interval is not None and record.interval[1] >= num_frames:
        raise error(f"found {list(record.interval)!r}, past the video's end", "interval")
    for i, segment in enumerate(record.segments):
        if segment.last >= num_frames:
            raise error(f"found [{segment.first}, {segment.last}] ({segment.label!r}), past the video's end",
                        f"{SEGMENTS_FIELD}[{i}].interval")
    if record.boxes:
        last_box = max(record.boxes)
        if last_box >= num_frames:
            raise error(f"found a box on frame {last_box}, past the video's end", "boxes")


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
    if SEGMENTS_FIELD in values:
        return _parse_untrimmed(values, root, class_index, error, line)
    for field in REQUIRED_FIELDS:
        if field not in values:
            raise error(f"missing, expected a {field!r} field on every line (or {SEGMENTS_FIELD!r} instead of "
                        f"'label' and 'interval' for an untrimmed video)", field)
    unknown = sorted(set(values) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise error(f"unknown field(s) {unknown}, expected only {REQUIRED_FIELDS + OPTIONAL_FIELDS}", unknown[0])
    for field in REQUIRED_FIELDS:
        if not isinstance(values[field], str) or not values[field]:
            raise error(f"found {values[field]!r} ({_type_name(values[field])}), expected a non-empty string", field)

    relative = _parse_video_path(values["video"], error)
    label = _parse_label(values["label"], class_index, error, "label")
    split = _parse_split(values["split"], error)
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


def _parse_untrimmed(values: dict[str, Any], root: Path, class_index: dict[str, int], error: _ErrorFactory,
                     line: int) -> ClipRecord:
    for field in ("label", "interval"):
        if field in values:
            raise error(f"found both {field!r} and {SEGMENTS_FIELD!r}, expected {SEGMENTS_FIELD!r} alone for an "
                        f"untrimmed video (each segment has its own label and interval) or {field!r} without "
                        f"{SEGMENTS_FIELD!r} for a trimmed clip", field)
    allowed = ("video", "split", SEGMENTS_FIELD, "boxes")
    for field in ("video", "split"):
        if field not in values:
            raise error(f"missing, expected a {field!r} field on every line", field)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise error(f"unknown field(s) {unknown}, expected only {allowed} in an untrimmed record", unknown[0])
    for field in ("video", "split"):
        if not isinstance(values[field], str) or not values[field]:
            raise error(f"found {values[field]!r} ({_type_name(values[field])}), expected a non-empty string", field)
    relative = _parse_video_path(values["video"], error)
    split = _parse_split(values["split"], error)
    raw = values[SEGMENTS_FIELD]
    if not isinstance(raw, (list, tuple)) or not raw:
        raise error(f"found {raw!r}, expected a non-empty list of {{'label': ..., 'interval': [first, last]}}",
                    SEGMENTS_FIELD)
    segments = []
    for i, item in enumerate(raw):
        where = f"{SEGMENTS_FIELD}[{i}]"
        if not isinstance(item, dict):
            raise error(f"found a JSON {_type_name(item)}, expected an object with {SEGMENT_FIELDS}", where)
        for field in SEGMENT_FIELDS:
            if field not in item:
                raise error(f"missing, expected every segment to have {SEGMENT_FIELDS}", f"{where}.{field}")
        unknown = sorted(set(item) - set(SEGMENT_FIELDS))
        if unknown:
            raise error(f"unknown field(s) {unknown}, expected only {SEGMENT_FIELDS}", f"{where}.{unknown[0]}")
        if not isinstance(item["label"], str) or not item["label"]:
            raise error(f"found {item['label']!r} ({_type_name(item['label'])}), expected a non-empty string",
                        f"{where}.label")
        label = _parse_label(item["label"], class_index, error, f"{where}.label")
        first, last = _parse_interval(item["interval"], error, f"{where}.interval")
        segments.append((first, last, i, Segment(label, class_index[label], first, last)))
    segments.sort(key=lambda entry: (entry[0], entry[1], entry[2]))
    latest: dict[str, tuple[int, int, int]] = {}  # label -> (first, last, position) of the latest-ending one
    for first, last, i, segment in segments:
        previous = latest.get(segment.label)
        if previous is not None and first <= previous[1]:
            raise error(f"[{first}, {last}] overlaps {SEGMENTS_FIELD}[{previous[2]}] [{previous[0]}, {previous[1]}] "
                        f"of the same class {segment.label!r}, expected segments of one class not to overlap "
                        f"(merge them)", f"{SEGMENTS_FIELD}[{i}].interval")
        if previous is None or last > previous[1]:
            latest[segment.label] = (first, last, i)
    boxes = _parse_boxes(values.get("boxes"), error)
    return ClipRecord(video=root / relative, label=None, label_index=None, split=split, interval=None, boxes=boxes,
                      line=line, segments=tuple(entry[3] for entry in segments))


def _parse_label(label: str, class_index: dict[str, int], error: _ErrorFactory, field: str) -> str:
    if label not in class_index:
        raise error(
            f"found {label!r}, expected one of the {len(class_index)} classes in {CLASSES_FILE}: "
            f"{_abbreviated(list(class_index))}",
            field,
        )
    return label


def _parse_split(split: str, error: _ErrorFactory) -> str:
    if split not in SPLITS:
        raise error(f"found {split!r}, expected one of {SPLITS}", "split")
    return split


def _parse_video_path(video: str, error: _ErrorFactory) -> PurePosixPath:
    if PurePosixPath(video).is_absolute() or PureWindowsPath(video).anchor:
        raise error(f"found the absolute path {video!r}, expected a path relative to the dataset directory", "video")
    relative = PurePosixPath(video.replace("\\", "/"))
    if ".." in relative.parts:
        raise error(f"found {video!r}, which escapes the dataset directory with '..'", "video")
    return relative


def _parse_interval(interval: Any, error: _ErrorFactory, field: str = "interval") -> tuple[int, int] | None:
    if interval is None and field == "interval":
        return None
    if not isinstance(interval, (list, tuple)) or len(interval) != 2 or not all(_is_int(v) for v in interval):
        raise error(f"found {interval!r}, expected [first, last]: two integer frame indices", field)
    first, last = interval
    if not 0 <= first <= last:
        raise error(f"found {list(interval)!r}, expected 0 <= first <= last", field)
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
    if record.untrimmed:
        out: dict[str, Any] = {"video": values["video"], "split": record.split,
                               SEGMENTS_FIELD: [{"label": s.label, "interval": [s.first, s.last]}
                                                for s in record.segments]}
    else:
        out = {"video": values["video"], "label": record.label, "split": record.split}
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
