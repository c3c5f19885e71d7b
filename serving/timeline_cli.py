"""`stanet infer VIDEO... --timeline`: a table (or `--json`, one object) of the segments of each video, a
progress bar per video, and with `--overlay` a timeline picture and an annotated MP4 per video.

The JSON object (keys stable, README "Timeline output"):
    {"videos": [{"video": PATH, "fps": F, "frames": N, "segments": [{"label", "score", "start", "end",
                 "start_frame", "end_frame"}, ...], "error": null or why, "notes": [...]}, ...]}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from serving.timeline import VideoTimeline


def _table(answers: list[VideoTimeline]) -> str:
    blocks = []
    for answer in answers:
        head = answer.video if answer.fps is None else (f"{answer.video}  ({answer.frames} frames, {answer.fps:g} fps, "
                                                        f"{answer.frames / answer.fps:.1f} s)")
        rows = [("label", "score", "start s", "end s", "frames")]
        rows += [(s.label, f"{s.score:.3f}", f"{s.start:.2f}", f"{s.end:.2f}", f"{s.start_frame}-{s.end_frame}")
                 for s in answer.segments]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        if not answer.segments:
            lines.append("  (no segment)" if answer.fps is not None else "  (error, below)")
        blocks.append("\n".join([head, *lines]))
    return "\n\n".join(blocks)


def run_timelines(args, client, overlay_dirs: list[Path | None]) -> int:
    """Every video's timeline, one after the other (the windows of each are sent concurrently)."""
    from tqdm import tqdm

    options = args.timeline_options
    answers: list[VideoTimeline] = []
    for video, overlay in zip(args.videos, overlay_dirs):
        bar = None

        def on_plan(windows: int) -> None:
            nonlocal bar
            bar = tqdm(total=windows, desc=Path(video).name, unit="window", file=sys.stderr, leave=False,
                       disable=True if args.no_progress else None)

        answer = client.infer_timeline(video, options, concurrency=args.concurrency, keep_timeline=overlay is not None,
                                       on_plan=on_plan, on_window=lambda n: bar.update(n) if bar else None)
        if bar is not None:
            bar.close()
        if overlay is not None and answer.timeline is not None:
            from serving.timeline_render import write_timeline_overlays  # noqa: PLC0415 - Pillow drawing

            write_timeline_overlays(answer, overlay)
        answers.append(answer)
    if args.json:
        print(json.dumps({"videos": [a.to_dict() for a in answers]}, indent=1))
    else:
        print(_table(answers))
        if args.overlay:
            print(f"overlays: {args.overlay}/<video>/timeline.png, annotated.mp4")
    for answer in answers:
        for note in answer.notes:
            print(f"stanet infer: note: {answer.video}: {note}", file=sys.stderr)
    failed = [a for a in answers if not a.ok]
    for answer in failed:
        print(f"stanet infer: error: {answer.video}: {answer.error}", file=sys.stderr)
    return 1 if failed else 0
