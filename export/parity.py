"""The FP32 parity gate: onnxruntime (CPU) against PyTorch (eval) on the same uint8 clips, at batch 1 and at
the maximum batch. Nothing is written unless every output agrees within the tolerance and top-1 is identical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from export.onnx_graph import ServingModule, serving_module
from stanet.constants import OUTPUT_PROBABILITIES
from stanet.model import AttentionRecognizer

# onnxruntime and PyTorch differ by at most 2.8e-5 (temporal weights) on this model: docs/benchmark.md,
# "Export and runtime measurements".
PARITY_ATOL = 1e-4
# Attention maps are compared by correlation where precision changes (int8, FP16); a map that is nearly flat
# (an untrained mask, near-uniform temporal weights) has no pattern and its correlation is noise, so such a
# map also passes when every value stays within this distance (maps and weights lie in [0, 1]).
FLAT_MAP_ATOL = 0.01


def onnx_session(model: bytes | str | Path | onnx.ModelProto, *, threads: int = 0) -> ort.InferenceSession:
    """A CPU onnxruntime session from serialized bytes, a file or a ModelProto (threads 0 = ORT default)."""
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = str(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the shape-mismatch warnings of a broken graph are our job
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run_onnx(session: ort.InferenceSession, clips: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """Outputs by name for `clips` (N, T, H, W, 3) uint8, run `batch_size` clips at a time."""
    input_name = session.get_inputs()[0].name
    names = [o.name for o in session.get_outputs()]
    chunks = [session.run(names, {input_name: clips[i:i + batch_size]}) for i in range(0, len(clips), batch_size)]
    return {name: np.concatenate([c[k] for c in chunks]) for k, name in enumerate(names)}


@torch.no_grad()
def run_torch(module: ServingModule, clips: np.ndarray, batch_size: int,
              names: tuple[str, ...]) -> dict[str, np.ndarray]:
    chunks = [module(torch.from_numpy(clips[i:i + batch_size])) for i in range(0, len(clips), batch_size)]
    return {name: np.concatenate([c[k].numpy() for c in chunks]) for k, name in enumerate(names)}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    if denominator < 1e-12:  # a constant map: correlated only if it did not move
        return 1.0 if np.abs(a - b).max(initial=0.0) < 1e-6 else 0.0
    return float((a * b).sum() / denominator)


@dataclass
class ParityReport:
    """`max_abs_diff[output]` is the worst over every clip and batch size; `top1_agreement` the fraction of
    (clip, batch size) pairs with the same arg-max class; `top1_ties` counts disagreements where PyTorch's two
    best classes are closer than the tolerance (numerically tied, not counted as failures)."""

    passed: bool
    max_abs_diff: dict[str, float]
    top1_agreement: float
    top1_ties: int
    num_clips: int
    batch_sizes: tuple[int, ...]
    tolerance: float
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["batch_sizes"] = list(self.batch_sizes)
        return values

    def summary(self) -> str:
        diffs = ", ".join(f"{name} {value:.2e}" for name, value in self.max_abs_diff.items())
        return (f"max abs diff {diffs} (tolerance {self.tolerance:g}); top-1 agreement "
                f"{self.top1_agreement:.2%} over {self.num_clips} clips at batch sizes {list(self.batch_sizes)}")


def check_parity(torch_model: AttentionRecognizer | ServingModule, onnx_model: bytes | str | Path | onnx.ModelProto,
                 clips: np.ndarray, *, batch_sizes: tuple[int, ...] = (1,), atol: float = PARITY_ATOL,
                 session: ort.InferenceSession | None = None) -> ParityReport:
    """Compare onnxruntime, run at each batch size, with PyTorch on `clips` (N, T, H, W, 3) uint8.

    The ONNX graph's outputs are matched to PyTorch's by name (the serving signature's order), so a graph
    whose outputs are swapped or whose weights changed fails here.
    """
    module = serving_module(torch_model)[0] if isinstance(torch_model, AttentionRecognizer) else torch_model.eval()
    session = session or onnx_session(onnx_model)
    expected_names = module.output_names
    diffs = {name: 0.0 for name in expected_names}
    failures: list[str] = []
    agree = total = ties = 0
    # PyTorch runs once, at the largest batch (eager PyTorch at batch 1 is the slowest part by far); the graph
    # runs at every batch size, since its batch axis is what the sizes exercise.
    reference = run_torch(module, clips, max(batch_sizes), expected_names)
    for batch in batch_sizes:
        got = run_onnx(session, clips, batch)
        if set(got) != set(reference):
            failures.append(f"the ONNX outputs are {sorted(got)}, expected {sorted(reference)}")
            break
        for name in expected_names:
            if got[name].shape != reference[name].shape:
                failures.append(f"batch {batch}: {name} has shape {got[name].shape}, PyTorch "
                                f"{reference[name].shape}")
                diffs[name] = float("inf")
                continue
            diffs[name] = max(diffs[name], float(np.max(np.abs(got[name].astype(np.float64) - reference[name]))))
        probs_ref, probs_got = reference[OUTPUT_PROBABILITIES], got[OUTPUT_PROBABILITIES]
        if probs_got.shape != probs_ref.shape:
            continue
        same = probs_got.argmax(-1) == probs_ref.argmax(-1)
        top2 = np.sort(probs_ref, axis=-1)[:, -2:]
        tied = (top2[:, 1] - top2[:, 0]) <= atol
        agree += int(same.sum())
        total += len(same)
        ties += int((~same & tied).sum())
        if (~same & ~tied).any():
            failures.append(f"batch {batch}: top-1 differs on {int((~same & ~tied).sum())} of {len(same)} clips")
    for name, value in diffs.items():
        if not value <= atol:
            failures.append(f"{name}: max abs diff {value:.3g} > {atol:g}")
    return ParityReport(passed=not failures, max_abs_diff=diffs, top1_agreement=agree / total if total else 0.0,
                        top1_ties=ties, num_clips=len(clips), batch_sizes=tuple(batch_sizes), tolerance=atol,
                        failures=failures)
