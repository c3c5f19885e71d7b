"""`stanet infer VIDEO...`: labels and attention for video files from a running stanet server.

Exit codes: 0 every video answered; 1 some videos failed (each named, the others answered); 2 nothing could
be asked (bad arguments, server not reachable or not ready, model not served).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from serving.client import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, DEFAULT_URL, StanetClient, parse_args_with_tls
from serving.errors import ServingError
from serving.results import VideoPrediction
from stanet.constants import MODEL_NAME
from stanet.timeline.arguments import add_timeline_arguments, timeline_options
from stanet.timeline.windows import TimelineError
from stanet.video import VideoDecodeError

DEFAULT_CONCURRENCY = 4  # docs/timeline.md, "Defaults": what the timeline's requests in flight measured


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet infer", description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files (any PyAV decodes)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"Triton gRPC address HOST:PORT (default: {DEFAULT_URL})")
    parser.add_argument("--model", default=MODEL_NAME, help=f"model name (default: {MODEL_NAME})")
    parser.add_argument("--model-version", default="", help="model version (default: the latest served)")
    parser.add_argument("--top-k", type=int, default=3, help="labels per video (default: 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("--overlay", type=Path, metavar="OUT",
                        help="write OUT/<video>/frame_XX.png, attention.gif and sheet.png per video (with "
                             "--timeline: OUT/<video>/timeline.png and annotated.mp4)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help=f"videos in flight at once; with --timeline, requests in flight per video (default: "
                             f"{DEFAULT_CONCURRENCY})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"deadline of every gRPC call (default: {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                        help=f"retries of a call the server answers UNAVAILABLE (default: {DEFAULT_RETRIES})")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for the server to become ready (default: 0, check once)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    timeline = parser.add_argument_group("timeline of actions in long videos (docs/timeline.md)")
    timeline.add_argument("--timeline", action="store_true",
                          help="segments (label, score, start, end) over the whole video instead of one clip")
    add_timeline_arguments(timeline)
    args = parse_args_with_tls(parser, argv)
    try:
        args.timeline_options = timeline_options(args)
    except TimelineError as exc:
        parser.error(str(exc))
    if args.concurrency < 1:
        parser.error(f"--concurrency must be >= 1, got {args.concurrency}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be > 0, got {args.timeout}")
    if args.retries < 0:
        parser.error(f"--retries must be >= 0, got {args.retries}")
    return args


def _overlay_dirs(videos: list[Path], root: Path) -> list[Path]:
    """One folder per video, named by its file stem (numbered when two videos share a stem)."""
    seen: dict[str, int] = {}
    dirs = []
    for video in videos:
        count = seen.get(video.stem, 0)
        seen[video.stem] = count + 1
        dirs.append(root / (video.stem if count == 0 else f"{video.stem}-{count + 1}"))
    return dirs


def _table(answers: list[VideoPrediction]) -> str:
    rows = [("video", "label", "score", "next labels", "when: frame (weight)", "where: x, y")]
    for answer in answers:
        if not answer.ok:
            rows.append((answer.video, "(error, below)", "-", "-", "-", "-"))
            continue
        p = answer.prediction
        t, x, y = p.focus(answer.frame_hw)
        rows.append((answer.video, p.label, f"{p.score:.3f}",
                     ", ".join(f"{s.label} {s.score:.3f}" for s in p.top_k[1:]),
                     f"{int(answer.frame_indices[t])} ({float(p.temporal_attention[t]):.3f})", f"{x:.0f}, {y:.0f}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) + "  " + str(row[-1])
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    local = threading.local()
    clients: list[StanetClient] = []
    lock = threading.Lock()

    def client() -> StanetClient:  # one per worker thread
        if not hasattr(local, "client"):
            local.client = StanetClient(args.url, args.model, args.model_version, timeout_s=args.timeout,
                                        retries=args.retries, **args.tls)
            with lock:
                clients.append(local.client)
        return local.client

    try:
        probe = client()
        probe.wait_until_ready(args.wait)
        model = probe.model()
        if not args.timeline and not 1 <= args.top_k <= model.num_classes:
            raise ServingError(f"--top-k must be between 1 and the model's {model.num_classes} classes, "
                               f"got {args.top_k}")
    except ServingError as exc:
        print(f"stanet infer: error: {exc}", file=sys.stderr)
        for c in clients:
            c.close()
        return 2
    overlay_dirs = _overlay_dirs(args.videos, args.overlay) if args.overlay else [None] * len(args.videos)
    if args.timeline:
        from serving.timeline_cli import run_timelines  # noqa: PLC0415

        try:
            return run_timelines(args, probe, overlay_dirs)
        finally:
            for c in clients:
                c.close()

    def answer(index: int) -> VideoPrediction:
        video = args.videos[index]
        try:
            result = client().infer_video(video, args.top_k, keep_frames=args.overlay is not None)
        except (VideoDecodeError, ServingError) as exc:
            return VideoPrediction(video=str(video), error=str(exc))
        if overlay_dirs[index] is not None:
            from serving.render import write_overlays

            write_overlays(result, overlay_dirs[index])
        return result

    from tqdm import tqdm

    answers: list[VideoPrediction | None] = [None] * len(args.videos)
    with ThreadPoolExecutor(max_workers=min(args.concurrency, len(args.videos))) as pool:
        futures = {pool.submit(answer, i): i for i in range(len(args.videos))}
        for future in tqdm(as_completed(futures), total=len(futures), desc="videos", unit="video", file=sys.stderr,
                           disable=True if args.no_progress else None, leave=False):
            answers[futures[future]] = future.result()
    for c in clients:
        c.close()
    failed = [a for a in answers if not a.ok]
    if args.json:
        print(json.dumps({"url": args.url, "model": args.model, "clip_length": model.clip_length,
                          "results": [a.to_dict() for a in answers]}, indent=1))
    else:
        print(_table(answers))
        if args.overlay:
            print(f"overlays: {args.overlay}/<video>/attention.gif, sheet.png, frame_XX.png")
    for a in failed:
        print(f"stanet infer: error: {a.video}: {a.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
