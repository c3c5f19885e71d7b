"""The TensorRT side of export: the static check of the graph and the engine gate's arithmetic (no GPU
needed); building a real engine runs only where CUDA and tensorrt are installed."""

from __future__ import annotations

import json

import onnx
import pytest
from exported import TINY, parse_config, run_export, tensorrt_usable

from export import tensorrt
from export.clips import random_clips
from export.onnx_graph import OPSET_VERSION
from export.parity import onnx_session, run_onnx
from export.signature import serving_signature
from export.tensorrt import TENSORRT_SUPPORTED_OPS, static_check
from stanet.constants import OUTPUT_PROBABILITIES


def test_tensorrt_static_check_passes_the_exported_graph(tiny_graph):
    report = static_check(tiny_graph[1].onnx_bytes)
    assert report.passed, report.problems
    assert report.unsupported_ops == {} and report.dynamic_dims == [] and report.opset == OPSET_VERSION


def test_tensorrt_static_check_names_an_unsupported_op_and_a_dynamic_dim(tiny_graph):
    proto = onnx.load_from_string(tiny_graph[1].onnx_bytes)
    assert "ConvInteger" not in TENSORRT_SUPPORTED_OPS
    proto.graph.node.append(onnx.helper.make_node("ConvInteger", ["clip", "clip"], ["unused"]))
    proto.graph.output[1].type.tensor_type.shape.dim[2].dim_param = "height"
    report = static_check(proto)
    assert not report.passed
    assert report.unsupported_ops == {"ConvInteger": 1}
    assert any("ConvInteger" in problem for problem in report.problems)
    assert report.dynamic_dims == ["spatial_attention axis 2 is 'height', expected a static size"]


def test_engine_gate_compares_top1_and_attention(tiny_graph, monkeypatch):
    """The engine gate's arithmetic, with the engine's outputs given (building one needs a GPU)."""
    model, graph = tiny_graph
    signature = serving_signature(TINY, model.feature_map_size())
    clips = random_clips(4, TINY).clips
    reference = run_onnx(onnx_session(graph.onnx_bytes), clips, 4)
    engine_outputs = {name: value + 1e-3 for name, value in reference.items()}  # FP16-sized noise
    monkeypatch.setattr(tensorrt, "run_engine", lambda plan, clips, batch, input_name, names: engine_outputs)
    report = tensorrt.check_engine(b"plan", signature, reference, clips, batch_sizes=(1, 4))
    assert report["passed"], report["failures"]
    assert report["batch_4"]["top1_agreement"] == 1.0
    flipped = dict(engine_outputs, **{OUTPUT_PROBABILITIES: reference[OUTPUT_PROBABILITIES][:, ::-1]})
    monkeypatch.setattr(tensorrt, "run_engine", lambda plan, clips, batch, input_name, names: flipped)
    report = tensorrt.check_engine(b"plan", signature, reference, clips, batch_sizes=(1,))
    assert not report["passed"] and "top-1 agreement" in report["failures"][0]


@pytest.mark.gpu
@pytest.mark.skipif(not tensorrt_usable(), reason="needs CUDA and the tensorrt package")
def test_tensorrt_engine_matches_onnxruntime(tiny_checkpoint, tmp_path, capsys):
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(tmp_path / "m"),
                              "--target", "tensorrt", "--max-batch-size", "4",
                              "--timing-cache", str(tmp_path / "timing.cache"))
    assert code == 0, err
    report = json.loads((tmp_path / "m" / "stanet" / "export_report.json").read_text())
    assert report["tensorrt"]["passed"] and (tmp_path / "m" / "stanet" / "1" / "model.plan").stat().st_size > 0
    assert (tmp_path / "timing.cache").stat().st_size > 0
    config = parse_config(tmp_path / "m" / "stanet" / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 4
