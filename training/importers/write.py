"""Writing an imported dataset directory:

    DIR/classes.txt, DIR/annotations.jsonl   # the generic format; every "video" is "videos/<path in SRC>"
    DIR/videos                               # a symlink to SRC (absolute), or with --copy a folder holding
                                             #   copies of the imported videos at the same relative paths
    DIR/import.json                          # how it was made: format, source, options, counts, skipped videos

The format's video paths are relative to DIR and may not contain '..', so videos outside DIR are reached
through the `videos` symlink; annotations.jsonl is the same with or without --copy. The directory is built
beside DIR and renamed into place (training.output_dir); `--overwrite` replaces only a directory holding
import.json, and removing it removes the symlink, never the videos it points to.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stanet.dataset_format import write_dataset
from training.importers.source import SourceClip
from training.output_dir import OutputKind, check_target, move_into_place, staging_dir

IMPORTED_VIDEOS_DIR = "videos"
IMPORT_REPORT_FILE = "import.json"
IMPORT_OUTPUT = OutputKind(marker=IMPORT_REPORT_FILE, what="an imported dataset", command="stanet data import")


def record_of(clip: SourceClip) -> dict[str, Any]:
    """The annotations.jsonl record of one imported clip."""
    if clip.segments is not None:  # an untrimmed video: all its instances, no single label
        return {"video": f"{IMPORTED_VIDEOS_DIR}/{clip.video}", "split": clip.split,
                "segments": [{"label": label, "interval": [first, last]} for label, first, last in clip.segments]}
    record: dict[str, Any] = {"video": f"{IMPORTED_VIDEOS_DIR}/{clip.video}", "label": clip.label,
                              "split": clip.split}
    if clip.interval is not None:
        record["interval"] = list(clip.interval)
    if clip.boxes is not None:
        record["boxes"] = {str(frame): list(box) for frame, box in sorted(clip.boxes.items())}
    return record


def write_imported(out_dir: Path, source: Path, class_names: Sequence[str], clips: Sequence[SourceClip], *,
                   copy: bool, overwrite: bool, report: dict[str, Any]) -> Path:
    """Write the dataset directory `out_dir` for `clips` whose videos lie under `source`.

    Raises:
        FileExistsError: `out_dir` exists, is not empty, and `overwrite` is not set or it was not imported.
        DatasetFormatError: a record breaks the format (nothing is written then).
    """
    check_target(out_dir, overwrite, IMPORT_OUTPUT)
    staging = staging_dir(out_dir)
    try:
        staging.mkdir(parents=True)
        videos_dir = staging / IMPORTED_VIDEOS_DIR
        if copy:
            for relative in sorted({str(clip.video) for clip in clips}):
                target = videos_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / relative, target)
        else:
            videos_dir.symlink_to(source.resolve(), target_is_directory=True)
        write_dataset(staging, class_names, [record_of(clip) for clip in clips])
        (staging / IMPORT_REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        move_into_place(staging, out_dir, overwrite, IMPORT_OUTPUT)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
