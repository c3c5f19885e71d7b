"""`python -m training.timeline_settings`: how the timeline's segment settings change its mAP, on one model.

The model runs once over the split's untrimmed videos (training/timeline_eval.py); then each setting of
stanet.timeline.segments.SegmentOptions is varied alone around the defaults, the others held at theirs, and
the THUMOS14 mAP of the method and both baselines is computed for every value. This is the ablation behind
the defaults in docs/timeline.md ("Defaults"); run it on a model of your own footage before changing them.

Prints one table (mAP % at tIoU 0.5 and 0.7, the mean over 0.3-0.7, the number of detections); `--output`
writes every figure as JSON: {"checkpoint", "data", "split", "defaults", "rows": [{"setting", "value",
"default", "attention", "uniform_baseline", "window_baseline", "detections"}]}, MAP as in the report of
`stanet evaluate --timeline`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from stanet.checkpoint import CheckpointError, load_checkpoint
from stanet.dataset_format import DatasetFormatError, load_dataset
from stanet.timeline.pipeline import TimelineOptions
from stanet.timeline.segments import SegmentOptions
from stanet.timeline.windows import TimelineError
from training.evaluate import EvaluationError, check_classes
from training.loop import select_device
from training.timeline_eval import TimelineEvaluationError, compute_video_timelines, detection_maps

# the values tried for each setting, the default among them
GRID: dict[str, tuple[float, ...]] = {
    "threshold": (0.05, 0.1, 0.2, 0.3, 0.5),
    "smoothing": (0.0, 0.0625, 0.125, 0.25, 0.5),
    "min_duration": (0.0, 0.125, 0.25, 0.5, 1.0),
    "nms_iou": (0.3, 0.5, 0.7, 1.0),
}


def settings_rows(videos, defaults: SegmentOptions = SegmentOptions(),
                  grid: dict[str, tuple[float, ...]] = GRID) -> list[dict[str, Any]]:
    """One row per (setting, value), the other settings at `defaults`."""
    rows = []
    for name, values in grid.items():
        for value in values:
            maps = detection_maps(videos, replace(defaults, **{name: value}))
            rows.append({"setting": name, "value": value, "default": value == getattr(defaults, name), **maps,
                         "detections": maps["attention"]["detections"]})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["setting        value   attention @0.5  @0.7  mean | uniform mean | windows mean | detections"]
    for row in rows:
        a, u, w = row["attention"], row["uniform_baseline"], row["window_baseline"]
        mark = "*" if row["default"] else " "
        lines.append(f"{row['setting']:<13}{mark}{row['value']:6g}   {100 * a['map']['0.5']:14.1f} "
                     f"{100 * a['map']['0.7']:5.1f} {100 * a['mean_0.3_0.7']:5.1f} | {100 * u['mean_0.3_0.7']:12.1f} "
                     f"| {100 * w['mean_0.3_0.7']:12.1f} | {row['detections']:10d}")
    lines.append("(* the default; every row holds the other settings at their defaults)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.timeline_settings", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")
    parser.add_argument("--data", required=True, help="dataset directory with untrimmed records")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", type=Path, help="write every figure as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        dataset = load_dataset(args.data)
        check_classes(args.data, dataset, checkpoint)
        videos = compute_video_timelines(checkpoint, dataset, args.split, select_device(args.device),
                                         batch_size=args.batch_size, options=TimelineOptions(),
                                         progress=not args.quiet)
    except (CheckpointError, DatasetFormatError, EvaluationError, TimelineEvaluationError, TimelineError, ValueError) as exc:
        print(f"timeline_settings: error: {exc}", file=sys.stderr)
        return 2
    rows = settings_rows(videos)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"checkpoint": str(args.checkpoint), "data": str(args.data),
                                           "split": args.split, "defaults": asdict(SegmentOptions()),
                                           "rows": rows}, indent=1) + "\n")
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
