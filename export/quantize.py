"""INT8 for CPU serving: static QDQ quantization of the Conv layers with calibration clips, and the drift gate
that the int8 graph must pass against the FP32 graph before it is written.

Only Conv is quantized (activations QUInt8, weights QInt8 per channel). The attention MatMul/Gemm layers stay
FP32: quantizing them barely moves the logits but moves the softmax temporal weights by up to 0.5, and saves
no time. Dynamic quantization (ConvInteger) is never used: it makes this model 6-8x slower than FP32
(docs/benchmark.md, "Export and runtime measurements").
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)

from export.clips import ClipSet
from export.parity import FLAT_MAP_ATOL, onnx_session, pearson, run_onnx
from stanet.constants import OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION

INT8_OP_TYPES = ("Conv",)
CALIBRATION_CLIPS = 64  # bounded: min/max calibration saturates quickly and each clip costs a full forward
CALIBRATION_BATCH = 8
GATE_CLIPS = 256  # at most this many clips of the test split are compared

# The int8 gate, against the FP32 graph on the same clips.
MIN_TOP1_AGREEMENT = 0.99
MAX_ACCURACY_DROP = 0.01  # 1 percentage point
MAX_TEMPORAL_DRIFT = 0.1  # absolute change of any frame's temporal attention weight
MIN_SPATIAL_CORRELATION = 0.95  # Pearson correlation of the masks, all clips and frames pooled (see FLAT_MAP_ATOL)


class _ClipReader(CalibrationDataReader):
    def __init__(self, input_name: str, clips: np.ndarray, batch_size: int):
        self._batches = iter([{input_name: clips[i:i + batch_size]} for i in range(0, len(clips), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(fp32_onnx: bytes, calibration: np.ndarray, *, batch_size: int = CALIBRATION_BATCH) -> bytes:
    """FP32 ONNX bytes + calibration clips (N, T, H, W, 3) uint8 -> QDQ int8 ONNX bytes."""
    input_name = onnx.load_from_string(fp32_onnx).graph.input[0].name
    root_logger, level = logging.getLogger(), logging.getLogger().level
    with tempfile.TemporaryDirectory(prefix="stanet-int8-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(fp32_onnx)
        # The quantizer logs a "consider pre-processing" hint on the root logger; ORT's pre-processing
        # (symbolic shape inference + graph optimization) grew this graph instead of simplifying it.
        root_logger.setLevel(logging.ERROR)
        try:
            quantize_static(
                str(source), str(target), _ClipReader(input_name, calibration, batch_size),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(INT8_OP_TYPES),
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        finally:
            root_logger.setLevel(level)
        return target.read_bytes()


@dataclass
class Int8Report:
    passed: bool
    top1_agreement: float
    accuracy_fp32: float | None
    accuracy_int8: float | None
    accuracy_drop: float | None
    temporal_drift_max: float
    temporal_drift_clips_over: int  # clips with some temporal weight moved by more than MAX_TEMPORAL_DRIFT
    spatial_correlation: float
    spatial_correlation_min_clip: float
    spatial_max_abs_diff: float
    probabilities_max_abs_diff: float
    num_clips: int
    source: str
    thresholds: dict[str, float]
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        accuracy = ("" if self.accuracy_drop is None else
                    f"accuracy {self.accuracy_fp32:.2%} -> {self.accuracy_int8:.2%} (drop {self.accuracy_drop:+.2%}), ")
        return (f"top-1 agreement {self.top1_agreement:.2%}, {accuracy}temporal drift max "
                f"{self.temporal_drift_max:.3f} ({self.temporal_drift_clips_over} clips over "
                f"{MAX_TEMPORAL_DRIFT}), spatial correlation {self.spatial_correlation:.4f} "
                f"(worst clip {self.spatial_correlation_min_clip:.4f}) over {self.num_clips} clips of {self.source}")


def check_int8(fp32_onnx: bytes | ort.InferenceSession, int8_onnx: bytes | None, clips: ClipSet, *,
               batch_size: int = CALIBRATION_BATCH, candidate=None) -> Int8Report:
    """Run both graphs on `clips` and measure the drift the int8 gate bounds. `candidate`: a session to gate
    instead of `int8_onnx` (OpenVINO at bf16 or int8, export/openvino_ir.py), held to the same bounds."""
    fp32_session = fp32_onnx if isinstance(fp32_onnx, ort.InferenceSession) else onnx_session(fp32_onnx)
    reference = run_onnx(fp32_session, clips.clips, batch_size)
    got = run_onnx(candidate or onnx_session(int8_onnx), clips.clips, batch_size)
    top1_ref, top1_got = reference[OUTPUT_PROBABILITIES].argmax(-1), got[OUTPUT_PROBABILITIES].argmax(-1)
    labelled = clips.labels >= 0
    accuracy_fp32 = accuracy_int8 = drop = None
    if labelled.any():
        accuracy_fp32 = float((top1_ref[labelled] == clips.labels[labelled]).mean())
        accuracy_int8 = float((top1_got[labelled] == clips.labels[labelled]).mean())
        drop = accuracy_fp32 - accuracy_int8
    spatial_ref, spatial_got = reference[OUTPUT_SPATIAL_ATTENTION], got[OUTPUT_SPATIAL_ATTENTION]
    clip_drift = np.abs(got[OUTPUT_TEMPORAL_ATTENTION] - reference[OUTPUT_TEMPORAL_ATTENTION]).max(axis=-1)  # (N,)
    report = Int8Report(
        passed=False,
        top1_agreement=float((top1_ref == top1_got).mean()),
        accuracy_fp32=accuracy_fp32, accuracy_int8=accuracy_int8, accuracy_drop=drop,
        temporal_drift_max=float(clip_drift.max()),
        temporal_drift_clips_over=int((clip_drift > MAX_TEMPORAL_DRIFT).sum()),
        spatial_correlation=pearson(spatial_ref, spatial_got),
        spatial_correlation_min_clip=min(pearson(r, g) for r, g in zip(spatial_ref, spatial_got)),
        spatial_max_abs_diff=float(np.abs(spatial_got - spatial_ref).max()),
        probabilities_max_abs_diff=float(np.abs(got[OUTPUT_PROBABILITIES] - reference[OUTPUT_PROBABILITIES]).max()),
        num_clips=len(clips), source=clips.source,
        thresholds={"min_top1_agreement": MIN_TOP1_AGREEMENT, "max_accuracy_drop": MAX_ACCURACY_DROP,
                    "max_temporal_drift": MAX_TEMPORAL_DRIFT, "min_spatial_correlation": MIN_SPATIAL_CORRELATION,
                    "flat_map_atol": FLAT_MAP_ATOL},
    )
    if report.top1_agreement < MIN_TOP1_AGREEMENT:
        report.failures.append(f"top-1 agreement {report.top1_agreement:.2%} < {MIN_TOP1_AGREEMENT:.0%}")
    if drop is not None and drop > MAX_ACCURACY_DROP:
        report.failures.append(f"accuracy drop {drop:.2%} > {MAX_ACCURACY_DROP:.0%}")
    if not report.temporal_drift_max <= MAX_TEMPORAL_DRIFT:
        report.failures.append(f"temporal weight drift {report.temporal_drift_max:.3f} > {MAX_TEMPORAL_DRIFT}")
    flat = report.spatial_max_abs_diff <= FLAT_MAP_ATOL
    if not (report.spatial_correlation >= MIN_SPATIAL_CORRELATION or flat):
        report.failures.append(f"spatial mask correlation {report.spatial_correlation:.4f} < "
                               f"{MIN_SPATIAL_CORRELATION} (max abs diff {report.spatial_max_abs_diff:.3g})")
    report.passed = not report.failures
    return report
