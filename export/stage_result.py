"""What one gated export stage returns (export/pipeline.py chains them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StageResult:
    """One gated stage: what it produced (the verified FP32 ONNX, the int8 ONNX, the TensorRT plan or
    the OpenVINO IR), the
    seconds its steps took (`times_seconds` of the report), its sections of export_report.json, and why its
    gate failed (None: it passed)."""

    artifact: bytes | dict[str, bytes]  # OpenVINO: the IR's files by name
    times: dict[str, float]
    sections: dict[str, Any]
    failure: str | None = None
