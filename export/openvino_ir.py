"""OpenVINO for CPU serving: the IR converted from the verified ONNX graph (no second exporter), an
onnxruntime-session look-alike over it for the gates, and what this CPU can run (bf16 or not).

The IR is saved with its weights in FP32 (`compress_to_fp16=False`): the precision a model runs at is chosen
when it is compiled (INFERENCE_PRECISION_HINT), and the gates run it at that precision on this CPU.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov

from export.errors import ExportError
from serving.python_backend.openvino_runtime import compile_model, compile_properties
from stanet.constants import OPENVINO_BIN_FILE, OPENVINO_XML_FILE

# /proc/cpuinfo flags of a CPU that computes bf16 dot products natively (AVX512_BF16, or AMX tiles).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


def convert_to_ir(onnx_bytes: bytes) -> dict[str, bytes]:
    """ONNX bytes -> {model.xml: ..., model.bin: ...}, with FP32 weights."""
    with tempfile.TemporaryDirectory(prefix="stanet-openvino-") as tmp:
        source = Path(tmp) / "model.onnx"
        source.write_bytes(onnx_bytes)
        model = ov.convert_model(str(source))
        ov.save_model(model, str(Path(tmp) / OPENVINO_XML_FILE), compress_to_fp16=False)
        return {name: (Path(tmp) / name).read_bytes() for name in (OPENVINO_XML_FILE, OPENVINO_BIN_FILE)}


@dataclass(frozen=True)
class _Port:
    name: str


class OpenVinoSession:
    """The IR compiled at one precision, with the part of onnxruntime's InferenceSession the gates use
    (`get_inputs`, `get_outputs`, `run`), so export/parity.py and export/quantize.py compare it unchanged."""

    def __init__(self, ir: dict[str, bytes], precision: str, *, threads: int = 0):
        self.precision = precision
        with tempfile.TemporaryDirectory(prefix="stanet-openvino-") as tmp:
            for name, data in ir.items():
                (Path(tmp) / name).write_bytes(data)
            # Compiled from the bytes that will be written: what the gate passes is what is served.
            self.compiled = compile_model(Path(tmp) / OPENVINO_XML_FILE, compile_properties(
                threads, 1, "LATENCY", "fp32" if precision == "int8" else precision, pinning=False))
        self.request = self.compiled.create_infer_request()
        self._inputs = [_Port(self.compiled.input(0).get_any_name())]
        self._outputs = [_Port(port.get_any_name()) for port in self.compiled.outputs]

    def get_inputs(self) -> list[_Port]:
        return self._inputs

    def get_outputs(self) -> list[_Port]:
        return self._outputs

    def run(self, names, feeds: dict[str, np.ndarray], run_options=None) -> list[np.ndarray]:
        results = self.request.infer(feeds)
        by_name = {name: value for port, value in results.items() for name in port.get_names()}
        return [np.array(by_name[name]) for name in (names or [p.name for p in self._outputs])]


@dataclass(frozen=True)
class Bf16Support:
    available: bool
    reason: str  # which flags / capabilities say so


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str] | None:
    """The first processor's flags from /proc/cpuinfo (None where there is no such file)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def bf16_support(flags: set[str] | None = None, capabilities: list[str] | None = None) -> Bf16Support:
    """Whether this CPU runs bf16 natively: one of BF16_FLAGS in /proc/cpuinfo (where it exists) and BF16 in
    OpenVINO's OPTIMIZATION_CAPABILITIES for the CPU. Arguments: given values instead of this machine's."""
    flags = cpu_flags() if flags is None else flags
    if capabilities is None:
        capabilities = list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    has_flag = [f for f in BF16_FLAGS if flags is not None and f in flags]
    if flags is not None and not has_flag:
        return Bf16Support(False, f"the CPU has neither {' nor '.join(f.upper() for f in BF16_FLAGS)} "
                                  f"(/proc/cpuinfo flags)")
    if "BF16" not in capabilities:
        return Bf16Support(False, f"OpenVINO {ov.__version__} lists no BF16 in the CPU's OPTIMIZATION_CAPABILITIES "
                                  f"({', '.join(capabilities)})")
    shown = ", ".join(f.upper() for f in has_flag) if has_flag else "no /proc/cpuinfo"
    return Bf16Support(True, f"the CPU has {shown} and OpenVINO lists BF16 in its OPTIMIZATION_CAPABILITIES")


def require_bf16(support: Bf16Support) -> None:
    """ExportError for --precision bf16 on a CPU without it, naming the instruction set and offering fp32."""
    if not support.available:
        raise ExportError(f"--precision bf16 needs a CPU with native bf16 ({' or '.join(f.upper() for f in BF16_FLAGS)}): "
                          f"{support.reason}; OpenVINO would run it in fp32 anyway. Export with --precision fp32")
