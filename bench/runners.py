"""The in-process contenders and this machine's fp32 ceiling, each timed the same way: clips round-robin,
`batch` per call, for `seconds` of wall time after one warm-up call."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from bench.stats import Summary, summarize
from export.triton_config import DEFAULT_INTER_OP_THREADS
from serving.python_backend.stanet_backend import open_session, spinning_allowed

Infer = Callable[[np.ndarray], object]


def timed_loop(infer: Infer, clips: np.ndarray, batch: int, seconds: float) -> Summary:
    """Sequential calls of `infer` on (batch, T, H, W, 3) slices of `clips` for `seconds`."""
    infer(clips[:batch])  # warm-up (allocations, lazy initialization)
    latencies, i, started = [], 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        picks = np.arange(i, i + batch) % len(clips)
        i += batch
        t0 = time.perf_counter()
        infer(clips[picks])
        latencies.append(time.perf_counter() - t0)
    return summarize(latencies, clips=len(latencies) * batch, seconds=time.perf_counter() - started)


def torch_eager(module: torch.nn.Module, threads: int) -> Infer:
    """PyTorch eager in process: what the paper's code or a TorchServe-style handler runs."""
    torch.set_num_threads(threads)
    module.eval()

    def infer(batch: np.ndarray):
        with torch.inference_mode():
            return module(torch.from_numpy(np.ascontiguousarray(batch)))

    return infer


def onnxruntime_session(onnx_path: str | Path, threads: int, input_name: str) -> Infer:
    """onnxruntime in process, opened by the python backend's own session function with its thread rules:
    `threads` intra-op threads, the exported inter-op count, and spinning as the backend decides it for one
    instance with that many threads."""
    session = open_session(onnx_path, threads, int(DEFAULT_INTER_OP_THREADS),
                           spinning_allowed(threads, instances=1))
    return lambda batch: session.run(None, {input_name: batch})


def _gflops(model, feeds: dict[str, np.ndarray], flops: float, threads: int, seconds: float) -> float:
    """FLOP/s of one onnxruntime graph run back to back for `seconds` after a warm-up run."""
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    session.run(None, feeds)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, feeds)
        runs += 1
    return flops * runs / (time.perf_counter() - started) / 1e9


def fp32_ceiling_gflops(threads: int, size: int = 2048, seconds: float = 3.0) -> dict[str, float]:
    """What this CPU sustains on the most favourable dense fp32 work, measured in the same run as the model:
    a large onnxruntime MatMul (size^3) and a large 3x3 Conv (8 x 256 ch x 56 x 56, ResNet-like); the
    ceiling is the faster of the two (onnxruntime's convolution kernels can beat its MatMul)."""
    rng = np.random.default_rng(0)
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "matmul", [a, b], [y])
    matmul = _gflops(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                     {"a": rng.standard_normal((size, size), np.float32),
                      "b": rng.standard_normal((size, size), np.float32)}, 2.0 * size ** 3, threads, seconds)
    n, c, hw = 8, 256, 56
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, hw, hw])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [n, c, hw, hw])
    weight = numpy_helper.from_array(rng.standard_normal((c, c, 3, 3)).astype(np.float32) * 0.02, "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["out"], pads=[1, 1, 1, 1])], "conv", [x], [out],
                              initializer=[weight])
    conv = _gflops(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                   {"x": rng.standard_normal((n, c, hw, hw), np.float32)}, 2.0 * n * c * c * 9 * hw * hw, threads, seconds)
    return {"matmul": matmul, "conv": conv, "ceiling": max(matmul, conv)}
