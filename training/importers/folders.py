"""Users' own clips in a plain "one folder per class" layout: `SRC/<class>/<video>`.

The class names are the folder names, sorted. Every file with a video extension (VIDEO_EXTENSIONS, any
case) inside a class folder is a clip; other files are counted and ignored. A subfolder inside a class
folder (`SRC/<class>/<session>/<video>`) is a group: its clips always land in the same split (use it for
clips cut from one recording); a video directly in the class folder is a group of its own. Every clip
starts in train; the importer carves the seeded val and test splits out of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from stanet.dataset_format import DatasetFormatError
from training.importers.source import VIDEO_EXTENSIONS, SourceClip, SourceDataset, VideoProber


def read(source: Path, annotations: Sequence[Path], split: int, prober: VideoProber) -> SourceDataset:
    """Read `source`/<class>/... (`annotations` and `split` do not apply to this layout)."""
    class_dirs = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DatasetFormatError(source, "found no class folders, expected SRC/<class>/<video> (one folder per class)")
    clips: list[SourceClip] = []
    ignored = 0
    for class_dir in class_dirs:
        videos = []
        for path in sorted(class_dir.rglob("*")):
            relative = path.relative_to(source)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                videos.append(PurePosixPath(relative.as_posix()))
            else:
                ignored += 1
        if not videos:
            raise DatasetFormatError(class_dir, f"class folder without videos, expected files ending in one of "
                                     f"{', '.join(VIDEO_EXTENSIONS)}")
        for video in videos:
            group = f"{class_dir.name}/{video.parts[1] if len(video.parts) > 2 else video.name}"
            if prober.info(video) is not None:
                clips.append(SourceClip(video=video, label=class_dir.name, split="train", group=group))
    notes = (f"ignored {ignored} file(s) without a video extension",) if ignored else ()
    return SourceDataset(class_names=tuple(d.name for d in class_dirs), clips=tuple(clips), notes=notes)
