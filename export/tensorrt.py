"""TensorRT: a static check that runs anywhere, and an FP16 engine builder + parity check that run only where
CUDA and the `tensorrt` package are present (engines are GPU- and TensorRT-version-specific, so they are built
on the serving GPU: docs/serving.md, "TensorRT").

The static check answers "will TensorRT's ONNX parser take this graph?" without a GPU: every node's op type
must be in the operator support matrix of the pinned TensorRT release, and every non-batch dimension of the
graph's inputs and outputs must be static (one optimization profile then covers every request).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from export.errors import ExportError
from export.onnx_graph import static_dim_problems
from export.parity import FLAT_MAP_ATOL, pearson
from export.signature import ServingSignature, profile_shapes
from export.triton_config import DEFAULT_WORKSPACE_BYTES
from stanet.constants import OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION

# Operators marked supported ("Y") in the support matrix of onnx/onnx-tensorrt `docs/operators.md` for
# TensorRT 10.15 (opset 9 to 24), the parser the TensorRT 10.x Python wheels ship. Ops marked "N" there
# (e.g. ConvInteger, MatMulInteger, QLinearConv, the Sequence*/Optional*/String* families, Unique, BitShift)
# are absent on purpose. Update together with the `tensorrt` pin of the gpu extra.
TENSORRT_VERSION = "10.15"
TENSORRT_OPSET_RANGE = (9, 24)
TENSORRT_SUPPORTED_OPS = frozenset("""
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
    BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
    CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten
    Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
    GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax
    Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log
    LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish
    Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
    RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2
    ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu
    Reshape Resize ReverseSequence RMSNormalization RNN RoiAlign RotaryEmbedding Round STFT ScaledTanh Scan
    Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus
    Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter ThresholdedRelu Tile TopK Transpose
    Trilu Unsqueeze Upsample Where Xor
""".split())

# The engine's agreement with onnxruntime FP32 (docs/serving.md, "Comparing precisions": FP16 is compared by
# top-k and attention correlation, not elementwise).
MIN_ATTENTION_CORRELATION = 0.99


@dataclass
class StaticCheckReport:
    passed: bool
    tensorrt_version: str
    opset: int | None
    unsupported_ops: dict[str, int]  # op type -> node count; empty = every op is supported
    dynamic_dims: list[str]  # non-batch dims that are not static
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def static_check(model_or_bytes: onnx.ModelProto | bytes) -> StaticCheckReport:
    """Op support and static shapes against the pinned TensorRT release, without TensorRT or a GPU."""
    model = onnx.load_from_string(model_or_bytes) if isinstance(model_or_bytes, bytes) else model_or_bytes
    ops = Counter(node.op_type for node in model.graph.node if node.domain in ("", "ai.onnx"))
    foreign = Counter(f"{node.domain}::{node.op_type}" for node in model.graph.node
                      if node.domain not in ("", "ai.onnx"))
    unsupported = {op: n for op, n in sorted(ops.items()) if op not in TENSORRT_SUPPORTED_OPS}
    unsupported.update(sorted(foreign.items()))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    dynamic = static_dim_problems(model)
    problems = []
    if unsupported:
        problems.append(f"ops not supported by TensorRT {TENSORRT_VERSION}: "
                        + ", ".join(f"{op} ({n} nodes)" for op, n in unsupported.items()))
    if dynamic:
        problems.append("dynamic non-batch dims: " + "; ".join(dynamic))
    low, high = TENSORRT_OPSET_RANGE
    if opset is None or not low <= opset <= high:
        problems.append(f"opset {opset} is outside TensorRT {TENSORRT_VERSION}'s range {low}-{high}")
    return StaticCheckReport(passed=not problems, tensorrt_version=TENSORRT_VERSION, opset=opset,
                             unsupported_ops=unsupported, dynamic_dims=dynamic, problems=problems)


def require_tensorrt() -> None:
    """Raise ExportError naming what is missing unless CUDA and the tensorrt package are both usable."""
    missing = []
    try:
        import torch

        if not torch.cuda.is_available():
            missing.append("no CUDA device is visible (torch.cuda.is_available() is False)")
    except ImportError:  # pragma: no cover - torch is a dependency of export
        missing.append("torch is not installed")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        missing.append("the `tensorrt` Python package is not installed (the gpu extra)")
    if missing:
        raise ExportError("--target tensorrt builds the engine on the serving GPU and needs CUDA and TensorRT: "
                          + "; ".join(missing) + ". Without them, use `--target onnxruntime --instance-kind gpu`: "
                          "Triton's onnxruntime backend then builds the TensorRT engine itself (FP16, with an "
                          "engine cache).")


def build_engine(onnx_bytes: bytes, signature: ServingSignature, *, max_batch: int, timing_cache: Path,
                 fp16: bool = True, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> bytes:
    """Serialized TensorRT engine (a Triton `model.plan`) for the current GPU. The timing cache file is read
    when it exists and rewritten afterwards, so rebuilding on the same GPU is fast."""
    require_tensorrt()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch: the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError("TensorRT's ONNX parser rejected the graph: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    timing_cache = Path(timing_cache)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):  # a cache from another GPU: start afresh
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    shapes = profile_shapes(signature, max_batch)
    profile = builder.create_optimization_profile()
    profile.set_shape(signature.clip.name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT could not build an engine for this graph (see the TensorRT log above)")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def run_engine(plan: bytes, clips: np.ndarray, batch_size: int, input_name: str,
               output_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Outputs by name for `clips` (N, T, H, W, 3) uint8, on the current GPU (buffers are torch CUDA tensors)."""
    require_tensorrt()
    import tensorrt as trt
    import torch

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in output_names}
    for start in range(0, len(clips), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(clips[start:start + batch_size])).cuda()
        context.set_input_shape(input_name, tuple(batch.shape))
        context.set_tensor_address(input_name, batch.data_ptr())
        outputs = {}
        for name in output_names:
            outputs[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=torch.float32, device="cuda")
            context.set_tensor_address(name, outputs[name].data_ptr())
        if not context.execute_async_v3(stream.cuda_stream):
            raise ExportError("TensorRT failed to run the engine")
        stream.synchronize()
        for name in output_names:
            chunks[name].append(outputs[name].cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def check_engine(plan: bytes, signature: ServingSignature, reference: dict[str, np.ndarray], clips: np.ndarray, *,
                 batch_sizes: tuple[int, ...]) -> dict[str, Any]:
    """The engine against onnxruntime FP32 outputs (`reference`): identical top-1, and each attention output
    correlated >= MIN_ATTENTION_CORRELATION (or within FLAT_MAP_ATOL everywhere: a flat map has no pattern
    to correlate, only noise). Returns the numbers with `passed` and `failures`."""
    names = signature.output_names
    report: dict[str, Any] = {"batch_sizes": list(batch_sizes), "num_clips": len(clips), "failures": []}
    for batch in batch_sizes:
        got = run_engine(plan, clips, batch, signature.clip.name, names)
        agreement = float((got[OUTPUT_PROBABILITIES].argmax(-1) == reference[OUTPUT_PROBABILITIES].argmax(-1)).mean())
        spatial = pearson(got[OUTPUT_SPATIAL_ATTENTION], reference[OUTPUT_SPATIAL_ATTENTION])
        temporal = pearson(got[OUTPUT_TEMPORAL_ATTENTION], reference[OUTPUT_TEMPORAL_ATTENTION])
        report[f"batch_{batch}"] = {
            "top1_agreement": agreement, "spatial_correlation": spatial, "temporal_correlation": temporal,
            "max_abs_diff": {n: float(np.abs(got[n] - reference[n]).max()) for n in names},
        }
        if agreement < 1.0:
            report["failures"].append(f"batch {batch}: top-1 agreement {agreement:.2%}, expected 100%")
        for name, value in ((OUTPUT_SPATIAL_ATTENTION, spatial), (OUTPUT_TEMPORAL_ATTENTION, temporal)):
            diff = report[f"batch_{batch}"]["max_abs_diff"][name]
            if not (value >= MIN_ATTENTION_CORRELATION or diff <= FLAT_MAP_ATOL):
                report["failures"].append(f"batch {batch}: {name} correlation {value:.4f} < "
                                          f"{MIN_ATTENTION_CORRELATION} and max abs diff {diff:.3g} > {FLAT_MAP_ATOL}")
    report["passed"] = not report["failures"]
    return report
