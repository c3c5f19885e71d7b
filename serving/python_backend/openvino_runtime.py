"""The python backend's second runtime: OpenVINO on the CPU, reading the IR (model.xml + model.bin) that
`stanet export --runtime openvino` converted from the verified ONNX graph.

Plain functions over `BackendSettings` (stanet_backend.py), so the served instance, the export gates and the
in-process benchmark compile the model the same way. Like stanet_backend.py it imports nothing from stanet:
Triton's stub loads it from the version folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import openvino as ov

WAIT_MS = 20  # how often a running call looks at the watchdog's terminate flag
# config.pbtxt values -> OpenVINO's INFERENCE_PRECISION_HINT
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")


def compile_properties(threads: int, streams: int, performance_hint: str, precision: str,
                       pinning: bool) -> dict[str, Any]:
    """The CPU plugin's properties. The precision is always explicit: on a CPU with bf16 OpenVINO's default
    inference precision is bf16, so fp32 (the parity-gated precision) must be asked for."""
    if precision not in PRECISION_HINTS:
        raise ValueError(f"OpenVINO precision must be one of {tuple(PRECISION_HINTS)}, got {precision!r}")
    if performance_hint not in PERFORMANCE_HINTS:
        raise ValueError(f"OpenVINO performance hint must be one of {PERFORMANCE_HINTS}, got {performance_hint!r}")
    return {"INFERENCE_NUM_THREADS": int(threads), "NUM_STREAMS": int(streams),
            "PERFORMANCE_HINT": performance_hint, "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
            "ENABLE_CPU_PINNING": bool(pinning)}


def compile_model(xml_path: str | Path, properties: dict[str, Any]) -> ov.CompiledModel:
    """The IR compiled for the CPU; RuntimeError naming the file when this OpenVINO cannot read it."""
    xml_path = Path(xml_path)
    try:
        model = ov.Core().read_model(str(xml_path))
    except RuntimeError as exc:
        raise RuntimeError(f"OpenVINO {ov.__version__} cannot read {xml_path.name}: {str(exc).splitlines()[0]}; "
                           f"export it again with this OpenVINO") from None
    return ov.Core().compile_model(model, "CPU", properties)


def served_pinning(settings) -> bool:
    """Whether a served instance lets OpenVINO pin its threads to cores: only a lone instance whose threads fit
    the cores. OpenVINO pins each process's threads from the first core of its affinity mask and knows nothing
    of the other instances' stub processes: two one-thread instances would both compute on the first core
    (measured with the demo model: two such processes 22.8 ms per batch-5 call each and half the CPU used,
    against 11.7 ms unpinned)."""
    return bool(settings.allow_spinning) and settings.instances == 1


def create_compiled(xml_path: str | Path, settings) -> ov.CompiledModel:
    """The served compiled model; ValueError if the IR does not take the input the config declares."""
    compiled = compile_model(xml_path, compile_properties(
        settings.intra_op_threads, settings.openvino_streams, settings.openvino_performance_hint,
        settings.openvino_precision, pinning=served_pinning(settings)))
    port = compiled.input(0)
    shape = port.get_partial_shape()
    dims = tuple(d.get_length() if d.is_static else -1 for d in list(shape)[1:])
    if port.get_any_name() != settings.input_name or dims != settings.input_dims:
        raise ValueError(f"config.pbtxt declares input {settings.input_name!r} {list(settings.input_dims)} but "
                         f"{Path(xml_path).name} takes {port.get_any_name()!r} {list(dims)}: the config does not "
                         f"belong to this model; export again")
    missing = [name for name in settings.output_names if name not in
               {n for output in compiled.outputs for n in output.get_names()}]
    if missing:
        raise ValueError(f"{Path(xml_path).name} has no output(s) {missing} that config.pbtxt declares; export again")
    return compiled


def compiled_runner(compiled: ov.CompiledModel, input_name: str,
                    output_names: tuple[str, ...]) -> Callable[..., dict[str, np.ndarray]]:
    """`run(batch, run_options=None)`: one inference on one request of `compiled`. The call runs
    asynchronously so that a watchdog's `run_options.terminate` cancels it; a cancelled request is replaced."""
    holder = [compiled.create_infer_request()]
    ports = [compiled.output(name) for name in output_names]

    def run(batch: np.ndarray, run_options: Any = None) -> dict[str, np.ndarray]:
        request = holder[0]
        request.start_async({input_name: batch}, share_inputs=True)
        while not request.wait_for(WAIT_MS):
            if run_options is not None and getattr(run_options, "terminate", False):
                request.cancel()
                holder[0] = compiled.create_infer_request()
                raise RuntimeError("the OpenVINO call was ended")
        # Copies: the request's buffers are overwritten by the next call.
        return {name: np.array(request.get_tensor(port).data) for name, port in zip(output_names, ports)}

    return run
