"""`stanet data check DIR`: validate a dataset directory completely, videos included (numpy + PyAV, no torch).

`load_dataset` checks the files (fields, classes, splits, overlapping segments of one class); this also
probes every video (does it decode, how many frames) and refuses an interval, segment or box past the end
of its video. Every problem is printed as `FILE, line N: field 'F': ...`; exit status 2 when there is one,
0 otherwise, with a summary of the records per split.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stanet.constants import ANNOTATIONS_FILE, SPLITS
from stanet.dataset_format import DatasetFormatError, check_frame_count, load_dataset
from stanet.video import VideoDecodeError, probe_video

PROG = "stanet data check"


def check_dataset(root: str | Path, *, progress: bool = False) -> dict[str, Any]:
    """{"problems": [message, ...], "unreadable": [message, ...], "records": {split: {"trimmed", "untrimmed"}},
    "segments": {class: count}}. Raises DatasetFormatError when the files themselves break the format."""
    dataset = load_dataset(root)
    annotations = dataset.root / ANNOTATIONS_FILE
    problems, unreadable = [], []
    counts = {split: Counter() for split in SPLITS}
    segments: Counter = Counter()
    frames_of: dict[Path, int | None] = {}
    for record in tqdm(dataset.records, desc="probing videos", unit="video", disable=not progress):
        counts[record.split]["untrimmed" if record.untrimmed else "trimmed"] += 1
        segments.update(s.label for s in record.segments)
        if record.video not in frames_of:
            try:
                frames_of[record.video] = probe_video(record.video).num_frames
            except VideoDecodeError as exc:
                frames_of[record.video] = None
                unreadable.append(f"{annotations}, line {record.line}: {exc}")
        if frames_of[record.video] is not None:
            try:
                check_frame_count(record, frames_of[record.video], annotations)
            except DatasetFormatError as exc:
                problems.append(str(exc))
    return {"problems": problems, "unreadable": unreadable,
            "records": {split: {"trimmed": c["trimmed"], "untrimmed": c["untrimmed"]} for split, c in counts.items()},
            "segments": dict(sorted(segments.items()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("data", type=Path, help="the dataset directory (classes.txt, annotations.jsonl)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        report = check_dataset(args.data, progress=not args.quiet)
    except DatasetFormatError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    for message in report["problems"]:
        print(f"{PROG}: error: {message}", file=sys.stderr)
    for message in report["unreadable"]:
        print(f"{PROG}: unreadable (training skips it): {message}", file=sys.stderr)
    for split, count in report["records"].items():
        print(f"{split}: {count['trimmed']} trimmed clips, {count['untrimmed']} untrimmed videos")
    if report["segments"]:
        print("segments per class: " + ", ".join(f"{k} {v}" for k, v in report["segments"].items()))
    return 2 if report["problems"] else 0
