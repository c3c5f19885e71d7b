"""A quick side measurement where a full `stanet bench` run of the ResNet-18 model does not fit: the random-
weight ResNet-18 trunk model (T=16, 224x224, hidden 256) exported once, then onnxruntime fp32, OpenVINO fp32
and bf16, PyTorch eager fp32 and bf16 autocast in process, batch 1, median of `--calls` calls after one
warm-up; with the bf16 drift figures against onnxruntime fp32 on a few random clips.

    python -m bench.openvino_resnet --threads 2 --calls 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.openvino_runners import torch_bf16_autocast
from bench.runners import torch_eager
from export.clips import random_clips
from export.onnx_graph import export_onnx, serving_module
from export.openvino_ir import OpenVinoSession, convert_to_ir
from export.parity import onnx_session
from export.quantize import check_int8
from stanet.config import ModelConfig
from stanet.constants import INPUT_CLIP
from stanet.model import build_model

RESNET18 = ModelConfig(backbone="resnet18", height=224, width=224, clip_length=16, hidden_channels=256,
                       attention_dim=256, num_classes=8, freeze_backbone=True)


def median_ms(infer, batch, calls: int) -> float:
    infer(batch)  # warm-up
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        infer(batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openvino_resnet", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    module, _ = serving_module(build_model(RESNET18).eval())
    clips = random_clips(4, RESNET18, seed=1)
    batch = clips.clips[:1]
    graph = export_onnx(module)
    ir = convert_to_ir(graph.onnx_bytes)
    reference = onnx_session(graph.onnx_bytes, threads=args.threads)
    results = {"onnxruntime fp32": median_ms(lambda b: reference.run(None, {INPUT_CLIP: b}), batch, args.calls)}
    for precision in ("fp32", "bf16"):
        session = OpenVinoSession(ir, precision, threads=args.threads)
        results[f"OpenVINO {precision}"] = median_ms(lambda b: session.run(None, {INPUT_CLIP: b}), batch, args.calls)
        if precision == "bf16":
            gate = check_int8(reference, None, clips, candidate=session, batch_size=1)
            print(f"bf16 against onnxruntime fp32: {gate.summary()}, probabilities max abs diff "
                  f"{gate.probabilities_max_abs_diff:.2e}", flush=True)
    results["PyTorch eager fp32"] = median_ms(torch_eager(module, args.threads), batch, args.calls)
    results["PyTorch bf16 autocast"] = median_ms(torch_bf16_autocast(module, args.threads), batch, args.calls)
    for name, ms in results.items():
        print(f"{name:<24} {ms:8.0f} ms per clip (batch 1), {ms / results['onnxruntime fp32']:.2f}x onnxruntime time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
