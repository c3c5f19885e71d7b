"""The timeline's command-line options, one definition for `stanet infer --timeline` (serving, no torch) and
`stanet evaluate --timeline` (training): the windows' stride, how attention weights a window's frames, and
the segment settings of stanet.timeline.segments.SegmentOptions. Defaults come from the dataclasses, so the
two commands cannot drift apart (docs/timeline.md, "Defaults", says what chose each)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from stanet.timeline.aggregate import FRAME_WEIGHTS
from stanet.timeline.pipeline import TimelineOptions
from stanet.timeline.segments import SegmentOptions
from stanet.timeline.windows import TimelineError

SEGMENT_FIELDS = tuple(f.name for f in fields(SegmentOptions))  # each is an option of the same name


def add_timeline_arguments(group: argparse._ArgumentGroup) -> None:
    """--stride / --stride-frames, --frame-weight, --threshold, --smoothing, --min-duration, --nms-iou."""
    defaults = SegmentOptions()
    group.add_argument("--stride", type=float, metavar="SECONDS",
                       help="seconds between window starts (default: half a window)")
    group.add_argument("--stride-frames", type=int, metavar="N", help="frames between window starts")
    group.add_argument("--frame-weight", default=TimelineOptions.frame_weight, choices=FRAME_WEIGHTS,
                       help=f"how temporal attention weights a window's frames (default: "
                            f"{TimelineOptions.frame_weight})")
    group.add_argument("--threshold", type=float, default=defaults.threshold, metavar="P",
                       help=f"smoothed per-frame score a segment needs (default: {defaults.threshold:g})")
    group.add_argument("--smoothing", type=float, default=defaults.smoothing, metavar="WINDOWS",
                       help=f"moving-average length of the per-frame scores, in windows (default: "
                            f"{defaults.smoothing:g})")
    group.add_argument("--min-duration", type=float, default=defaults.min_duration, metavar="WINDOWS",
                       help=f"shortest segment kept, in windows (default: {defaults.min_duration:g})")
    group.add_argument("--nms-iou", type=float, default=defaults.nms_iou, metavar="TIOU",
                       help=f"tIoU above which the weaker segment of a class is dropped (default: "
                            f"{defaults.nms_iou:g})")


def timeline_options(args: argparse.Namespace) -> TimelineOptions:
    """The TimelineOptions the options above give. Raises TimelineError naming a bad value (a stride <= 0
    is named when the windows are planned, by stanet.timeline.windows.stride_frames)."""
    if args.stride is not None and args.stride_frames is not None:
        raise TimelineError("--stride and --stride-frames go alone: give the stride in seconds or in frames")
    segments = SegmentOptions(**{name: getattr(args, name) for name in SEGMENT_FIELDS})
    return TimelineOptions(stride_seconds=args.stride, stride_frames=args.stride_frames, segments=segments,
                           frame_weight=args.frame_weight)
