"""Layouts of a served OpenVINO model, measured side by side in one run: the model folder a `stanet export
--target python --runtime openvino` wrote, copied once per layout with its config.pbtxt's instance count,
threads, streams and performance hint changed (the version folder, and so its hashes, untouched), served by
the embedded Triton, closed-loop load at concurrency 1, 2 and 4.

    python -m bench.openvino_layouts --model runs/bench/ov2/model_repository/stanet_ov_bf16 \\
        --checkpoint runs/demo/best.pt --data data/demo --seconds 4
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

from bench.cli import BENCH_GRPC_PORT, BENCH_METRICS_PORT
from bench.stats import summarize
from export.clips import dataset_clips
from serving.loadgen import closed_loop
from serving.python_backend.stanet_backend import (INTRA_OP_PARAMETER, OPENVINO_HINT_PARAMETER,
                                                   OPENVINO_STREAMS_PARAMETER)
from serving.server import ServerOptions, TritonServer
from stanet.checkpoint import load_checkpoint
from stanet.constants import CONFIG_FILE

# name -> (instances, threads per instance, streams per instance, performance hint)
LAYOUTS = {"2 instances x 1 thread, 1 stream, LATENCY (the export's default)": (2, 1, 1, "LATENCY"),
           "1 instance x 2 threads, 1 stream, LATENCY": (1, 2, 1, "LATENCY"),
           "1 instance x 2 threads, 2 streams, THROUGHPUT": (1, 2, 2, "THROUGHPUT")}


def _set(config: str, key: str, value: str) -> str:
    return re.sub(rf'(key: "{key}" value: {{ string_value: )"[^"]*"', rf'\1"{value}"', config)


def layout_config(config: str, name: str, instances: int, threads: int, streams: int, hint: str) -> str:
    config = re.sub(r'^name: "[^"]*"', f'name: "{name}"', config, flags=re.M)
    config = re.sub(r"count: \d+", f"count: {instances}", config)
    config = _set(config, INTRA_OP_PARAMETER, str(threads))
    config = _set(config, OPENVINO_STREAMS_PARAMETER, str(streams))
    return _set(config, OPENVINO_HINT_PARAMETER, hint)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openvino_layouts", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="an exported OpenVINO python-backend model folder")
    parser.add_argument("--checkpoint", type=Path, required=True, help="its checkpoint (for the clip shape)")
    parser.add_argument("--data", type=Path, required=True, help="dataset whose test clips are sent")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    checkpoint = load_checkpoint(args.checkpoint)
    clips = dataset_clips(args.data, ("test",), checkpoint.model_config, checkpoint.class_names, limit=32).clips
    for title, layout in LAYOUTS.items():
        with tempfile.TemporaryDirectory(prefix="stanet-layout-") as tmp:
            repository = Path(tmp) / "models"
            shutil.copytree(args.model, repository / "m")
            config = repository / "m" / CONFIG_FILE
            config.write_text(layout_config(config.read_text(), "m", *layout))
            options = ServerOptions(repository=repository, grpc_port=BENCH_GRPC_PORT, metrics_port=BENCH_METRICS_PORT, exit_timeout_s=10)
            with TritonServer(options) as server:
                points = []
                for concurrency in (1, 2, 4):
                    result = closed_loop(server.options.grpc_url, "m", clips, concurrency=concurrency,
                                         duration_s=args.seconds)
                    p = summarize(result.latencies_s, result.clips, result.elapsed_s)
                    points.append(f"c{concurrency} {p.clips_per_s:.1f} clips/s, p50 {p.p50_ms:.2f} ms, "
                                  f"p99 {p.p99_ms:.1f} ms")
        print(f"{title}: " + "; ".join(points), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
