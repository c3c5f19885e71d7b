"""What every reader shares: the clip a reader returns, the video prober (frame rate, frame count, size;
unreadable videos are recorded and skipped), and line-numbered reading of annotation text files.

Errors in source files are DatasetFormatError naming the file, the line and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from stanet.dataset_format import DatasetFormatError
from stanet.video import VideoDecodeError, VideoInfo, probe_video

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v", ".flv", ".ogv")


@dataclass(frozen=True)
class SourceClip:
    """One clip as a reader found it, before the output is written.

    Attributes:
        video: the video file, relative to the source directory (POSIX form).
        label: class name.
        split: "train" or "test" as the source says (readers without splits say "train"; the importer then
            carves val, and test for the folder layout, out of train).
        group: clips sharing a group never straddle train and val. Group names are global: readers prefix
            per-class groups with the class ("ApplyEyeMakeup/g08", a HMDB51 source movie); a THUMOS14 video,
            which may hold instances of several classes, is one group across them.
        interval: (first, last) action frames, inclusive, 0-based, or None.
        boxes: frame index -> (x1, y1, x2, y2) in pixels, or None.
        segments: an untrimmed record's (label, first, last) action instances (`label` then names only
            the group's class for the split draw and is not written), or None for a trimmed clip.
    """

    video: PurePosixPath
    label: str
    split: str
    group: str
    interval: tuple[int, int] | None = None
    boxes: dict[int, tuple[float, float, float, float]] | None = None
    segments: tuple[tuple[str, int, int], ...] | None = None


@dataclass(frozen=True)
class SourceDataset:
    """What a reader returns: class names in label order and the clips whose videos decode."""

    class_names: tuple[str, ...]
    clips: tuple[SourceClip, ...]
    notes: tuple[str, ...] = ()  # facts worth telling the user (ignored files, unused entries)


@dataclass
class VideoProber:
    """Probes each video of the source once; an unreadable one is recorded in `skipped` and yields None."""

    source: Path
    on_probe: Callable[[], object] | None = None  # called after each new probe (a progress bar's update)
    skipped: dict[str, str] = field(default_factory=dict)  # relative video path (or name) -> reason
    _seen: dict[str, VideoInfo | None] = field(default_factory=dict, init=False, repr=False)

    def info(self, video: PurePosixPath) -> VideoInfo | None:
        key = str(video)
        if key not in self._seen:
            if self.on_probe is not None:
                self.on_probe()
            try:
                self._seen[key] = probe_video(self.source / video)
            except VideoDecodeError as exc:
                self._seen[key] = None
                self.skipped[key] = exc.reason
        return self._seen[key]

    def named(self, name: str, video: PurePosixPath | None) -> VideoInfo | None:
        """`info` of the video an annotation file names (`video`: where it was found, None when no file matched
        `name`); a missing file is recorded in `skipped` like an unreadable one."""
        if video is None:
            self.skipped.setdefault(name, f"no video file '{name}.*' under {self.source}")
            return None
        return self.info(video)


def text_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, whitespace-separated fields) of every non-blank line of a text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            yield number, fields


def find_files(roots: Sequence[Path], pattern: str) -> list[Path]:
    """Files named like `pattern` (a glob) directly in, or anywhere under, the given directories (or the
    given files themselves), sorted and without duplicates."""
    found: set[Path] = set()
    for root in roots:
        if root.is_file():
            if root.match(pattern):
                found.add(root.resolve())
        elif root.is_dir():
            found.update(p.resolve() for p in root.rglob(pattern) if p.is_file())
    return sorted(found)


def find_one_file(roots: Sequence[Path], name: str, what: str) -> Path:
    """The single file called `name` under `roots`; a clear error if there is none or several."""
    matches = find_files(roots, name)
    where = ", ".join(str(r) for r in roots)
    if not matches:
        raise DatasetFormatError(where, f"missing {what}: no file {name!r} in or under it")
    if len(matches) > 1:
        listed = ", ".join(str(m) for m in matches[:4])
        raise DatasetFormatError(where, f"found {len(matches)} files {name!r} ({listed}), expected one {what}")
    return matches[0]


def video_path(source: Path, relative: str, path: Path, line: int) -> PurePosixPath:
    """A video path read from an annotation line, checked to stay inside the source directory."""
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or not posix.parts:
        raise DatasetFormatError(path, f"found the video path {relative!r}, expected a path relative to {source} "
                                 f"without '..'", line=line)
    return posix
