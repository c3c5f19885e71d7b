"""The exported ONNX graph (unrolled, static, named by the constants) and the parity gate that compares it
with PyTorch, on a tiny model built in-test."""

from __future__ import annotations

import onnx
import pytest
from exported import TINY, with_conv_weight_changed

from export.clips import random_clips
from export.errors import ExportError
from export.onnx_graph import CONTROL_FLOW_OPS, OPSET_VERSION, check_graph, graph_io
from export.parity import PARITY_ATOL, check_parity
from export.signature import serving_signature
from stanet.config import ModelConfig
from stanet.constants import (
    INPUT_CLIP,
    OUTPUT_PROBABILITIES,
    OUTPUT_SPATIAL_ATTENTION,
    OUTPUT_TEMPORAL_ATTENTION,
)


def test_graph_is_unrolled_static_and_named_by_the_constants(tiny_graph):
    model, graph = tiny_graph
    proto = onnx.load_from_string(graph.onnx_bytes)
    ops = {node.op_type for node in proto.graph.node}
    assert not ops & CONTROL_FLOW_OPS
    io = graph_io(proto)
    assert [v.name for v in proto.graph.input] == [INPUT_CLIP]
    assert [v.name for v in proto.graph.output] == [OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION,
                                                    OUTPUT_TEMPORAL_ATTENTION]
    h, w = model.feature_map_size()
    assert io[INPUT_CLIP] == (onnx.TensorProto.UINT8, ["batch", 4, 32, 32, 3])
    assert io[OUTPUT_PROBABILITIES] == (onnx.TensorProto.FLOAT, ["batch", 4])
    assert io[OUTPUT_SPATIAL_ATTENTION] == (onnx.TensorProto.FLOAT, ["batch", 4, h, w])
    assert io[OUTPUT_TEMPORAL_ATTENTION] == (onnx.TensorProto.FLOAT, ["batch", 4])
    report = graph.report
    assert report["opset"] == OPSET_VERSION and "dynamo=False" in report["exporter"]
    assert report["node_count"] == len(proto.graph.node) and report["op_counts"]["Conv"] >= 5
    assert report["size_bytes"] > 0 and report["export_seconds"] > 0
    # Every Conv weight and bias is an initializer (TensorRT and the int8 quantizer need them to be).
    initializers = {init.name for init in proto.graph.initializer}
    assert all(set(node.input[1:]) <= initializers for node in proto.graph.node if node.op_type == "Conv")


def test_onnxruntime_matches_pytorch_at_batch_1_and_max_batch(tiny_graph):
    model, graph = tiny_graph
    clips = random_clips(8, TINY).clips
    report = check_parity(model, graph.onnx_bytes, clips, batch_sizes=(1, 8))
    assert report.passed, report.failures
    assert set(report.max_abs_diff) == {OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION}
    assert all(0 <= diff <= PARITY_ATOL for diff in report.max_abs_diff.values())
    assert report.top1_agreement == 1.0 and report.batch_sizes == (1, 8) and report.num_clips == 8


def _with_outputs_swapped(onnx_bytes: bytes, a: str, b: str) -> bytes:
    proto = onnx.load_from_string(onnx_bytes)
    rename = {a: b, b: a}
    for node in proto.graph.node:
        for i, name in enumerate(node.output):
            node.output[i] = rename.get(name, name)
    return proto.SerializeToString()


def test_parity_gate_refuses_an_altered_graph(tiny_graph):
    model, graph = tiny_graph
    clips = random_clips(4, TINY).clips
    changed = check_parity(model, with_conv_weight_changed(graph.onnx_bytes), clips, batch_sizes=(1, 4))
    assert not changed.passed
    assert max(changed.max_abs_diff.values()) > PARITY_ATOL
    assert any("max abs diff" in failure for failure in changed.failures)
    swapped = check_parity(model, _with_outputs_swapped(graph.onnx_bytes, OUTPUT_PROBABILITIES,
                                                        OUTPUT_TEMPORAL_ATTENTION), clips, batch_sizes=(1,))
    assert not swapped.passed
    assert swapped.max_abs_diff[OUTPUT_PROBABILITIES] > PARITY_ATOL
    assert swapped.max_abs_diff[OUTPUT_SPATIAL_ATTENTION] <= PARITY_ATOL


def test_graph_check_names_what_is_wrong(tiny_graph):
    model, graph = tiny_graph
    signature = serving_signature(TINY, model.feature_map_size())
    proto = onnx.load_from_string(graph.onnx_bytes)
    proto.graph.output[2].type.tensor_type.shape.dim[1].dim_param = "frames"
    with pytest.raises(ExportError, match="temporal_attention axis 1 is 'frames', expected a static size"):
        check_graph(proto, signature)
    other = serving_signature(ModelConfig(num_classes=5, clip_length=4, height=32, width=32), model.feature_map_size())
    with pytest.raises(ExportError, match=r"probabilities has dims \['batch', 4\], expected \[batch, 5\]"):
        check_graph(graph.onnx_bytes, other)
