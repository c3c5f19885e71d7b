"""`python -m bench.pinning`: what pinning one-thread instances to a core each does to a served model, measured
side by side in one run. The checkpoint is exported once (python target, fp32, one onnxruntime thread per
instance, one instance per core) and copied with `pin_instances: off`; the two servers are alternated for
--rounds rounds at one concurrency, and each round prints the throughput, the stub's per-execution split
(stanet_backend_phase_seconds: hand-off, model call, outputs, ..., and the python backend's hop) and the CPU
time the server and the client spent per clip. docs/benchmark.md, "The small-model hop", came from it."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pinning", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="dataset whose test split supplies the clips")
    parser.add_argument("--output", type=Path, required=True, help="folder for the two repositories and pinning.json")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two servers (default: 3)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default: 16)")
    parser.add_argument("--seconds", type=float, default=6.0, help="per measured point (default: 6)")
    return parser.parse_args(argv)


def with_parameter(config_text: str, key: str, value: str) -> str:
    """config.pbtxt text with one more model parameter (the export always writes a `parameters` section)."""
    if "parameters [\n" not in config_text:
        raise ValueError("config.pbtxt has no parameters section; export with --target python")
    entry = f'  {{ key: "{key}" value: {{ string_value: "{value}" }} }},\n'
    return config_text.replace("parameters [\n", "parameters [\n" + entry, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.cli import BENCH_GRPC_PORT, BENCH_METRICS_PORT
    from bench.report import render_stub_split
    from bench.served import Endpoint, load_point
    from export.clips import dataset_clips
    from export.pipeline import ExportRequest, export_model
    from serving.python_backend.stanet_backend import PIN_PARAMETER, available_cores
    from serving.server import ServerOptions, TritonServer
    from stanet.checkpoint import load_checkpoint
    from stanet.constants import CONFIG_FILE, MODEL_NAME

    args.output.mkdir(parents=True, exist_ok=True)
    pinned, unpinned = args.output / "repository_pinned", args.output / "repository_unpinned"
    if pinned.exists() or unpinned.exists():
        raise SystemExit(f"python -m bench.pinning: error: {args.output} holds repositories already; choose a new "
                         f"--output")
    export_model(ExportRequest(checkpoint=args.checkpoint, repository=pinned, target="python",
                               instances=available_cores(), intra_op_threads=1), log=lambda message: None)
    shutil.copytree(pinned, unpinned)
    config = unpinned / MODEL_NAME / CONFIG_FILE
    config.write_text(with_parameter(config.read_text(), PIN_PARAMETER, "off"))
    checkpoint = load_checkpoint(args.checkpoint)
    clips = dataset_clips(args.data, ("test", "val"), checkpoint.model_config, checkpoint.class_names, limit=32).clips
    results: dict = {"cores": available_cores(), "concurrency": args.concurrency, "rounds": []}
    for round_index in range(args.rounds):
        for name, repository in (("pinned", pinned), ("unpinned", unpinned)):
            options = ServerOptions(repository=repository, grpc_port=BENCH_GRPC_PORT,
                                    metrics_port=BENCH_METRICS_PORT, exit_timeout_s=10)
            with TritonServer(options) as server:
                endpoint = Endpoint.of(server)
                load_point(endpoint, MODEL_NAME, clips, concurrency=args.concurrency, seconds=2.0)  # warm-up
                point = load_point(endpoint, MODEL_NAME, clips, concurrency=args.concurrency, seconds=args.seconds)
            results["rounds"].append({"layout": name, "round": round_index, **point})
            print(f"round {round_index + 1} {name:<8} {point['clips_per_s']:7.1f} clips/s, p50 {point['p50_ms']:.2f} "
                  f"ms; {render_stub_split(point) if point.get('stub_ms') else 'no stub split'}", flush=True)
    for name in ("pinned", "unpinned"):
        rows = [r for r in results["rounds"] if r["layout"] == name]
        mean = statistics.mean(r["clips_per_s"] for r in rows)
        handoff = statistics.mean(r["stub_ms"]["handoff"] for r in rows if r.get("stub_ms"))
        per_clip = statistics.mean(r["stub_ms"]["model"] / r["average_batch"] for r in rows if r.get("stub_ms"))
        print(f"{name}: mean {mean:.1f} clips/s, hand-off {handoff:.3f} ms per execution, model call "
              f"{per_clip:.3f} ms per clip")
    (args.output / "pinning.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
