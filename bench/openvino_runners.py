"""The benchmark's bf16 and OpenVINO contenders, timed like the others (bench/runners.py `timed_loop`): PyTorch
eager under bf16 autocast (the fair PyTorch peer on a CPU with bf16), OpenVINO in process at each precision
(compiled by the python backend's own functions, so in-process and served run the same thing), and this
machine's OpenVINO ceiling per precision (a large MatMul and a large 3x3 Conv)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import openvino as ov
import torch
from openvino import opset13 as ops

from bench.runners import Infer
from serving.python_backend.openvino_runtime import compile_model, compile_properties, compiled_runner
from stanet.constants import INPUT_CLIP, OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION

OUTPUTS = (OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)


def torch_bf16_autocast(module: torch.nn.Module, threads: int) -> Infer:
    """PyTorch eager with `torch.autocast("cpu", dtype=torch.bfloat16)`: its convolutions and matrix products in
    bf16 (oneDNN's AVX512_BF16 / AMX kernels where the CPU has them)."""
    torch.set_num_threads(threads)
    module.eval()

    def infer(batch: np.ndarray):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return module(torch.from_numpy(np.ascontiguousarray(batch)))

    return infer


def openvino_in_process(xml_path: str | Path, threads: int, precision: str, *, pinning: bool = True) -> Infer:
    """The IR compiled as one served instance compiles it (one stream, LATENCY hint, pinned: one instance;
    `pinning=False` as each of two instances compiles it)."""
    hint = "bf16" if precision == "bf16" else "fp32"  # an int8 IR carries its own precision
    compiled = compile_model(xml_path, compile_properties(threads, 1, "LATENCY", hint, pinning=pinning))
    run = compiled_runner(compiled, INPUT_CLIP, OUTPUTS)
    return lambda batch: run(np.ascontiguousarray(batch))


def _gflops(model: ov.Model, feeds: dict[str, np.ndarray], flops: float, threads: int, precision: str,
            seconds: float) -> float:
    compiled = ov.Core().compile_model(model, "CPU", compile_properties(threads, 1, "LATENCY", precision,
                                                                        pinning=True))
    request = compiled.create_infer_request()
    request.infer(feeds)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        request.infer(feeds)
        runs += 1
    return flops * runs / (time.perf_counter() - started) / 1e9


def openvino_ceiling_gflops(threads: int, precision: str, size: int = 2048, seconds: float = 3.0) -> dict[str, float]:
    """What OpenVINO sustains on this CPU at `precision` (fp32 or bf16) on dense work measured in the same run:
    a size^3 MatMul and a 3x3 Conv of 8 x 256 ch x 56 x 56 (ResNet-like); the ceiling is the faster."""
    rng = np.random.default_rng(0)
    a = ops.parameter([size, size], np.float32, name="a")
    b = ops.constant(rng.standard_normal((size, size)).astype(np.float32))
    matmul = _gflops(ov.Model([ops.matmul(a, b, False, False)], [a]),
                     {"a": rng.standard_normal((size, size)).astype(np.float32)}, 2.0 * size ** 3, threads,
                     precision, seconds)
    n, c, hw = 8, 256, 56
    x = ops.parameter([n, c, hw, hw], np.float32, name="x")
    w = ops.constant((rng.standard_normal((c, c, 3, 3)) * 0.02).astype(np.float32))
    conv = _gflops(ov.Model([ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])], [x]),
                   {"x": rng.standard_normal((n, c, hw, hw)).astype(np.float32)}, 2.0 * n * c * c * 9 * hw * hw,
                   threads, precision, seconds)
    return {"matmul": matmul, "conv": conv, "ceiling": max(matmul, conv)}
