"""`python -m bench.tune`: the embedded Triton's CPU layout, measured side by side in one run. For each
instances x onnxruntime-threads layout, the same checkpoint is exported (python target, fp32), served, and
driven at concurrency 1 (a lone client's latency) and at a higher concurrency (throughput); in-process
onnxruntime at batch 1 with every core is measured first as the reference. The layout docs/benchmark.md
chose for CPU_INSTANCES came from this table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="dataset whose test split supplies the clips")
    parser.add_argument("--output", type=Path, required=True, help="folder for the repositories and tune.json")
    parser.add_argument("--layouts", default="1x2,2x1,2x2",
                        help="INSTANCESxTHREADS per layout, comma separated (default: 1x2,2x1,2x2)")
    parser.add_argument("--concurrency", type=int, default=4, help="the throughput point (default: 4)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per point (default: 8)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.runners import onnxruntime_session, timed_loop
    from bench.served import Endpoint, load_point
    from bench.cli import BENCH_GRPC_PORT, BENCH_METRICS_PORT
    from export.clips import dataset_clips
    from export.pipeline import ExportRequest, export_model
    from serving.python_backend.stanet_backend import available_cores
    from serving.server import ServerOptions, TritonServer
    from stanet.checkpoint import load_checkpoint
    from stanet.constants import INPUT_CLIP, MODEL_NAME, ONNX_FILE

    layouts = [tuple(int(n) for n in item.split("x")) for item in args.layouts.split(",")]
    args.output.mkdir(parents=True, exist_ok=True)
    checkpoint = load_checkpoint(args.checkpoint)
    clips = dataset_clips(args.data, ("test", "val"), checkpoint.model_config, checkpoint.class_names, limit=32).clips
    results: dict = {"cores": available_cores(), "layouts": []}
    for instances, threads in layouts:
        repository = args.output / f"repository_{instances}x{threads}"
        export_model(ExportRequest(checkpoint=args.checkpoint, repository=repository, target="python",
                                   instances=instances, intra_op_threads=threads), log=lambda message: None)
        if "onnxruntime_b1" not in results:
            session = onnxruntime_session(repository / MODEL_NAME / "1" / ONNX_FILE, available_cores(), INPUT_CLIP)
            results["onnxruntime_b1"] = timed_loop(session, clips, 1, args.seconds).to_dict()
            del session
        options = ServerOptions(repository=repository, grpc_port=BENCH_GRPC_PORT, metrics_port=BENCH_METRICS_PORT,
                                exit_timeout_s=10)
        with TritonServer(options) as server:
            endpoint = Endpoint.of(server)
            points = [load_point(endpoint, MODEL_NAME, clips, concurrency=c, seconds=args.seconds)
                      for c in (1, args.concurrency)]
        results["layouts"].append({"instances": instances, "intra_op_threads": threads, "points": points})
        print(f"{instances} instance(s) x {threads} thread(s): c1 p50 {points[0]['p50_ms']:.2f} ms p99 "
              f"{points[0]['p99_ms']:.2f} ms {points[0]['clips_per_s']:.1f} clips/s; c{args.concurrency} "
              f"{points[1]['clips_per_s']:.1f} clips/s p99 {points[1]['p99_ms']:.2f} ms", flush=True)
    reference = results["onnxruntime_b1"]
    print(f"in-process onnxruntime batch 1, {available_cores()} threads: p50 {reference['p50_ms']:.2f} ms, "
          f"{reference['clips_per_s']:.1f} clips/s")
    (args.output / "tune.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
