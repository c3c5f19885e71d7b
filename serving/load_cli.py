"""`stanet load [VIDEO...]`: closed-loop gRPC load on a stanet server, with the client-observed latency
exported for Prometheus (stanet_client_request_duration_seconds) while it runs.

Exit codes: 0 the load ran (errors are counted and printed, not fatal); 2 bad arguments or no server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from serving.client import DEFAULT_URL, StanetClient, parse_args_with_tls
from serving.errors import ServingError
from serving.loadgen import DEFAULT_METRICS_PORT, ClientMetrics, closed_loop, open_loop
from stanet.constants import MODEL_NAME
from stanet.video import VideoDecodeError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet load", description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path, metavar="VIDEO",
                        help="videos to send (sampled like `stanet infer`); none: random clips of the served shape")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"Triton gRPC address (default: {DEFAULT_URL})")
    parser.add_argument("--model", default=MODEL_NAME, help=f"model name (default: {MODEL_NAME})")
    parser.add_argument("--concurrency", type=int, default=2, help="closed loop: requests in flight (default: 2)")
    parser.add_argument("--rate", type=float, default=0.0, metavar="PER_SECOND",
                        help="open loop instead: one clip per request at this fixed rate (default: closed loop)")
    parser.add_argument("--batch-size", type=int, default=1, help="clips per request (default: 1)")
    parser.add_argument("--duration", type=float, default=60.0, metavar="SECONDS", help="default: 60")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="deadline per request")
    parser.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT,
                        help=f"serve client metrics for Prometheus here (default: {DEFAULT_METRICS_PORT}; 0: off)")
    parser.add_argument("--metrics-address", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for the server to become ready (default: 0)")
    args = parse_args_with_tls(parser, argv)
    if args.concurrency < 1 or args.batch_size < 1 or args.duration <= 0:
        parser.error("--concurrency and --batch-size must be >= 1 and --duration > 0")
    return args


def load_clips(client: StanetClient, videos: list[Path], count: int = 8) -> np.ndarray:
    """(N, T, H, W, 3) uint8: the videos' clips, or `count` random clips of the served shape."""
    if videos:
        return np.stack([client.prepare_video(v).clip for v in videos])
    model = client.model()
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, model.clip_length, model.height, model.width, 3), dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with StanetClient(args.url, args.model, timeout_s=args.timeout, **args.tls) as client:
            client.wait_until_ready(args.wait)
            clips = load_clips(client, args.videos)
    except (ServingError, VideoDecodeError) as exc:
        print(f"stanet load: error: {exc}", file=sys.stderr)
        return 2
    metrics = ClientMetrics()
    if args.metrics_port:
        try:
            metrics.serve(args.metrics_address, args.metrics_port)
        except OSError as exc:
            print(f"stanet load: error: cannot serve metrics on {args.metrics_address}:{args.metrics_port} "
                  f"({exc.strerror}); choose another --metrics-port or 0", file=sys.stderr)
            return 2
        print(f"stanet load: client metrics on http://{args.metrics_address}:{args.metrics_port}/metrics", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.rate > 0:
        print(f"stanet load: open loop, {args.rate:g} requests/s for {args.duration:g} s against {args.url}...",
              flush=True)
        result = open_loop(args.url, args.model, clips, rate_per_s=args.rate, duration_s=args.duration,
                           metrics=metrics, timeout_s=args.timeout, client_options=args.tls)
    else:
        print(f"stanet load: {args.concurrency} in flight, {args.batch_size} clip(s) per request, for "
              f"{args.duration:g} s against {args.url}...", flush=True)
        result = closed_loop(args.url, args.model, clips, concurrency=args.concurrency, duration_s=args.duration,
                             metrics=metrics, batch_size=args.batch_size, timeout_s=args.timeout, stop=stop,
                             client_options=args.tls)
    metrics.close()
    print(f"stanet load: {result.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
