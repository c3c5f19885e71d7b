"""What the export tests share: a tiny model with non-trivial BatchNorm statistics and its classes, the type
names between ONNX and Triton, and small readers of what `stanet export` wrote."""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
import torch
from google.protobuf import text_format
from onnx import numpy_helper
from tiny import tiny_model_config
from tritonclient.grpc import model_config_pb2

from export.cli import main as export_main
from stanet.model import build_model

# K == T on purpose: probabilities and temporal_attention then have the same shape, so swapping them is a
# graph that only the values can expose.
TINY = tiny_model_config(num_classes=4, clip_length=4)
CLASSES = ("wave", "walk", "jump", "sit")
ONNX_TO_TRITON = {onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.FLOAT: "TYPE_FP32"}


def tiny_model() -> torch.nn.Module:
    """The tiny model in eval mode, seeded, with BatchNorm statistics that folding into the convs must carry."""
    torch.manual_seed(0)
    model = build_model(TINY)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def listing(root: Path) -> dict[str, str]:
    """Every path under root (hidden ones too) with its content hash: 'unchanged' means byte-identical."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))}


def run_export(capsys, *args: str) -> tuple[int, str, str]:
    """`stanet export ARGS` in process: (exit code, stdout, stderr)."""
    code = export_main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def parse_config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def tensorrt_usable() -> bool:
    """Whether this machine can build TensorRT engines (CUDA and the tensorrt package)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def with_conv_weight_changed(onnx_bytes: bytes) -> bytes:
    """The graph with one weight of its first Conv changed: what the parity gate must catch."""
    proto = onnx.load_from_string(onnx_bytes)
    conv = next(node for node in proto.graph.node if node.op_type == "Conv")
    init = next(i for i in proto.graph.initializer if i.name == conv.input[1])
    weight = numpy_helper.to_array(init).copy()
    weight.flat[0] += 1.0
    init.CopyFrom(numpy_helper.from_array(weight, init.name))
    return proto.SerializeToString()
