"""`stanet evaluate --timeline`: temporal action detection on the untrimmed records of a split, the THUMOS14
protocol (stanet/timeline/map.py: mAP at tIoU 0.1..0.7 and the mean over 0.3-0.7), for the method and two
baselines in the same run, on the same windows and the same model answers:

- `attention`: per-frame scores weighted by the model's temporal attention (the timeline `stanet infer
  --timeline` serves);
- `uniform_baseline`: the same windows with uniform temporal weights;
- `window_baseline`: plain sliding-window classification, each window's label over its whole span.

Reports (stable JSON keys under "timeline", docs/timeline.md): {"attention": MAP, "uniform_baseline": MAP,
"window_baseline": MAP, "num_videos", "num_ground_truth", "skipped_videos", "clip_span", "stride",
"segment_options", "frame_weight", "background", "notes"}, each MAP {"map": {"0.1": ..., "0.7": ...}, "mean_0.3_0.7",
"per_class", "classes", "ground_truth", "detections"} (fractions in [0, 1]).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from stanet.checkpoint import Checkpoint
from stanet.dataset_format import AnnotatedDataset, record_segments
from stanet.model.preprocess import normalize_clip
from stanet.model.recognizer import probabilities
from stanet.timeline.clips import decoded_frames
from stanet.timeline.map import Instance, detection_map
from stanet.timeline.pipeline import VARIANTS, Timeline, TimelineOptions, compute_timeline
from stanet.timeline.segments import SegmentOptions, frame_seconds
from stanet.timeline.windows import ClipSpan
from stanet.video import VideoDecodeError, probe_video

REPORT_NAMES = {"attention": "attention", "uniform": "uniform_baseline", "windows": "window_baseline"}
NO_BACKGROUND_NOTE = ("the model has no background class: idle time cannot be told apart from the actions "
                      "(train with --set train.background=true)")
NO_SPAN_NOTE = "the checkpoint records no training clip span: windows of T frames at each video's frame rate"


class TimelineEvaluationError(RuntimeError):
    pass


def _predictor(model, device: torch.device):
    @torch.no_grad()
    def predict(clips: np.ndarray):
        result = model(normalize_clip(torch.from_numpy(clips).to(device)))  # clips (B, T, H, W, 3) uint8
        return (probabilities(result).cpu().numpy(), result.temporal_attention.float().cpu().numpy(),
                result.spatial_attention.float().cpu().numpy())
    return predict


@dataclass
class VideoTimelines:
    """Every untrimmed video of a split through the model once: the timelines and their ground truth, from
    which any segment settings are scored without running the model again (`detection_maps`)."""

    timelines: list[tuple[str, Timeline]]  # (video path, its timeline)
    truth: list[Instance]
    skipped: list[dict[str, Any]]
    num_records: int
    background: int | None


def compute_video_timelines(checkpoint: Checkpoint, dataset: AnnotatedDataset, split: str, device: torch.device, *,
                            batch_size: int = 32, options: TimelineOptions = TimelineOptions(),
                            progress: bool = True) -> VideoTimelines:
    """The model's timeline of every untrimmed `split` record of `dataset` (a file that cannot be decoded is
    skipped and named; one damaged in the middle is scored up to the damage)."""
    records = [r for r in dataset.split(split) if r.untrimmed]
    if not records:
        raise TimelineEvaluationError(f"{dataset.root} has no untrimmed records (with 'segments') in split "
                                      f"{split!r}: --timeline evaluates long videos holding several actions")
    config = checkpoint.model_config
    model = checkpoint.build_model().to(device).eval()
    predict = _predictor(model, device)
    class_names = tuple(checkpoint.class_names)
    skipped: list[dict[str, Any]] = []
    timelines: list[tuple[str, Timeline]] = []
    truth: list[Instance] = []
    background = None
    for record in tqdm(records, desc="timelines", unit="video", leave=False, disable=not progress):
        video = str(record.video)
        try:
            info = probe_video(record.video)
            span = checkpoint.clip_span or ClipSpan(config.clip_length, config.clip_length / info.fps)
            damage: list[str] = []
            timeline = compute_timeline(decoded_frames(record.video, damage), info.num_frames, info.fps, span,
                                        config.clip_length, (config.height, config.width), class_names, predict,
                                        batch_size=batch_size, options=options)
        except VideoDecodeError as exc:
            skipped.append({"video": video, "line": record.line, "error": exc.reason})
            continue
        if timeline.damage or damage:
            skipped.append({"video": video, "line": record.line,
                            "error": "; ".join([*damage, *([timeline.damage] if timeline.damage else [])]),
                            "partial": True})
        background = timeline.background
        seconds = frame_seconds(timeline.num_frames, timeline.fps, timeline.timestamps)
        for label, first, last in record_segments(record, info.num_frames):
            if first >= timeline.num_frames:
                continue  # after the damage: not seen, not scored
            last = min(last, timeline.num_frames - 1)
            truth.append(Instance(video, label, float(seconds[first]), float(seconds[last + 1])))
        timelines.append((video, timeline))
    if not truth:
        raise TimelineEvaluationError(f"no untrimmed {split} video of {dataset.root} could be read "
                                      f"({len(skipped)} skipped: {skipped[:3]})")
    return VideoTimelines(timelines, truth, skipped, len(records), background)


def detection_maps(videos: VideoTimelines, segments: SegmentOptions) -> dict[str, dict[str, Any]]:
    """THUMOS14 mAP of the method and both baselines under `segments`, keyed as in the report."""
    found: dict[str, list[Instance]] = {v: [] for v in VARIANTS}
    for video, timeline in videos.timelines:
        for variant in VARIANTS:
            found[variant] += [Instance(video, s.label, s.start, s.end, s.score)
                               for s in timeline.variant_segments(variant, segments)]
    return {REPORT_NAMES[v]: detection_map(videos.truth, found[v]) for v in VARIANTS}


def evaluate_timeline(checkpoint: Checkpoint, dataset: AnnotatedDataset, split: str, device: torch.device, *,
                      batch_size: int = 32, options: TimelineOptions = TimelineOptions(),
                      figures: str | Path | None = None, num_figures: int = 8, progress: bool = True) -> dict[str, Any]:
    """The "timeline" section of the evaluation report for the untrimmed `split` records of `dataset`; with
    `figures`, FIGURES/timeline/<video stem>.png for the first `num_figures` videos (curves, segments and the
    ground truth)."""
    videos = compute_video_timelines(checkpoint, dataset, split, device, batch_size=batch_size, options=options,
                                     progress=progress)
    notes = []
    if videos.background is None:
        notes.append(NO_BACKGROUND_NOTE)
    if checkpoint.clip_span is None:
        notes.append(NO_SPAN_NOTE)
    span = checkpoint.clip_span
    report: dict[str, Any] = detection_maps(videos, options.segments)
    report.update({"num_videos": videos.num_records - sum(1 for s in videos.skipped if not s.get("partial")),
                   "num_ground_truth": len(videos.truth), "skipped_videos": videos.skipped,
                   "clip_span": span.to_dict() if span else None,
                   "stride": {"seconds": options.stride_seconds, "frames": options.stride_frames,
                              "default": "half a window" if options.stride_seconds is None
                              and options.stride_frames is None else None},
                   "segment_options": asdict(options.segments), "frame_weight": options.frame_weight,
                   "background": videos.background is not None,
                   "notes": notes})
    if figures is not None:
        written = []
        for video, timeline in videos.timelines[:num_figures]:
            video_truth = [g for g in videos.truth if g.video == video]
            written.append(_figure(Path(figures) / "timeline", Path(video), timeline, video_truth))
        report["figures"] = written
    return report


def _figure(out_dir: Path, video: Path, timeline, truth: list[Instance]) -> str:
    from serving.timeline import VideoTimeline  # noqa: PLC0415 - Pillow drawing, only when asked
    from serving.timeline_render import timeline_picture  # noqa: PLC0415

    out_dir.mkdir(parents=True, exist_ok=True)
    answer = VideoTimeline(video=str(video), fps=timeline.fps, frames=timeline.num_frames,
                           segments=tuple(timeline.segments), timeline=timeline)
    path = out_dir / f"{Path(video).stem}.png"
    timeline_picture(answer, ground_truth=[(g.label, g.start, g.end) for g in truth]).save(path)
    return str(path)


def format_timeline(section: dict[str, Any]) -> str:
    tious = list(section["attention"]["map"])
    lines = ["", f"  timeline (THUMOS14 mAP %, {section['num_videos']} untrimmed videos, "
                 f"{section['num_ground_truth']} actions)",
             "    " + " " * 20 + "  ".join(f"@{t:<4}" for t in tious) + "  mean 0.3-0.7"]
    for name in REPORT_NAMES.values():
        values = section[name]
        lines.append(f"    {name:<20}" + "  ".join(f"{100 * values['map'][t]:5.1f}" for t in tious)
                     + f"  {100 * values['mean_0.3_0.7']:5.1f}")
    lines += [f"    note: {note}" for note in section["notes"]]
    return "\n".join(lines)
