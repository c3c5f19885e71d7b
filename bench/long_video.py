"""`python -m bench.long_video`: what a long video costs the client, measured on files this command writes.

For each length (default 1 and 10 minutes) at one frame size (default 1920x1080, 30 fps) it writes a video
(kept under OUTPUT/videos and reused when present), exports the checkpoint for the embedded Triton, starts
it, and runs the real client as a separate process twice per file: `stanet infer VIDEO` (one clip sampled
from the whole file) and `stanet infer VIDEO --timeline` (every window). Each run's peak resident memory
(the child's VmHWM, read from /proc while it runs) and wall time are reported, with video-seconds per wall-second for
the timeline, and the targets of docs/timeline.md ("Long videos: memory and speed of the client") printed pass/fail:

- the longest file's timeline within 200 MB of the shortest's (memory bounded by a few windows);
- every client run below 1 GB;
- the timeline at >= 10x real time.

The videos are synthetic (a bright square crossing a gradient, idle between crossings), written straight
as YUV 4:2:0 planes so that a 10-minute 1080p file takes a few minutes to encode on 2 cores; their content
matters little here: decoding and resizing every frame is what a timeline costs the client.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from serving.embedded import private_port
from serving.infer_cli import DEFAULT_CONCURRENCY
from serving.procfs import status_kb
from serving.server import ServerOptions, TritonServer
from stanet.constants import MODEL_NAME
from stanet.video import VideoWriter, probe_video

MEMORY_SPREAD_MB = 200.0  # the longest timeline's peak RSS may exceed the shortest's by at most this
CLIENT_LIMIT_MB = 1024.0
REALTIME_FACTOR = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.long_video", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="best.pt of a run (make demo: runs/demo)")
    parser.add_argument("--output", type=Path, required=True, help="folder for the videos, repository and report")
    parser.add_argument("--minutes", default="1,10", help="video lengths in minutes, comma-separated (default: 1,10)")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of the videos (default: 1920x1080)")
    parser.add_argument("--fps", type=int, default=30, help="frame rate of the videos (default: 30)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="windows per request (default: 8)")
    parser.add_argument("--concurrency", default=str(DEFAULT_CONCURRENCY), metavar="N[,N...]",
                        help=f"requests in flight per video in the timeline runs, comma-separated: one timeline "
                             f"run each (default: {DEFAULT_CONCURRENCY}, stanet infer's; the targets read the "
                             f"first)")
    args = parser.parse_args(argv)
    try:
        args.width, args.height = (int(v) for v in args.size.lower().split("x"))
        args.lengths = sorted(float(v) for v in args.minutes.split(","))
        args.concurrencies = [int(v) for v in args.concurrency.split(",")]
    except ValueError:
        parser.error(f"--size must be WIDTHxHEIGHT, --minutes numbers and --concurrency whole numbers, got "
                     f"{args.size!r}, {args.minutes!r} and {args.concurrency!r}")
    if min(args.concurrencies) < 1:
        parser.error(f"--concurrency must be >= 1, got {args.concurrency}")
    if args.width <= 0 or args.height <= 0 or args.width % 2 or args.height % 2:
        parser.error(f"--size must be even and positive (H.264 4:2:0), got {args.size}")
    if not args.lengths or args.lengths[0] <= 0:
        parser.error(f"--minutes must be > 0, got {args.minutes}")
    if args.fps <= 0:
        parser.error(f"--fps must be > 0, got {args.fps}")
    if not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    return args


def write_long_video(path: Path, seconds: float, width: int, height: int, fps: int) -> None:
    """A square crossing a gradient every few seconds, idle between crossings, encoded frame by frame (one
    frame in memory) from YUV 4:2:0 planes."""
    frames = int(round(seconds * fps))
    luma = np.linspace(40, 120, width, dtype=np.float32)[None, :] + np.linspace(0, 40, height, dtype=np.float32)[:, None]
    luma = luma.astype(np.uint8)  # (H, W)
    chroma = np.full((height // 2, width), 128, np.uint8)  # U then V, (H/4, W) each, stacked below Y
    side = max(2, height // 6) // 2 * 2
    period, crossing = 6 * fps, 3 * fps  # a crossing of 3 s every 6 s
    planes = np.concatenate([luma, chroma], axis=0)  # (H * 3/2, W): Y above U and V
    y = (height - side) // 2
    tmp = path.with_suffix(".partial.mp4")
    with VideoWriter(tmp, width, height, fps, crf=23, preset="ultrafast", input_format="yuv420p") as writer:
        for i in range(frames):
            phase = i % period
            picture = planes
            if phase < crossing:
                picture = planes.copy()
                x = int((width - side) * phase / crossing)
                picture[y:y + side, x:x + side] = 235
            writer.write(picture)
    tmp.replace(path)


def measured_client(arguments: list[str], poll_s: float = 0.02) -> dict:
    """Run `stanet infer ARGUMENTS --json` as a child; its wall time, its peak RSS and its JSON. The peak is
    the child's VmHWM, read until it exits: a fork's rusage would also count the parent's pages it was
    forked with (Linux keeps that high-water mark across exec), and this parent holds PyTorch."""
    started = time.perf_counter()
    peak_kb = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-m", "stanet", "infer", *arguments, "--json", "--no-progress"],
                                 stdout=out, stderr=err, text=True)
        while child.poll() is None:
            try:
                peak_kb = max(peak_kb, status_kb(child.pid, "VmHWM"))  # monotonic: the last read is the peak
            except (OSError, ValueError):
                pass
            time.sleep(poll_s)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        text, errors = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"stanet infer {' '.join(arguments)} exited {child.returncode}: {errors.strip()[-2000:]}")
    return {"wall_s": wall, "peak_rss_mb": peak_kb / 1024, "answer": json.loads(text)}


def run(args: argparse.Namespace) -> dict:
    from export.pipeline import ExportRequest, export_model  # noqa: PLC0415 - torch, for the export only

    videos = args.output / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    files = []
    for minutes in args.lengths:
        path = videos / f"long_{minutes:g}min_{args.width}x{args.height}_{args.fps}fps.mp4"
        if not path.exists():
            started = time.perf_counter()
            print(f"bench.long_video: writing {path.name}", flush=True)
            write_long_video(path, minutes * 60, args.width, args.height, args.fps)
            print(f"bench.long_video: {path.name} in {time.perf_counter() - started:.0f} s", flush=True)
        files.append(path)
    repository = args.output / "model_repository"
    shutil.rmtree(repository, ignore_errors=True)  # generated from --checkpoint on every run
    export_model(ExportRequest(checkpoint=args.checkpoint, repository=repository, target="python",
                               max_batch_size=args.max_batch_size), log=lambda *_: None)
    options = ServerOptions(repository=repository, grpc_port=private_port(), metrics_port=private_port(),
                            exit_timeout_s=10)
    rows = []
    with TritonServer(options) as server:
        url = server.options.grpc_url
        for path in files:
            info = probe_video(path)
            seconds = info.num_frames / info.fps
            runs = [("clip", None, [])] + [("timeline", n, ["--timeline", "--concurrency", str(n)])
                                           for n in args.concurrencies]
            for mode, concurrency, extra in runs:
                result = measured_client([str(path), "--url", url, "--model", MODEL_NAME, *extra])
                answer = result.pop("answer")
                row = {"video": path.name, "mode": mode, "concurrency": concurrency, "video_seconds": seconds,
                       "frames": info.num_frames, **result, "realtime_factor": seconds / result["wall_s"]}
                if mode == "timeline":
                    row["segments"] = sum(len(v["segments"]) for v in answer["videos"])
                rows.append(row)
                print(f"bench.long_video: {path.name} {mode} {concurrency or ''}: {result['wall_s']:.1f} s, "
                      f"{result['peak_rss_mb']:.0f} MB", flush=True)
    return {"size": f"{args.width}x{args.height}", "fps": args.fps, "runs": rows,
            "targets": targets(rows, args.concurrencies[0])}


def targets(rows: list[dict], concurrency: int) -> list[dict]:
    """The targets on the clip runs and the timeline runs at `concurrency` requests in flight."""
    timelines = sorted((r for r in rows if r["mode"] == "timeline" and r["concurrency"] == concurrency),
                       key=lambda r: r["video_seconds"])
    rows = [r for r in rows if r["mode"] == "clip" or r["concurrency"] == concurrency]
    checks = []
    if len(timelines) >= 2:
        spread = timelines[-1]["peak_rss_mb"] - timelines[0]["peak_rss_mb"]
        checks.append({"target": f"timeline peak RSS, {timelines[-1]['video']} - {timelines[0]['video']} "
                                 f"<= {MEMORY_SPREAD_MB:g} MB", "value": f"{spread:+.0f} MB",
                       "met": spread <= MEMORY_SPREAD_MB})
    worst = max(rows, key=lambda r: r["peak_rss_mb"])
    checks.append({"target": f"every client run < {CLIENT_LIMIT_MB:g} MB", "value":
                   f"{worst['peak_rss_mb']:.0f} MB ({worst['video']}, {worst['mode']})",
                   "met": worst["peak_rss_mb"] < CLIENT_LIMIT_MB})
    longest = timelines[-1]
    checks.append({"target": f"timeline >= {REALTIME_FACTOR:g}x real time ({longest['video']})",
                   "value": f"{longest['realtime_factor']:.1f}x", "met": longest["realtime_factor"] >= REALTIME_FACTOR})
    return checks


def render(report: dict) -> str:
    lines = ["| video | mode | requests in flight | video s | wall s | x real time | client peak RSS MB |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['video']} | {r['mode']} | {r['concurrency'] or ''} | {r['video_seconds']:.0f} | {r['wall_s']:.1f} | "
              f"{r['realtime_factor']:.1f} | {r['peak_rss_mb']:.0f} |" for r in report["runs"]]
    lines += ["", "| target | value | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['value']} | {'met' if t['met'] else 'missed'} |" for t in report["targets"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    (args.output / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
