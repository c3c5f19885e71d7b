"""THUMOS14 temporal annotations: `<class>_val.txt` (validation videos) and `<class>_test.txt` (test videos)
with "<video name> <start seconds> <end seconds>" lines, one line per action instance.

Mapping onto the format:
- **Every video is one untrimmed record** holding all its instances (`segments`, of every class, sorted by
  first frame); overlapping instances of one class (the official files have a few) are merged into one and
  counted in the notes. A test video is what `stanet evaluate --timeline` scores with the THUMOS14 protocol;
  a validation video is what `stanet train` cuts windows from (training/windows.py: one action window per
  segment, of the training clips' span, and with `train.background=true` background windows from the gaps),
  instead of one clip sampled over the whole minutes-long video. The group is the video, so its instances
  never straddle train and val.
- The validation videos' instances are the train split (THUMOS14 has no other untrimmed training data with
  temporal labels; the paper's code trains on them too).
- `Ambiguous_*.txt` (segments the annotators could not label) is not a class: it is counted and ignored.
- Seconds -> frames with the video's real frame rate (probed with PyAV): the interval holds the frames whose
  timestamp i / fps lies in [start, end], i.e. first = ceil(start * fps), last = floor(end * fps). An
  instance shorter than a frame gets the frame nearest its middle. An end up to one frame past the video's
  end is clipped to the last frame; anything later, or a start at or after the end, is an error.
- Videos are found anywhere under SRC by name (`<video name>.<video extension>`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from stanet.dataset_format import DatasetFormatError
from stanet.video import VideoInfo
from training.importers.source import (VIDEO_EXTENSIONS, SourceClip, SourceDataset, VideoProber, find_files,
                                       text_lines)

SUBSET_SPLITS = {"val": "train", "test": "test"}  # annotation file suffix -> split of its instances
IGNORED_LABELS = ("Ambiguous",)
_ANNOTATION_FILE = re.compile(r"^(?P<label>.+)_(?P<subset>val|test)\.txt$")
_ROUNDING = 1e-6  # seconds * fps that land within this of a whole frame count as that frame


def seconds_to_frames(start: float, end: float, info: VideoInfo) -> tuple[int, int]:
    """The inclusive 0-based frame interval of [start, end] seconds in a video (see the module docstring).

    Raises:
        ValueError: the interval starts at or after the video's end, or ends more than a frame after it.
    """
    duration = info.num_frames / info.fps
    if start >= duration or end > duration + 1.0 / info.fps:
        raise ValueError(f"expected an instance inside the video's {duration:.3f} s ({info.num_frames} frames at "
                         f"{info.fps:g} fps)")
    last_frame = info.num_frames - 1
    first = math.ceil(start * info.fps - _ROUNDING)
    last = min(math.floor(end * info.fps + _ROUNDING), last_frame)
    if first > last:  # shorter than one frame period
        first = last = min(round((start + end) / 2 * info.fps), last_frame)
    return first, last


def read(source: Path, annotations: Sequence[Path], split: int, prober: VideoProber) -> SourceDataset:
    """Read every `<class>_{val,test}.txt` under `annotations` (`split` does not apply to THUMOS14)."""
    files = [(p, m) for p in find_files(annotations, "*.txt") if (m := _ANNOTATION_FILE.match(p.name))]
    where = ", ".join(str(a) for a in annotations)
    if not files:
        raise DatasetFormatError(where, "missing annotation files: no '<class>_val.txt' or '<class>_test.txt' in "
                                 "or under it")
    class_names = tuple(sorted({m["label"] for _, m in files} - set(IGNORED_LABELS)))
    if not class_names:
        raise DatasetFormatError(where, f"found only {', '.join(IGNORED_LABELS)} annotation files, expected "
                                 f"'<class>_val.txt' or '<class>_test.txt' of at least one class")
    videos = _index_videos(source)
    clips: list[SourceClip] = []
    ignored = 0
    for path, match in files:
        label, split_name = match["label"], SUBSET_SPLITS[match["subset"]]
        for line, fields in text_lines(path):
            name, start, end = _parse_line(path, line, fields)
            if label in IGNORED_LABELS:
                ignored += 1
                continue
            video = videos.get(name)
            info = prober.named(name, video)
            if info is None:
                continue
            try:
                interval = seconds_to_frames(start, end, info)
            except ValueError as exc:
                raise DatasetFormatError(path, f"{name} {start:g}-{end:g} s: {exc}", line=line) from None
            clips.append(SourceClip(video=video, label=label, split=split_name, group=name, interval=interval))
    clips, merged = _untrimmed_records(clips)
    notes = ((f"ignored {ignored} segment(s) labelled {'/'.join(IGNORED_LABELS)}",) if ignored else ()) + (
        (f"merged {merged} overlapping instance(s) of the same class and video",) if merged else ())
    return SourceDataset(class_names=class_names, clips=tuple(clips), notes=notes)


def _untrimmed_records(clips: list[SourceClip]) -> tuple[list[SourceClip], int]:
    """One untrimmed SourceClip per video (its instances sorted by first frame, overlapping ones of a class
    merged; its split the instances'), and the number of instances merged away."""
    by_video: dict[PurePosixPath, list[SourceClip]] = {}
    for clip in clips:
        by_video.setdefault(clip.video, []).append(clip)
    kept, merged = [], 0
    for video, instances in by_video.items():
        segments: list[list] = []
        for clip in sorted(instances, key=lambda c: (c.label, c.interval)):
            first, last = clip.interval
            if segments and segments[-1][0] == clip.label and first <= segments[-1][2]:
                segments[-1][2] = max(segments[-1][2], last)
                merged += 1
            else:
                segments.append([clip.label, first, last])
        ordered = tuple(sorted((tuple(s) for s in segments), key=lambda s: (s[1], s[2], s[0])))
        # The label names the group's class for the train/val draw: the class holding most of its instances.
        labels = [s[0] for s in ordered]
        label = max(sorted(set(labels)), key=labels.count)
        kept.append(SourceClip(video=video, label=label, split=instances[0].split, group=instances[0].group,
                               segments=ordered))
    return kept, merged


def _parse_line(path: Path, line: int, fields: list[str]) -> tuple[str, float, float]:
    expected = "expected '<video name> <start seconds> <end seconds>' with 0 <= start <= end"
    if len(fields) != 3:
        raise DatasetFormatError(path, f"found {' '.join(fields)!r}, {expected}", line=line)
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        raise DatasetFormatError(path, f"found {' '.join(fields)!r}, {expected}", line=line) from None
    if not (math.isfinite(start) and math.isfinite(end) and 0.0 <= start <= end):
        raise DatasetFormatError(path, f"found {' '.join(fields)!r}, {expected}", line=line)
    return fields[0], start, end


def _index_videos(source: Path) -> dict[str, PurePosixPath]:
    """Video name (file stem) -> path relative to `source`, for every video file under it."""
    index: dict[str, PurePosixPath] = {}
    for path in sorted(source.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            index.setdefault(path.stem, PurePosixPath(path.relative_to(source).as_posix()))
    return index
