"""The served maps are what is measured: the model's spatial and temporal curves recomputed through exported
ONNX graphs (onnxruntime, the runtime Triton's python backend runs), every number from the graph's own
outputs (probabilities, masks, temporal weights), compared with PyTorch's on the same clips.

A served path is a `.onnx` file, a model folder of a repository (`NAME/` with `export_report.json` and
`N/model.onnx`; the newest version is taken) or a repository (every model folder in it): e.g. the fp32 and the
int8 QDQ models `stanet export` writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from export.parity import onnx_session, run_onnx
from export.repository import REPORT_FILE
from stanet.constants import ONNX_FILE, OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION
from training.faithfulness.config import FaithfulnessConfig
from training.faithfulness.curves import Prediction, Predictor
from training.faithfulness.measure import TEMPORAL_ORDERS, areas, model_curves

# How far a served graph's mean areas may lie from PyTorch's (areas are mean probabilities, in [0, 1]). FP32
# graphs agree with PyTorch within 1e-4 on every output (the export's parity gate), which moves an area only by
# rank flips of near-equal pixels; reduced precisions change the maps themselves within the int8 gate (mask
# correlation >= 0.95, temporal weights within 0.1). Measured on the reference preset: fp32 3e-8, int8 QDQ
# 3e-3 (docs/benchmark.md, "Faithfulness").
TOLERANCE = {"fp32": 0.005, "reduced": 0.02}


class OnnxPredictor:
    """A `Predictor` over an onnxruntime session of an exported graph (uint8 clips in)."""

    def __init__(self, path: str | Path, batch_size: int = 64):
        self.session, self.batch_size = onnx_session(Path(path)), batch_size

    def __call__(self, clips: np.ndarray) -> Prediction:
        out = run_onnx(self.session, np.ascontiguousarray(clips), self.batch_size)
        return Prediction(out[OUTPUT_PROBABILITIES], out[OUTPUT_SPATIAL_ATTENTION], out[OUTPUT_TEMPORAL_ATTENTION])


def graph_precision(path: Path) -> str:
    """"int8" for a graph with QuantizeLinear nodes (the export's QDQ graph), "fp16" for FP16 weights, else "fp32"."""
    model = onnx.load(str(path), load_external_data=False)
    if any(node.op_type == "QuantizeLinear" for node in model.graph.node):
        return "int8"
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer):
        return "fp16"
    return "fp32"


def _model_folder(folder: Path) -> tuple[Path, str]:
    versions = sorted((int(p.name), p) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()
                      and (p / ONNX_FILE).is_file())
    if not versions:
        raise ValueError(f"{folder} has no version folder with {ONNX_FILE} (an onnxruntime or python export)")
    report = json.loads((folder / REPORT_FILE).read_text())
    return versions[-1][1] / ONNX_FILE, str(report["model"]["precision"])


def served_graphs(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """(ONNX file, precision) of every graph the served paths name; errors name the path and what is needed."""
    graphs = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.suffix == ".onnx":
            graphs.append((path, graph_precision(path)))
        elif path.is_dir() and (path / REPORT_FILE).is_file():
            graphs.append(_model_folder(path))
        elif path.is_dir() and any((p / REPORT_FILE).is_file() for p in path.iterdir()):
            graphs += [_model_folder(p) for p in sorted(path.iterdir()) if (p / REPORT_FILE).is_file()]
        else:
            raise ValueError(f"served path {path} is neither a .onnx file, nor a model folder with {REPORT_FILE}, "
                             f"nor a model repository of such folders")
    return graphs


def _model_areas(predict: Predictor, clips: np.ndarray, clip_ids: np.ndarray, config: FaithfulnessConfig):
    raw = model_curves(predict, clips, clip_ids, config, random=False)
    return {"spatial": areas(raw["spatial"], ("model",)), "temporal": areas(raw["temporal"], TEMPORAL_ORDERS[:1])}


def served_faithfulness(torch_predict: Predictor, paths: list[str | Path], clips: np.ndarray, clip_ids: np.ndarray,
                        config: FaithfulnessConfig) -> dict[str, Any]:
    """The model's four areas (spatial and temporal deletion/insertion) through PyTorch and through every
    served graph on the same clips, their absolute differences and the tolerance each must meet."""
    reference = _model_areas(torch_predict, clips, clip_ids, config)
    graphs = []
    for path, precision in served_graphs(paths):
        served = _model_areas(OnnxPredictor(path, config.batch_size), clips, clip_ids, config)
        tolerance = TOLERANCE["fp32" if precision == "fp32" else "reduced"]
        rows, worst = {}, 0.0
        for section in ("spatial", "temporal"):
            for kind in ("deletion_auc", "insertion_auc"):
                a, b = reference[section][kind]["model"], served[section][kind]["model"]
                rows[f"{section}.{kind}"] = {"torch": a, "served": b, "abs_diff": abs(a - b)}
                worst = max(worst, abs(a - b))
        graphs.append({"path": str(path), "precision": precision, "areas": rows, "max_abs_diff": worst,
                       "tolerance": tolerance, "passed": bool(worst <= tolerance)})
    return {"clips": int(len(clips)), "tolerance": TOLERANCE, "graphs": graphs,
            "passed": all(g["passed"] for g in graphs)}
