"""What OpenVINO's thread pinning is worth at batch 1, in process: the same IR compiled twice, as a lone served
instance compiles it (ENABLE_CPU_PINNING on) and as each of two instances does (off: OpenVINO would pin both
stubs' threads from the first core, serving/python_backend/openvino_runtime.py `served_pinning`), timed
alternately in rounds so that the machine's drift falls on both alike.

    python -m bench.openvino_pinning --checkpoint RUN/best.pt [--precision bf16] [--rounds 3] [--seconds 5]

The served model's concurrency-1 latency runs unpinned with the default two instances; this says how much of
its distance to the in-process figure (which `stanet bench` measures pinned) is the pinning alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from bench.openvino_runners import openvino_in_process
from bench.runners import timed_loop
from export.onnx_graph import export_onnx, serving_module
from export.openvino_ir import convert_to_ir
from stanet.checkpoint import load_checkpoint
from stanet.constants import OPENVINO_XML_FILE

SETTINGS = {"pinned": True, "unpinned": False}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openvino_pinning", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--threads", type=int, default=0, help="OpenVINO threads (default: every core)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="per setting and round")
    parser.add_argument("--output", help="JSON file for the rounds")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")

    checkpoint = load_checkpoint(args.checkpoint)
    config = checkpoint.model_config
    module, _ = serving_module(checkpoint.build_model().eval())
    clips = np.random.default_rng(0).integers(0, 256, size=(8, config.clip_length, config.height, config.width, 3),
                                              dtype=np.uint8)  # (8, T, H, W, 3): time does not depend on content
    rounds: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="stanet-pinning-") as tmp:
        for name, data in convert_to_ir(export_onnx(module).onnx_bytes).items():
            (Path(tmp) / name).write_bytes(data)
        runners = {name: openvino_in_process(Path(tmp) / OPENVINO_XML_FILE, args.threads, args.precision,
                                             pinning=pinning) for name, pinning in SETTINGS.items()}
        for index in range(args.rounds):
            for name in (SETTINGS if index % 2 == 0 else reversed(SETTINGS)):
                summary = timed_loop(runners[name], clips, 1, args.seconds)
                rounds[name].append(summary.to_dict())
                print(f"round {index + 1} {name:<9} p50 {summary.p50_ms:8.2f} ms  p99 {summary.p99_ms:8.2f} ms  "
                      f"{summary.clips_per_s:7.2f} clips/s", flush=True)
    medians = {name: float(np.median([r["p50_ms"] for r in rounds[name]])) for name in SETTINGS}
    print(f"median of the rounds' p50: pinned {medians['pinned']:.2f} ms, unpinned {medians['unpinned']:.2f} ms "
          f"({medians['unpinned'] - medians['pinned']:+.2f} ms, "
          f"{100 * (medians['unpinned'] / medians['pinned'] - 1):+.1f}%)")
    if args.output:
        Path(args.output).write_text(json.dumps({"checkpoint": args.checkpoint, "precision": args.precision,
                                                 "rounds": rounds, "median_p50_ms": medians}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
