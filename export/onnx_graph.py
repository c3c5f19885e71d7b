"""PyTorch recognizer -> ONNX graph with the serving signature, plus the checks every exported graph passes.

The graph takes the wire format (uint8 `[B, T, H, W, 3]`) and normalizes inside, with the same
`normalize_clip` training uses; the ConvLSTM is a Python loop, so tracing unrolls it for the checkpoint's T.
"""

from __future__ import annotations

import io
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import onnx
import torch
from torch import nn

from export.errors import ExportError
from export.signature import BATCH_AXIS, ServingSignature, serving_signature
from stanet.model import AttentionRecognizer
from stanet.model.preprocess import normalize_clip
from stanet.model.recognizer import probabilities

# The exporter is pinned, not left to torch's default (which became dynamo=True in 2.9): the TorchScript
# exporter unrolls the ConvLSTM loop, exports faster than the dynamo exporter with the same onnxruntime parity
# and needs no onnxscript. It stops at opset 17, which onnxruntime and TensorRT 10 (opset 9-24) both read
# (docs/serving.md, "Exporter and opset"; measurements: docs/benchmark.md, "Export and runtime measurements").
EXPORTER = "torch.onnx.export(dynamo=False) (TorchScript)"  # as every export report names it
OPSET_VERSION = 17
# Batch 2, not 1, for the example input: a batch of 1 lets the tracer fold the batch axis into constants.
EXAMPLE_BATCH = 2
# Recurrent control flow TensorRT rejects or handles poorly (docs/serving.md, "Unrolling the ConvLSTM"): the
# graph must be unrolled.
CONTROL_FLOW_OPS = frozenset({"Loop", "Scan", "If"})

ONNX_DTYPES = {"uint8": onnx.TensorProto.UINT8, "float32": onnx.TensorProto.FLOAT}


class ServingModule(nn.Module):
    """What the exported graph computes: uint8 clip -> (probabilities, spatial_attention, temporal_attention).

    ::

        clip (B, T, H, W, 3) uint8
          |  normalize_clip (cast, NHWC -> NCHW, mean/std)
        recognizer --> logits (B, K) --softmax--> probabilities (B, K)
                   --> spatial_attention (B, T, h, w), temporal_attention (B, T)
    """

    def __init__(self, model: AttentionRecognizer, signature: ServingSignature):
        super().__init__()
        self.model = model
        self.signature = signature
        self.output_names = signature.output_names  # the order forward returns them in

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        output = self.model(normalize_clip(clip))
        probs = probabilities(output)  # (B, K)
        return probs, output.spatial_attention, output.temporal_attention  # (B, K), (B, T, h, w), (B, T)


def serving_module(model: AttentionRecognizer) -> tuple[ServingModule, ServingSignature]:
    """Wrap a recognizer (put in eval mode) for export, with its signature."""
    model.eval()
    signature = serving_signature(model.config, model.feature_map_size())
    return ServingModule(model, signature).eval(), signature


@dataclass
class ExportedGraph:
    onnx_bytes: bytes
    signature: ServingSignature
    export_seconds: float
    report: dict[str, Any] = field(default_factory=dict)


def export_onnx(model: AttentionRecognizer | ServingModule) -> ExportedGraph:
    """Export a recognizer (wrapped by `serving_module` here) or the ServingModule the caller already built,
    then run `check_graph`; raises ExportError naming the problem."""
    module = model if isinstance(model, ServingModule) else serving_module(model)[0]
    signature = module.signature
    example = torch.zeros(EXAMPLE_BATCH, *signature.clip.dims, dtype=torch.uint8)
    names = [spec.name for spec in (*signature.inputs, *signature.outputs)]
    buffer = io.BytesIO()
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is pinned on purpose (see EXPORTER); the tracer's warnings are about the
        # input checks, which hold for every clip of the exported shape.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module, (example,), buffer,
            dynamo=False,
            opset_version=OPSET_VERSION,
            input_names=[spec.name for spec in signature.inputs],
            output_names=list(signature.output_names),
            dynamic_axes={name: {0: BATCH_AXIS} for name in names},
            do_constant_folding=True,
        )
    seconds = time.perf_counter() - start
    model_proto = onnx.load_from_string(buffer.getvalue())
    inline_initializer_identities(model_proto)
    declare_static_dims(model_proto, signature)
    onnx_bytes = model_proto.SerializeToString()
    report = check_graph(onnx_bytes, signature)
    report["export_seconds"] = round(seconds, 3)
    return ExportedGraph(onnx_bytes=onnx_bytes, signature=signature, export_seconds=seconds, report=report)


def inline_initializer_identities(model: onnx.ModelProto) -> None:
    """Drop the Identity nodes the exporter puts between a de-duplicated initializer and its users (equal
    folded Conv biases, shared MatMul weights): the quantizer only quantizes a Conv bias that is itself an
    initializer, and TensorRT needs Conv weights as initializers."""
    initializers = {init.name for init in model.graph.initializer}
    graph_outputs = {value.name for value in model.graph.output}
    alias = {node.output[0]: node.input[0] for node in model.graph.node
             if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in graph_outputs}
    if not alias:
        return
    kept = [node for node in model.graph.node if not (node.op_type == "Identity" and node.output[0] in alias)]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del model.graph.node[:]
    model.graph.node.extend(kept)


def declare_static_dims(model: onnx.ModelProto, signature: ServingSignature) -> None:
    """Write the signature's shapes into the graph's inputs/outputs: [batch, static dims...].

    The tracer derives the mask's reshape from the feature map's runtime shape and so leaves (T, h, w)
    symbolic, although the config fixes them. Declaring them lets Triton and TensorRT see static shapes;
    onnx.checker's shape inference and the parity gate's shape comparison then verify the declaration.
    """
    specs = {spec.name: spec for spec in (*signature.inputs, *signature.outputs)}
    for value in (*model.graph.input, *model.graph.output):
        spec = specs.get(value.name)
        if spec is None:
            continue
        shape = value.type.tensor_type.shape
        del shape.dim[:]
        shape.dim.add().dim_param = BATCH_AXIS
        for size in spec.dims:
            shape.dim.add().dim_value = size


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value.type.tensor_type.shape.dim]


def graph_io(model: onnx.ModelProto) -> dict[str, tuple[int, list[int | str | None]]]:
    """Graph inputs (initializers excluded) and outputs: name -> (ONNX element type, dims)."""
    initializers = {init.name for init in model.graph.initializer}
    values = [v for v in model.graph.input if v.name not in initializers] + list(model.graph.output)
    return {v.name: (v.type.tensor_type.elem_type, _dims(v)) for v in values}


def static_dim_problems(model: onnx.ModelProto) -> list[str]:
    """Every graph input/output must be [batch, static...]: one problem string per violation."""
    problems = []
    for name, (_, dims) in graph_io(model).items():
        if not dims:
            problems.append(f"{name}: no shape")
            continue
        for axis, dim in enumerate(dims[1:], start=1):
            if not isinstance(dim, int) or dim <= 0:
                problems.append(f"{name} axis {axis} is {dim!r}, expected a static size")
    return problems


def check_graph(model_or_bytes: onnx.ModelProto | bytes, signature: ServingSignature) -> dict[str, Any]:
    """onnx.checker (full), no control flow, the signature's names/types/dims with only the batch axis
    dynamic. Returns the graph report; raises ExportError listing every violation."""
    model = onnx.load_from_string(model_or_bytes) if isinstance(model_or_bytes, bytes) else model_or_bytes
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {exc}") from None
    problems = []
    ops = Counter(node.op_type for node in model.graph.node)
    subgraphs = [node.op_type for node in model.graph.node
                 if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)]
    flow = sorted(set(ops) & CONTROL_FLOW_OPS) or sorted(set(subgraphs))
    if flow:
        problems.append(f"control-flow nodes {flow} (the ConvLSTM must be unrolled for TensorRT)")
    io_ = graph_io(model)
    inputs = [v.name for v in model.graph.input if v.name in io_]
    outputs = [v.name for v in model.graph.output]
    expected_inputs = [spec.name for spec in signature.inputs]
    if inputs != expected_inputs or outputs != list(signature.output_names):
        problems.append(f"inputs {inputs} and outputs {outputs}, expected {expected_inputs} and "
                        f"{list(signature.output_names)}")
    for spec in (*signature.inputs, *signature.outputs):
        if spec.name not in io_:
            continue
        elem, dims = io_[spec.name]
        if elem != ONNX_DTYPES[spec.dtype]:
            problems.append(f"{spec.name} has element type {onnx.TensorProto.DataType.Name(elem)}, expected "
                            f"{onnx.TensorProto.DataType.Name(ONNX_DTYPES[spec.dtype])}")
        if len(dims) != len(spec.dims) + 1 or tuple(dims[1:]) != spec.dims:
            problems.append(f"{spec.name} has dims {dims}, expected [{BATCH_AXIS}, "
                            f"{', '.join(map(str, spec.dims))}]")
    problems += [p for p in static_dim_problems(model) if p not in problems]
    if problems:
        raise ExportError("the exported graph is not servable: " + "; ".join(problems))
    return graph_report(model)


def graph_report(model: onnx.ModelProto) -> dict[str, Any]:
    ops = Counter(node.op_type for node in model.graph.node)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {
        "exporter": EXPORTER,
        "torch_version": torch.__version__,
        "opset": opset,
        "node_count": len(model.graph.node),
        "op_counts": dict(sorted(ops.items(), key=lambda item: (-item[1], item[0]))),
        "size_bytes": model.ByteSize(),
        "control_flow_nodes": 0,
    }
