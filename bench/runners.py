"""The in-process contenders and this machine's fp32 ceiling, each timed the same way: clips round-robin,
`batch` per call, for `seconds` of wall time after one warm-up call."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

import onnxruntime as ort
import torch
from onnx import TensorProto, helper

from bench.stats import Summary, summarize

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


def onnxruntime_session(onnx_path: str, threads: int, input_name: str) -> Infer:
    """onnxruntime in process with the settings the served model uses (intra-op = cores, inter-op 1)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {input_name: batch})


def fp32_ceiling_gflops(threads: int, size: int = 2048, seconds: float = 3.0) -> float:
    """GFLOP/s of a large fp32 MatMul in onnxruntime with `threads` threads: what this CPU sustains on
    the most favourable dense work, measured in the same run as the model."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "matmul", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal((size, size), np.float32), "b": rng.standard_normal((size, size), np.float32)}
    session.run(None, feeds)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run(None, feeds)
        runs += 1
    return 2.0 * size ** 3 * runs / (time.perf_counter() - started) / 1e9



