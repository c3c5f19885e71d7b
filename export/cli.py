"""`stanet export`: a checkpoint -> a verified Triton model directory (see export/pipeline.py for the chain).

Exit codes: 0 written; 1 a verification gate failed (the numbers are printed, nothing is written); 2 bad
input or an environment that cannot run the requested target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.errors import ExportError, GateError
from export.triton_config import INSTANCE_KINDS, PRECISIONS, RUNTIMES, TARGETS
from stanet.constants import MODEL_NAME


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet export", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="a stanet checkpoint (best.pt / last.pt)")
    parser.add_argument("--repository", required=True, type=Path, help="Triton model repository directory")
    parser.add_argument("--target", required=True, choices=TARGETS,
                        help="onnxruntime: model.onnx on Triton's onnxruntime backend; tensorrt: an FP16 "
                             "model.plan built on this GPU; python: model.onnx run by onnxruntime in Triton's "
                             "python backend (the CPU-only Triton from PyPI); openvino: model.xml/.bin on Triton's "
                             "openvino backend (NGC images)")
    parser.add_argument("--name", default=MODEL_NAME, help=f"model name clients call (default: {MODEL_NAME})")
    parser.add_argument("--version", type=int, default=1, help="version folder to write (default: 1)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="Triton max_batch_size (default: 8)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="onnxruntime",
                        help="--target python: the runtime inside the python backend (default: onnxruntime); "
                             "openvino runs the IR converted from the same verified ONNX, at fp32, bf16 or int8")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="default: fp32 on CPU, fp16 on GPU; OpenVINO: bf16 where this CPU has it and its "
                             "gate passes on --data, else fp32; int8 (CPU) needs --calibration")
    parser.add_argument("--calibration", type=Path, metavar="DATA_DIR",
                        help="dataset whose train (or val) split calibrates int8 and whose test split gates it")
    parser.add_argument("--data", type=Path, metavar="DATA_DIR",
                        help="dataset whose test split's clips the gates also compare on (optional)")
    parser.add_argument("--instance-kind", choices=INSTANCE_KINDS,
                        help="default: cpu for onnxruntime/python, gpu for tensorrt; onnxruntime + gpu adds "
                             "Triton's TensorRT execution accelerator")
    parser.add_argument("--instances", type=int, default=0,
                        help="model instances (default: 2 on CPU, see docs/benchmark.md; 1 per GPU)")
    parser.add_argument("--intra-op-threads", type=int, default=0,
                        help="--target python: onnxruntime (or OpenVINO) threads per instance; --target openvino: "
                             "INFERENCE_NUM_THREADS (default: every core, shared by the instances)")
    parser.add_argument("--timing-cache", type=Path, help="TensorRT timing cache file (--target tensorrt)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Imported after parsing: --help and argument errors need no torch.
    from export.pipeline import DEFAULT_TIMING_CACHE, ExportRequest, export_model
    from stanet.checkpoint import CheckpointError

    request = ExportRequest(checkpoint=args.checkpoint, repository=args.repository, target=args.target,
                            name=args.name, version=args.version, max_batch_size=args.max_batch_size,
                            precision=args.precision, instance_kind=args.instance_kind,
                            calibration=args.calibration, data=args.data, instances=args.instances,
                            intra_op_threads=args.intra_op_threads, runtime=args.runtime,
                            timing_cache=args.timing_cache or DEFAULT_TIMING_CACHE)
    try:
        export_model(request)
    except GateError as exc:
        print(f"stanet export: error: {exc}", file=sys.stderr)
        return 1
    except (ExportError, CheckpointError) as exc:
        print(f"stanet export: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
