"""The export chain behind `stanet export`: checkpoint -> ONNX -> gates -> (int8 / TensorRT) -> Triton model
directory. Every gate runs before anything is written; a failed gate raises GateError with its numbers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch

from export.clips import ClipSet, dataset_clips, random_clips
from export.errors import ExportError, GateError
from export.onnx_graph import ExportedGraph, ServingModule, export_onnx, serving_module
from export.openvino_backend import config_problems
from export.openvino_stage import choose_precision, openvino_stage
from export.parity import check_parity, onnx_session, run_onnx
from export.quantize import CALIBRATION_CLIPS, GATE_CLIPS, check_int8, quantize_int8
from export.repository import ModelFiles, plan_write, write_model
from export.signature import ServingSignature
from export.stage_result import StageResult
from export.tensorrt import build_engine, check_engine, require_tensorrt, static_check
from export.triton_config import (DEFAULT_INSTANCE_KIND, SUPPORTED_PRECISIONS, ServingOptions, check_options,
                                  render_config, render_labels)
from serving import python_backend
from stanet.checkpoint import Checkpoint, load_checkpoint
from stanet.constants import (BACKEND_FILE, MODEL_NAME, ONNX_FILE, OPENVINO_BACKEND_FILE, PLAN_FILE,
                              PYTHON_MODEL_FILE)
from stanet.integrity import MANIFEST_FILE, manifest_text

PARITY_DATA_CLIPS = 32  # real clips from --data compared at each batch size (evenly spread over the split)
# --target python: the Triton runtime, which lives with serving, copied into the version folder as it is.
PYTHON_BACKEND_DIR = Path(python_backend.__file__).parent
PYTHON_BACKEND_FILES = (PYTHON_MODEL_FILE, BACKEND_FILE)
DEFAULT_TIMING_CACHE = Path.home() / ".cache" / "stanet" / "tensorrt_timing.cache"


@dataclass(frozen=True)
class ExportRequest:
    checkpoint: Path
    repository: Path
    target: str
    name: str = MODEL_NAME
    version: int = 1
    max_batch_size: int = 8
    precision: str | None = None  # None: the target's default (see SUPPORTED_PRECISIONS)
    instance_kind: str | None = None  # None: cpu for onnxruntime/python, gpu for tensorrt
    instances: int = 0  # 0: the default count (see export.triton_config.ServingOptions)
    intra_op_threads: int = 0  # python target; 0: every core, counted when the model loads
    calibration: Path | None = None
    data: Path | None = None
    timing_cache: Path = DEFAULT_TIMING_CACHE
    runtime: str = "onnxruntime"  # python target: onnxruntime or openvino inside the python backend


def serving_options(request: ExportRequest) -> ServingOptions:
    """The options the export serves with. An OpenVINO model without --precision starts as fp32 here;
    export_model then picks bf16 where this CPU has it and its gate passes (export/openvino_stage.py)."""
    kind = request.instance_kind or DEFAULT_INSTANCE_KIND.get(request.target, "cpu")
    precision = request.precision or (SUPPORTED_PRECISIONS.get((request.target, kind)) or ("fp32",))[0]
    options = ServingOptions(name=request.name, target=request.target, instance_kind=kind,
                             max_batch_size=request.max_batch_size, precision=precision,
                             instances=request.instances, intra_op_threads=request.intra_op_threads,
                             runtime=request.runtime)
    check_options(options)
    if precision == "int8" and request.calibration is None:
        raise ExportError("--precision int8 needs --calibration DATA_DIR: a dataset in the stanet format whose "
                          "train (or val) split provides the calibration clips")
    if precision != "int8" and request.calibration is not None:
        raise ExportError("--calibration is only used with --precision int8")
    if request.calibration is not None and not Path(request.calibration).is_dir():
        raise ExportError(f"calibration set {request.calibration} is not a directory; expected a dataset in the "
                          f"stanet format (classes.txt + annotations.jsonl)")
    return options


def _batch_sizes(max_batch: int) -> tuple[int, ...]:
    return (1,) if max_batch == 1 else (1, max_batch)


def _subset(clips: ClipSet, limit: int) -> ClipSet:
    if len(clips) <= limit:
        return clips
    picks = np.unique(np.linspace(0, len(clips) - 1, limit).round().astype(int))
    return ClipSet(clips.clips[picks], clips.labels[picks], clips.source, clips.skipped)


def _version_files(options: ServingOptions, served_onnx: bytes, plan: bytes | None,
                   ir: dict[str, bytes] | None) -> dict[str, bytes]:
    if options.target == "tensorrt":
        return {PLAN_FILE: plan}
    if options.target == "openvino":
        return dict(ir)
    files = {ONNX_FILE: served_onnx}
    if options.target == "python":
        backend_files = PYTHON_BACKEND_FILES + ((OPENVINO_BACKEND_FILE,) if options.runtime == "openvino" else ())
        files.update({name: (PYTHON_BACKEND_DIR / name).read_bytes() for name in backend_files})
        files.update(ir or {})  # the IR beside the ONNX graph it was converted from
    return files


def _signature_dict(signature: ServingSignature) -> dict[str, Any]:
    def spec(s):
        return {"name": s.name, "dtype": s.dtype, "dims": ["batch", *s.dims]}

    return {"inputs": [spec(s) for s in signature.inputs], "outputs": [spec(s) for s in signature.outputs]}


def _passed(stages: tuple[StageResult, ...]) -> tuple[StageResult, ...]:
    """`stages` if the last one passed; else GateError carrying the report sections of all of them."""
    if stages[-1].failure is not None:
        raise GateError(stages[-1].failure, _sections(stages))
    return stages


def _sections(stages: tuple[StageResult, ...]) -> dict[str, Any]:
    return {key: value for stage in stages for key, value in stage.sections.items()}


def _summed_times(*parts: dict[str, float]) -> dict[str, float]:
    """Seconds per step over all parts: clips are read for the parity gate and again for int8."""
    times: dict[str, float] = {}
    for part in parts:
        for step, seconds in part.items():
            times[step] = times.get(step, 0.0) + seconds
    return times


def _fp32_stage(module: ServingModule, graph: ExportedGraph, clip_sets: list[ClipSet], max_batch: int,
                log: Callable[[str], None]) -> tuple[StageResult, ort.InferenceSession]:
    """FP32 parity, onnxruntime against PyTorch on every clip set. Returns the stage and the FP32 session the
    later gates compare against."""
    tick = time.perf_counter()
    session = onnx_session(graph.onnx_bytes)
    parity = {s.source: check_parity(module, graph.onnx_bytes, s.clips, batch_sizes=_batch_sizes(max_batch),
                                     session=session) for s in clip_sets}
    seconds = time.perf_counter() - tick
    for source, result in parity.items():
        log(f"parity ({source}): {result.summary()}")
    failed = [f"{source}: {'; '.join(r.failures)} [{r.summary()}]" for source, r in parity.items() if not r.passed]
    failure = "FP32 parity gate failed, nothing was written: " + " | ".join(failed) if failed else None
    sections = {"parity": {source: r.to_dict() for source, r in parity.items()}}
    return StageResult(graph.onnx_bytes, {"parity": seconds}, sections, failure), session


def _int8_stage(request: ExportRequest, checkpoint: Checkpoint, fp32_onnx: bytes,
                fp32_session: ort.InferenceSession, data_clips: ClipSet | None,
                log: Callable[[str], None]) -> StageResult:
    """Calibrate on the train (or val) split, quantize, gate on --data's test split (else the calibration
    set's). Sections: the calibration set and the int8 gate."""
    config, classes = checkpoint.model_config, checkpoint.class_names
    tick = time.perf_counter()
    calibration = dataset_clips(request.calibration, ("train", "val"), config, classes, limit=CALIBRATION_CLIPS)
    gate_clips = data_clips if data_clips is not None else dataset_clips(request.calibration, ("test",), config,
                                                                         classes, limit=GATE_CLIPS)
    times = {"read_clips": time.perf_counter() - tick}
    tick = time.perf_counter()
    int8_onnx = quantize_int8(fp32_onnx, calibration.clips)
    times["quantize"] = time.perf_counter() - tick
    tick = time.perf_counter()
    gate = check_int8(fp32_session, int8_onnx, gate_clips)
    times["int8_gate"] = time.perf_counter() - tick
    log(f"int8 ({len(calibration)} calibration clips, {calibration.source}): {gate.summary()}")
    failure = None if gate.passed else ("int8 gate failed, nothing was written: " + "; ".join(gate.failures)
                                        + f" [{gate.summary()}]")
    sections = {"calibration": {"source": calibration.source, "num_clips": len(calibration),
                                "skipped_videos": calibration.skipped},
                "int8": gate.to_dict()}
    return StageResult(int8_onnx, times, sections, failure)


def _tensorrt_stage(request: ExportRequest, options: ServingOptions, fp32_onnx: bytes,
                    signature: ServingSignature, fp32_session: ort.InferenceSession,
                    clip_sets: list[ClipSet]) -> StageResult:
    """Build the engine on this GPU and gate it against onnxruntime FP32 on the parity clips."""
    tick = time.perf_counter()
    plan = build_engine(fp32_onnx, signature, max_batch=request.max_batch_size,
                        timing_cache=request.timing_cache, fp16=options.precision == "fp16")
    times = {"tensorrt_build": time.perf_counter() - tick}
    clips = np.concatenate([s.clips for s in clip_sets])
    reference = run_onnx(fp32_session, clips, request.max_batch_size)
    gate = check_engine(plan, signature, reference, clips, batch_sizes=_batch_sizes(request.max_batch_size))
    failure = None if gate["passed"] else ("TensorRT engine gate failed, nothing was written: "
                                           + "; ".join(gate["failures"]))
    return StageResult(plan, times, {"tensorrt": {**gate, "plan_size_bytes": len(plan)}}, failure)


def _check_backend_config(options: ServingOptions, config_text: str) -> None:
    """--target openvino: the config must use only the openvino backend's documented parameters (it cannot be
    loaded here to find out)."""
    if options.target == "openvino" and (problems := config_problems(config_text)):
        raise ExportError("the openvino-backend config.pbtxt is not valid: " + "; ".join(problems))


def _openvino_version() -> str:
    import openvino

    return openvino.__version__


def export_model(request: ExportRequest, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole export; returns the report that was written to export_report.json."""
    start = time.perf_counter()
    options = serving_options(request)
    if options.target == "tensorrt":
        require_tensorrt()  # before any work: a CPU machine learns at once what to do instead
    checkpoint: Checkpoint = load_checkpoint(request.checkpoint)
    model = checkpoint.build_model().eval()
    config = checkpoint.model_config
    module, signature = serving_module(model)
    precision_choice = choose_precision(options, request.precision, request.data) if options.uses_openvino else None
    if precision_choice is not None:
        options = replace(options, precision=precision_choice.precision)
        log(f"precision: {precision_choice.precision} ({precision_choice.reason})")
    config_text = render_config(signature, options, checkpoint.clip_span)
    labels = render_labels(checkpoint.class_names)
    _check_backend_config(options, config_text)
    plan_write(request.repository, options.name, request.version, config_text, labels)

    graph = export_onnx(module)
    log(f"ONNX: opset {graph.report['opset']}, {graph.report['node_count']} nodes, "
        f"{graph.report['size_bytes'] / 1e6:.2f} MB, exported in {graph.export_seconds:.2f} s")
    trt_static = static_check(graph.onnx_bytes)
    if options.target == "tensorrt" and not trt_static.passed:
        raise ExportError("the graph cannot be built by TensorRT: " + "; ".join(trt_static.problems))
    notes = []
    if options.instance_kind == "gpu" and options.target == "onnxruntime":
        notes.append(f"the {options.precision.upper()} TensorRT accelerator runs inside Triton on the GPU and is "
                     f"not verified by this export; the gates verified the FP32 graph it is built from")
        if not trt_static.passed:
            notes.append("TensorRT will not take the whole graph (" + "; ".join(trt_static.problems)
                         + "); onnxruntime runs the rest with its CUDA provider")
    for note in notes:
        log(f"note: {note}")

    # FP32 parity: random clips always, real clips from --data when given.
    clip_sets = [random_clips(request.max_batch_size, config)]
    data_clips, read_times = None, {}
    if request.data is not None:
        tick = time.perf_counter()
        limit = GATE_CLIPS if options.precision in ("int8", "bf16") else PARITY_DATA_CLIPS  # drift gates: up to 256
        data_clips = dataset_clips(request.data, ("test",), config, checkpoint.class_names, limit=limit)
        clip_sets.append(_subset(data_clips, PARITY_DATA_CLIPS))
        read_times = {"read_clips": time.perf_counter() - tick}
    fp32, fp32_session = _fp32_stage(module, graph, clip_sets, request.max_batch_size, log)
    stages = _passed((fp32,))
    served_onnx, plan = fp32.artifact, None
    if options.precision == "int8":
        int8 = _int8_stage(request, checkpoint, fp32.artifact, fp32_session, data_clips, log)
        stages = _passed((*stages, int8))
        served_onnx = int8.artifact
    if options.target == "tensorrt":
        engine = _tensorrt_stage(request, options, fp32.artifact, signature, fp32_session, clip_sets)
        stages = _passed((*stages, engine))
        plan = engine.artifact
    ir = None
    if options.uses_openvino:
        gate_clips = data_clips
        if gate_clips is None and options.precision == "int8":  # the int8 stage's gate set: the calibration set's
            gate_clips = dataset_clips(request.calibration, ("test",), config, checkpoint.class_names,
                                       limit=GATE_CLIPS)
        stage = openvino_stage(options.precision, served_onnx, module, fp32_session, clip_sets, gate_clips,
                               _batch_sizes(request.max_batch_size), log)
        if stage.failure is not None and precision_choice is not None and precision_choice.automatic:
            log(f"precision: fp32 (bf16 was chosen for this CPU but its gate failed: {stage.failure})")
            options = replace(options, precision="fp32")
            config_text = render_config(signature, options, checkpoint.clip_span)
            _check_backend_config(options, config_text)
            stage = openvino_stage("fp32", served_onnx, module, fp32_session, clip_sets, gate_clips,
                                   _batch_sizes(request.max_batch_size), log)
        stages = _passed((*stages, stage))
        ir = stage.artifact

    version_files = _version_files(options, served_onnx, plan, ir)
    version_files[MANIFEST_FILE] = manifest_text(version_files).encode()  # checked by `stanet serve`
    times = _summed_times({"onnx_export": graph.export_seconds}, read_times, *(stage.times for stage in stages))
    times["total"] = time.perf_counter() - start
    gated = _sections(stages)
    report = {
        "model": {"name": options.name, "version": request.version, "target": options.target,
                  "runtime": "openvino" if options.uses_openvino else options.runtime,
                  "precision": options.precision,
                  "precision_choice": None if precision_choice is None else precision_choice.reason, "instance_kind": options.instance_kind,
                  "max_batch_size": options.max_batch_size,
                  "files": {f"{request.version}/{name}": len(data) for name, data in version_files.items()}},
        "checkpoint": {"path": str(Path(request.checkpoint).resolve()), "model_config": config.to_dict(),
                       "class_names": list(checkpoint.class_names),
                       "clip_span": checkpoint.clip_span.to_dict() if checkpoint.clip_span else None},
        "signature": _signature_dict(signature),
        "onnx": {**graph.report, "fp32_size_bytes": len(fp32.artifact),
                 **({"int8_size_bytes": len(served_onnx)} if options.precision == "int8" else {})},
        "parity": gated["parity"],
        "calibration": gated.get("calibration"),
        "int8": gated.get("int8"),
        "tensorrt_static_check": trt_static.to_dict(),
        "tensorrt": gated.get("tensorrt"),
        "openvino": gated.get("openvino"),
        "notes": notes,
        "times_seconds": {k: round(v, 3) for k, v in times.items()},
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
                     **({"openvino": _openvino_version()} if options.uses_openvino else {})},
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    files = ModelFiles(config=config_text, labels=labels, report=json.dumps(report, indent=2) + "\n",
                       version_files=version_files)
    written = write_model(request.repository, options.name, request.version, files)
    sizes = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in report["model"]["files"].items())
    log(f"wrote {written.version_dir} ({sizes}) in {times['total']:.1f} s"
        + ("" if written.new_model else f" (new version of {written.model_dir})"))
    return report
