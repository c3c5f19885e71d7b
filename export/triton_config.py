"""config.pbtxt for each target, generated from the serving signature (stanet.constants + the checkpoint's
ModelConfig): tensor names, types and dims are never typed twice. Facts behind each field: docs/serving.md,
"Model configuration".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from export.errors import ExportError
from export.signature import ServingSignature, TensorSpec, profile_shapes
from export.openvino_backend import backend_parameters
from serving.python_backend.stanet_backend import (DEFAULT_OPENVINO_HINT, DEFAULT_OPENVINO_STREAMS,
                                                   DEFAULT_TIME_BUDGET_MS, INTER_OP_PARAMETER, INTRA_OP_PARAMETER,
                                                   ONNX_FILE_PARAMETER, OPENVINO_FILE_PARAMETER,
                                                   OPENVINO_HINT_PARAMETER, OPENVINO_PRECISION_PARAMETER,
                                                   OPENVINO_STREAMS_PARAMETER, RUNTIME_PARAMETER, RUNTIMES,
                                                   TIME_BUDGET_PARAMETER)
from stanet.constants import (CLIP_SPAN_FRAMES_PARAMETER, CLIP_SPAN_SECONDS_PARAMETER, LABELS_FILE,
                              LATENCY_BUCKETS_SECONDS, ONNX_FILE, OPENVINO_XML_FILE, OUTPUT_PROBABILITIES)
from stanet.timeline.windows import ClipSpan

TARGETS = ("onnxruntime", "tensorrt", "python", "openvino")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
INSTANCE_KINDS = ("cpu", "gpu")
TRITON_TYPES = {"uint8": "TYPE_UINT8", "float32": "TYPE_FP32"}
# What each (target, instance kind) can serve with a verification gate behind it; the first is the default.
SUPPORTED_PRECISIONS = {
    ("onnxruntime", "cpu"): ("fp32", "int8"),
    ("onnxruntime", "gpu"): ("fp16", "fp32"),  # precision_mode of Triton's TensorRT accelerator
    ("python", "cpu"): ("fp32", "int8"),
    ("python", "gpu"): (),
    ("tensorrt", "gpu"): ("fp16", "fp32"),
    ("tensorrt", "cpu"): (),
    ("openvino", "cpu"): ("fp32", "bf16", "int8"),  # Triton's openvino backend (NGC images)
    ("openvino", "gpu"): (),
}
# The python backend's runtimes: what each can serve with a gate behind it.
RUNTIME_PRECISIONS = {"onnxruntime": ("fp32", "int8"), "openvino": ("fp32", "bf16", "int8")}
DEFAULT_INSTANCE_KIND = {"onnxruntime": "cpu", "python": "cpu", "tensorrt": "gpu", "openvino": "cpu"}
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")

# Shed load instead of queueing without bound: a full queue rejects at once, and a request waiting longer
# than the timeout is rejected rather than answered late.
QUEUE_SIZE_PER_BATCH = 4  # max_queue_size = 4 x max_batch_size
QUEUE_TIMEOUT_MICROSECONDS = 5_000_000
# A lone request does not wait for company: every lone request pays the delay, and batching gains little on
# CPU (docs/benchmark.md, "Choosing the layout").
MAX_QUEUE_DELAY_MICROSECONDS = 0
WARMUP_NAME = "zero_clip"
# Model instances per CPU server (one per GPU): two, each with every core (their threads sleep instead of
# spinning), because one instance lets Triton 2.51's dynamic batcher stall requests and one core per instance
# slows a lone request (docs/benchmark.md, "Choosing the layout").
CPU_INSTANCES = 2
# Where Triton's onnxruntime backend keeps the engines its TensorRT accelerator builds (inside the server's
# container), so a restart or a second instance does not rebuild them.
TRT_ENGINE_CACHE_ROOT = "/tmp/triton_trt_cache"
DEFAULT_WORKSPACE_BYTES = 1 << 30  # TensorRT builder workspace, for the engine builder and the accelerator
# Threads for the python backend's onnxruntime session: "0" = every CPU core the Triton process may use,
# counted when the model loads (the export machine's cores say nothing about the server's).
DEFAULT_INTRA_OP_THREADS = "0"
DEFAULT_INTER_OP_THREADS = "1"
# The end-to-end latency histogram of current Triton versions (`--metrics-config histogram_latencies=true`);
# its default buckets (100 ms to 5 s) cannot resolve this model. The embedded Triton 2.51 (python target) has no
# such histogram.
LATENCY_HISTOGRAM_FAMILY = "nv_inference_first_response_histogram_ms"


@dataclass(frozen=True)
class ServingOptions:
    name: str
    target: str  # one of TARGETS
    instance_kind: str  # "cpu" or "gpu"
    max_batch_size: int
    precision: str  # one of PRECISIONS
    instances: int = 0  # model instances; 0 = CPU_INSTANCES on CPU, one per GPU
    intra_op_threads: int = 0  # python/openvino target: threads per instance; 0 = every core, counted at load
    runtime: str = "onnxruntime"  # python target: the runtime inside the python backend (one of RUNTIMES)

    @property
    def uses_openvino(self) -> bool:
        return self.target == "openvino" or (self.target == "python" and self.runtime == "openvino")

    @property
    def instance_count(self) -> int:
        return self.instances or (CPU_INSTANCES if self.instance_kind == "cpu" else 1)


def check_options(options: ServingOptions) -> None:
    """Raise ExportError for a target / instance kind / precision combination this exporter cannot verify."""
    problems = []
    if options.target not in TARGETS:
        problems.append(f"--target must be one of {TARGETS}, got {options.target!r}")
    if options.instance_kind not in INSTANCE_KINDS:
        problems.append(f"--instance-kind must be one of {INSTANCE_KINDS}, got {options.instance_kind!r}")
    if options.precision not in PRECISIONS:
        problems.append(f"--precision must be one of {PRECISIONS}, got {options.precision!r}")
    if not NAME_PATTERN.fullmatch(options.name):
        problems.append(f"--name must be letters, digits, '_', '-' or '.', not starting with '.', got {options.name!r}")
    if options.max_batch_size < 1:
        problems.append(f"--max-batch-size must be >= 1, got {options.max_batch_size}")
    if options.instances < 0:
        problems.append(f"--instances must be >= 1 (or 0 for the default), got {options.instances}")
    if options.intra_op_threads < 0:
        problems.append(f"--intra-op-threads must be >= 1 (or 0 for every core), got {options.intra_op_threads}")
    if options.intra_op_threads and options.target not in ("python", "openvino"):
        problems.append("--intra-op-threads applies to --target python and openvino only (Triton's other backends "
                        "take their threads from the server)")
    if options.runtime not in RUNTIMES:
        problems.append(f"--runtime must be one of {RUNTIMES}, got {options.runtime!r}")
    elif options.runtime != "onnxruntime" and options.target != "python":
        problems.append(f"--runtime {options.runtime} applies to --target python only (--target openvino is "
                        f"Triton's own OpenVINO backend)")
    if problems:
        raise ExportError("; ".join(problems))
    supported = SUPPORTED_PRECISIONS[(options.target, options.instance_kind)]
    if not supported:
        hint = ("the TensorRT plan runs on a GPU only" if options.target == "tensorrt" else
                "the python backend runs onnxruntime on CPU; for a GPU use --target onnxruntime --instance-kind gpu")
        raise ExportError(f"--target {options.target} with --instance-kind {options.instance_kind} is not "
                          f"supported: {hint}")
    if options.target == "python" and options.runtime in RUNTIME_PRECISIONS:
        supported = RUNTIME_PRECISIONS[options.runtime]
    if options.precision not in supported:
        if options.precision == "bf16":
            raise ExportError(f"--precision bf16 needs OpenVINO: --target python --runtime openvino, or --target "
                              f"openvino (onnxruntime's CPU kernels are fp32/int8)")
        raise ExportError(f"--precision {options.precision} is not supported for --target {options.target} "
                          f"--instance-kind {options.instance_kind}; choose one of {supported} (int8 is "
                          f"verified for CPU serving only, fp16 for GPU only)")


def _dims(dims: tuple[int, ...]) -> str:
    return f"[ {', '.join(str(d) for d in dims)} ]"


def _tensor(spec: TensorSpec, *extra: str) -> str:
    lines = [f'    name: "{spec.name}"', f"    data_type: {TRITON_TYPES[spec.dtype]}", f"    dims: {_dims(spec.dims)}",
             *(f"    {line}" for line in extra)]
    return "  {\n" + "\n".join(lines) + "\n  }"


def _accelerator_parameter(key: str, value: str) -> str:
    return f'{{ key: "{key}" value: "{value}" }}'


def _model_parameter(key: str, value: str) -> str:
    return f'{{ key: "{key}" value: {{ string_value: "{value}" }} }}'


def _gpu_accelerator(signature: ServingSignature, options: ServingOptions) -> str:
    clip = signature.clip.name
    profile = profile_shapes(signature, options.max_batch_size)
    shapes = {k: f"{clip}:{'x'.join(map(str, v))}" for k, v in profile.items()}
    parameters = [
        ("precision_mode", options.precision.upper()),
        ("max_workspace_size_bytes", str(DEFAULT_WORKSPACE_BYTES)),
        ("trt_engine_cache_enable", "true"),
        ("trt_engine_cache_path", f"{TRT_ENGINE_CACHE_ROOT}/{options.name}"),
        ("trt_profile_min_shapes", shapes["min"]),
        ("trt_profile_opt_shapes", shapes["opt"]),
        ("trt_profile_max_shapes", shapes["max"]),
    ]
    body = "\n".join(f"        parameters {_accelerator_parameter(k, v)}" for k, v in parameters)
    return ("optimization {\n  execution_accelerators {\n    gpu_execution_accelerator [\n      {\n"
            f'        name: "tensorrt"\n{body}\n      }}\n    ]\n  }}\n}}')


def render_config(signature: ServingSignature, options: ServingOptions, clip_span: ClipSpan | None = None) -> str:
    """The text of config.pbtxt. It depends only on the signature, the serving options and the training clips'
    span (not on the checkpoint's weights), so a new version of the same model gets the same text."""
    if options.target == "onnxruntime":
        platform = 'platform: "onnxruntime_onnx"'
    elif options.target == "tensorrt":
        platform = 'platform: "tensorrt_plan"'
    elif options.target == "openvino":
        platform = 'backend: "openvino"'
    else:
        platform = 'backend: "python"'
    outputs = [_tensor(spec, *((f'label_filename: "{LABELS_FILE}"',) if spec.name == OUTPUT_PROBABILITIES else ()))
               for spec in signature.outputs]
    clip = signature.clip
    sections = [
        "# Written by `stanet export`: tensor names, types and dims come from stanet.constants and the model's\n"
        "# ModelConfig. Every version folder of this model must serve this exact signature.",
        f'name: "{options.name}"\n{platform}\nmax_batch_size: {options.max_batch_size}',
        "input [\n" + ",\n".join(_tensor(spec) for spec in signature.inputs) + "\n]",
        "output [\n" + ",\n".join(outputs) + "\n]",
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_MICROSECONDS}\n"
        "  default_queue_policy {\n"
        f"    max_queue_size: {QUEUE_SIZE_PER_BATCH * options.max_batch_size}\n"
        f"    default_timeout_microseconds: {QUEUE_TIMEOUT_MICROSECONDS}\n"
        "    timeout_action: REJECT\n"
        "  }\n}",
        f"instance_group [\n  {{ kind: KIND_{options.instance_kind.upper()} count: {options.instance_count} }}\n]",
        # Not READY until one real-shaped clip has run: the first client request does not pay for lazy
        # initialization (or, on GPU, for the engine build).
        "model_warmup [\n  {\n"
        f'    name: "{WARMUP_NAME}"\n    batch_size: 1\n'
        f'    inputs {{\n      key: "{clip.name}"\n      value {{\n'
        f"        data_type: {TRITON_TYPES[clip.dtype]}\n        dims: {_dims(clip.dims)}\n        zero_data: true\n"
        "      }\n    }\n  }\n]",
    ]
    if options.target == "onnxruntime" and options.instance_kind == "gpu":
        sections.append(_gpu_accelerator(signature, options))
    if options.target != "python":
        buckets = ", ".join(f"{seconds * 1000:g}" for seconds in LATENCY_BUCKETS_SECONDS)
        sections.append("model_metrics {\n  metric_control [\n    {\n"
                        f'      metric_identifier {{ family: "{LATENCY_HISTOGRAM_FAMILY}" }}\n'
                        f"      histogram_options {{ buckets: [ {buckets} ] }}\n    }}\n  ]\n}}")
    parameters: tuple[tuple[str, str], ...] = ()
    if options.target == "python":
        parameters = ((ONNX_FILE_PARAMETER, ONNX_FILE),
                      (INTRA_OP_PARAMETER, str(options.intra_op_threads or DEFAULT_INTRA_OP_THREADS)),
                      (INTER_OP_PARAMETER, DEFAULT_INTER_OP_THREADS),
                      (TIME_BUDGET_PARAMETER, DEFAULT_TIME_BUDGET_MS))
        if options.runtime == "openvino":  # absent: onnxruntime, as every model exported before it
            parameters += ((RUNTIME_PARAMETER, "openvino"), (OPENVINO_FILE_PARAMETER, OPENVINO_XML_FILE),
                           (OPENVINO_STREAMS_PARAMETER, DEFAULT_OPENVINO_STREAMS),
                           (OPENVINO_HINT_PARAMETER, DEFAULT_OPENVINO_HINT),
                           (OPENVINO_PRECISION_PARAMETER, "bf16" if options.precision == "bf16" else "fp32"))
    elif options.target == "openvino":
        parameters = backend_parameters(options.precision, options.intra_op_threads)
    if clip_span is not None:  # metadata for timeline clients (serving/client.py); the backends ignore it
        parameters += ((CLIP_SPAN_FRAMES_PARAMETER, str(clip_span.frames)),
                       (CLIP_SPAN_SECONDS_PARAMETER, f"{clip_span.seconds:.6g}"))
    if parameters:
        sections.append("parameters [\n" + ",\n".join(f"  {_model_parameter(k, v)}" for k, v in parameters) + "\n]")
    return "\n\n".join(sections) + "\n"


def render_labels(class_names: tuple[str, ...]) -> str:
    """labels.txt for the classification extension: one class name per line, in label-index order."""
    return "".join(f"{name}\n" for name in class_names)
