"""`stanet bench --url`: the served half of the benchmark against any running Triton (a GPU server with the
TensorRT plan and the onnxruntime + TensorRT-accelerator models, for instance). Per model, a sweep of clips per
request x requests in flight; throughput, p50/p90/p99, error codes and Triton's server-side split per point.
Clips come from a dataset, sampled as serving samples them, at the shape the served model declares."""

from __future__ import annotations

import argparse
import json
import platform
import resource
from urllib.parse import urlsplit

from bench.report import best, plot_series
from bench.served import Endpoint, load_point
from export.clips import dataset_clips
from serving.client import StanetClient
from serving.server import DEFAULT_METRICS_PORT


def default_metrics_url(grpc_url: str) -> str:
    host = urlsplit(f"//{grpc_url}").hostname or "127.0.0.1"
    return f"http://{host}:{DEFAULT_METRICS_PORT}/metrics"


def run_remote(args: argparse.Namespace) -> int:
    endpoint = Endpoint(args.url, args.metrics_url or default_metrics_url(args.url))
    batches = [int(b) for b in args.batches.split(",")]
    sweep = [int(c) for c in args.concurrency.split(",")]
    args.output.mkdir(parents=True, exist_ok=True)
    report = {"label": args.label, "url": args.url, "client_machine": platform.node(), "models": {}}
    for model in args.models.split(","):
        with StanetClient(args.url, model) as client:
            client.wait_until_ready(timeout_s=60)
            served = client.model()
        shape = (served.clip_length, served.height, served.width)
        clips = dataset_clips(args.data, ("test", "val"), shape, None, limit=max(32, max(batches))).clips
        points = []
        for batch in batches:
            if batch > served.max_batch_size:
                print(f"stanet bench: {model}: batch {batch} > max_batch_size {served.max_batch_size}, skipped")
                continue
            for concurrency in sweep:
                point = load_point(endpoint, model, clips, concurrency=concurrency, batch=batch, seconds=args.seconds)
                points.append(point)
                print(f"{model:<16} batch {batch:>3} x {concurrency:>2} in flight: {point['clips_per_s']:8.1f} clips/s"
                      f"  p50 {point['p50_ms']:8.2f} ms  p99 {point['p99_ms']:8.2f} ms  codes {point['codes']}",
                      flush=True)
        report["models"][model] = {"clip_shape": list(shape), "points": points,
                                   "best_clips_per_s": best(points)["clips_per_s"]}
    report["client_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (args.output / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    plot_series([(name, entry["points"]) for name, entry in report["models"].items() if entry["points"]],
                f"{args.label}: latency against throughput at {args.url}", args.output / "latency_vs_throughput.png")
    return 0
