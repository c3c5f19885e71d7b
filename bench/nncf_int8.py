"""INT8 by OpenVINO's own post-training quantization (NNCF) against the export's QDQ graph, each held to the
export's int8 drift gate (export/quantize.py) on the same clips: which int8 keeps the attention.

    python -m bench.nncf_int8 --checkpoint RUN/best.pt --data DATA [--variants qdq,nncf,nncf_trunk]

Each variant quantizes the FP32 graph `stanet export` verifies, calibrated on the --data train split (64 clips,
as the export), and is compared with onnxruntime's FP32 graph on the test split (up to 256 clips):

- `qdq`: what `stanet export --precision int8` serves (onnxruntime's static QDQ of the convolutions, weights per
  channel), converted to OpenVINO's IR as the export does.
- `nncf`: nncf.quantize on the FP32 IR with its defaults (symmetric int8, weights per channel, every Conv,
  MatMul and Gemm it can, fast bias correction).
- `nncf_trunk`: the same with the layers after the trunk (mask net, temporal attention, ConvLSTM, classifier)
  kept in FP32, since the temporal weights are what the gate bounds most tightly.
- `nncf_mixed_trunk`: `nncf_trunk` with the MIXED preset (asymmetric activations).
- `nncf_trunk_bias`: `nncf_trunk` with the full (slower, data-driven) bias correction.
- `nncf_accuracy`: nncf.quantize_with_accuracy_control with the gate's own temporal term as its metric: every
  layer quantized first, then the layers that move the temporal weights most on the --data val split put back
  to FP32 one by one until the largest change of a temporal weight there is at most ACCURACY_CONTROL_DRIFT
  (half the gate's bound, so that the test split has room). The val split controls, the test split gates.

A measurement, not a path of the export (NNCF is not among the project's requirements): its figures are in
docs/benchmark.md, "INT8 by NNCF on ResNet-18".
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import openvino as ov

try:
    import nncf
except ImportError:  # a measurement's dependency, not the project's: requirements.txt does not install it
    raise SystemExit("python -m bench.nncf_int8 needs NNCF, which requirements.txt does not install: "
                     ".venv/bin/pip install nncf==3.4.0 (the version measured in docs/benchmark.md)") from None

from export.clips import dataset_clips
from export.onnx_graph import export_onnx, serving_module
from export.openvino_ir import OpenVinoSession, convert_to_ir
from export.parity import onnx_session, run_onnx
from export.quantize import (CALIBRATION_BATCH, CALIBRATION_CLIPS, GATE_CLIPS, MAX_TEMPORAL_DRIFT, check_int8,
                             quantize_int8)
from stanet.checkpoint import load_checkpoint
from stanet.constants import OPENVINO_BIN_FILE, OPENVINO_XML_FILE, OUTPUT_TEMPORAL_ATTENTION

# The served graph's layers after the trunk, by the ONNX node names they keep in the IR (export/onnx_graph.py
# wraps the recognizer as `model`).
HEAD_PATTERNS = (".*/model/spatial/.*", ".*/model/temporal/.*", ".*/model/projection/.*", ".*/model/classifier/.*")

TRUNK_ONLY = {"ignored_scope": nncf.IgnoredScope(patterns=list(HEAD_PATTERNS), validate=False)}

VARIANTS = {
    "qdq": None,
    "nncf": {},
    "nncf_trunk": TRUNK_ONLY,
    "nncf_mixed_trunk": {**TRUNK_ONLY, "preset": nncf.QuantizationPreset.MIXED},
    "nncf_trunk_bias": {**TRUNK_ONLY, "fast_bias_correction": False},
    "nncf_accuracy": "accuracy_control",
}
ACCURACY_CONTROL_DRIFT = MAX_TEMPORAL_DRIFT / 2
CONTROL_CLIPS = 64  # of the val split: each control step runs all of them once


def ir_bytes(model: ov.Model) -> dict[str, bytes]:
    """An OpenVINO model -> {model.xml, model.bin}, as OpenVinoSession reads them."""
    with tempfile.TemporaryDirectory(prefix="stanet-nncf-") as tmp:
        ov.save_model(model, str(Path(tmp) / OPENVINO_XML_FILE), compress_to_fp16=False)
        return {name: (Path(tmp) / name).read_bytes() for name in (OPENVINO_XML_FILE, OPENVINO_BIN_FILE)}


def nncf_ir(fp32_ir: dict[str, bytes], calibration, options: dict) -> dict[str, bytes]:
    """The FP32 IR quantized by nncf.quantize with `options`, calibrated on `calibration` (N, T, H, W, 3)."""
    with tempfile.TemporaryDirectory(prefix="stanet-nncf-") as tmp:
        for name, data in fp32_ir.items():
            (Path(tmp) / name).write_bytes(data)
        model = ov.Core().read_model(str(Path(tmp) / OPENVINO_XML_FILE))
        batches = [calibration[i:i + CALIBRATION_BATCH] for i in range(0, len(calibration), CALIBRATION_BATCH)]
        quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches), **options)
        return ir_bytes(quantized)


def temporal_drift_metric(compiled: ov.CompiledModel, items) -> tuple[float, list[float]]:
    """nncf's validation_fn: `items` are (clip (1, T, H, W, 3), its FP32 temporal weights (1, T)); the metric
    is minus the largest change of a temporal weight (higher is better), with each clip's own as the per-clip
    values NNCF ranks the layers by."""
    drifts = []
    for clip, reference in items:
        weights = compiled(clip)[compiled.output(OUTPUT_TEMPORAL_ATTENTION)]  # (1, T)
        drifts.append(float(np.abs(np.asarray(weights) - reference).max()))
    return -max(drifts), [-d for d in drifts]


def accuracy_controlled_ir(fp32_ir: dict[str, bytes], calibration, control, fp32_session) -> dict[str, bytes]:
    """The FP32 IR quantized with NNCF's accuracy control on the temporal drift of the `control` clips
    (N, T, H, W, 3) against `fp32_session`'s weights."""
    reference = run_onnx(fp32_session, control, CALIBRATION_BATCH)[OUTPUT_TEMPORAL_ATTENTION]  # (N, T)
    items = [(control[i:i + 1], reference[i:i + 1]) for i in range(len(control))]
    with tempfile.TemporaryDirectory(prefix="stanet-nncf-") as tmp:
        for name, data in fp32_ir.items():
            (Path(tmp) / name).write_bytes(data)
        model = ov.Core().read_model(str(Path(tmp) / OPENVINO_XML_FILE))
        batches = [calibration[i:i + CALIBRATION_BATCH] for i in range(0, len(calibration), CALIBRATION_BATCH)]
        quantized = nncf.quantize_with_accuracy_control(
            model, nncf.Dataset(batches), nncf.Dataset(items, lambda item: item[0]), temporal_drift_metric,
            max_drop=ACCURACY_CONTROL_DRIFT, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(batches))
        return ir_bytes(quantized)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nncf_int8", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="dataset: train split calibrates, test split gates")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--output", help="JSON file for the gate reports")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; expected some of {', '.join(VARIANTS)}")

    nncf.set_log_level(logging.ERROR)  # one line per node it leaves out otherwise
    checkpoint = load_checkpoint(args.checkpoint)
    config = checkpoint.model_config
    module, _ = serving_module(checkpoint.build_model().eval())
    fp32_onnx = export_onnx(module).onnx_bytes
    fp32_session = onnx_session(fp32_onnx)
    calibration = dataset_clips(args.data, ("train", "val"), config, checkpoint.class_names, limit=CALIBRATION_CLIPS)
    gate_clips = dataset_clips(args.data, ("test",), config, checkpoint.class_names, limit=GATE_CLIPS)
    fp32_ir = convert_to_ir(fp32_onnx)
    reports = {}
    for name in variants:
        started = time.perf_counter()
        if VARIANTS[name] is None:
            ir = convert_to_ir(quantize_int8(fp32_onnx, calibration.clips))
        elif VARIANTS[name] == "accuracy_control":
            control = dataset_clips(args.data, ("val",), config, checkpoint.class_names, limit=CONTROL_CLIPS)
            ir = accuracy_controlled_ir(fp32_ir, calibration.clips, control.clips, fp32_session)
        else:
            ir = nncf_ir(fp32_ir, calibration.clips, VARIANTS[name])
        quantize_s = time.perf_counter() - started
        gate = check_int8(fp32_session, None, gate_clips, candidate=OpenVinoSession(ir, "int8"))
        reports[name] = {**gate.to_dict(), "quantize_seconds": quantize_s}
        verdict = "pass" if gate.passed else "refused: " + "; ".join(gate.failures)
        print(f"{name:<18} {gate.summary()}, probabilities max abs diff {gate.probabilities_max_abs_diff:.2e} "
              f"[{verdict}] ({quantize_s:.0f} s to quantize)", flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps({"checkpoint": args.checkpoint, "data": args.data,
                                                 "calibration": calibration.source, "variants": reports}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
