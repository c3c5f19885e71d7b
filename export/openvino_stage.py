"""The OpenVINO stage of `stanet export` (--target python --runtime openvino, --target openvino): which
precision to serve, and the gate the converted IR must pass at it before anything is written.

- fp32: the IR must match PyTorch as the ONNX graph does (export/parity.py: max abs diff <= 1e-4, same top-1).
- bf16 and int8: the IR, compiled at that precision on this CPU, must pass the drift gate of
  export/quantize.py against the FP32 onnxruntime graph on the --data test clips (int8 without --data: the
  calibration set's test split).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import onnxruntime as ort

from export.clips import ClipSet
from export.errors import ExportError
from export.onnx_graph import ServingModule
from export.openvino_ir import OpenVinoSession, bf16_support, convert_to_ir, require_bf16
from export.parity import check_parity
from export.quantize import check_int8
from export.stage_result import StageResult


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str
    reason: str  # printed and kept in export_report.json
    automatic: bool  # bf16 picked for this CPU: a failed gate falls back to fp32 instead of failing the export


def choose_precision(options, requested: str | None, data: Path | None, *, support=None) -> PrecisionChoice:
    """The precision of an OpenVINO export. Asked for: that one (bf16 refused on a CPU without it, or without
    --data to gate it on). Not asked for: bf16 where this CPU has it and --data is given, else fp32."""
    support = support or bf16_support()
    if requested == "bf16":
        require_bf16(support)
        if data is None:
            raise ExportError("--precision bf16 is gated on real clips: give --data DATA_DIR (a dataset whose test "
                              "split the drift gate compares on)")
        return PrecisionChoice("bf16", f"asked for; {support.reason}", automatic=False)
    if requested is not None:
        return PrecisionChoice(requested, "asked for", automatic=False)
    if not support.available:
        return PrecisionChoice("fp32", f"bf16 not native here: {support.reason}", automatic=False)
    if data is None:
        return PrecisionChoice("fp32", f"{support.reason}, but there is no --data to gate bf16 on", automatic=False)
    return PrecisionChoice("bf16", f"{support.reason}; bf16 if its drift gate passes on --data, else fp32",
                           automatic=True)


def openvino_stage(precision: str, onnx_bytes: bytes, module: ServingModule, fp32_session: ort.InferenceSession,
                   parity_sets: list[ClipSet], gate_clips: ClipSet | None, batch_sizes: tuple[int, ...],
                   log: Callable[[str], None]) -> StageResult:
    """Convert `onnx_bytes` (the verified FP32 graph, or the int8 QDQ graph) to the IR and gate it at
    `precision`. The artifact is the IR's files {model.xml, model.bin}; its section is `openvino`."""
    tick = time.perf_counter()
    ir = convert_to_ir(onnx_bytes)
    session = OpenVinoSession(ir, precision)
    times = {"openvino_convert": time.perf_counter() - tick}
    tick = time.perf_counter()
    section = {"precision": precision, "sizes_bytes": {name: len(data) for name, data in ir.items()}}
    if precision == "fp32":
        parity = {s.source: check_parity(module, None, s.clips, batch_sizes=batch_sizes, session=session)
                  for s in parity_sets}
        for source, result in parity.items():
            log(f"openvino fp32 parity ({source}): {result.summary()}")
        failed = [f"{source}: {'; '.join(r.failures)} [{r.summary()}]" for source, r in parity.items()
                  if not r.passed]
        failure = ("OpenVINO FP32 parity gate failed, nothing was written: " + " | ".join(failed)) if failed else None
        section["parity"] = {source: r.to_dict() for source, r in parity.items()}
    else:
        if gate_clips is None:
            raise ExportError(f"OpenVINO {precision} is gated on real clips: give --data DATA_DIR")
        gate = check_int8(fp32_session, None, gate_clips, candidate=session)
        log(f"openvino {precision} drift gate: {gate.summary()}")
        failure = None if gate.passed else (f"OpenVINO {precision} drift gate failed, nothing was written: "
                                            + "; ".join(gate.failures) + f" [{gate.summary()}]")
        section["drift"] = gate.to_dict()
    times["openvino_gate"] = time.perf_counter() - tick
    return StageResult(ir, times, {"openvino": section}, failure)
