"""The python backend's logic as plain functions: read the model config, run all requests of a batch through
one onnxruntime session (or one OpenVINO compiled model, openvino_runtime.py, with `runtime: openvino`) in a
single call, and give every request its own outputs or its own error.

Runs inside Triton's python stub, where only numpy, onnxruntime and openvino exist: nothing from the stanet repository
is imported, and the expected clip shape comes from config.pbtxt (`input.dims`), not from stanet.

Every model call runs on a worker thread watched by a `Watchdog`: a call past its time budget, or one whose
requests have all been cancelled by their clients, is ended (onnxruntime's RunOptions.terminate) and its
requests answered with an error, so a hung call never holds the model forever. Outputs are checked to be
finite before they leave. Error messages name shapes and types, never file paths.
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort

# config.pbtxt `parameters`, written by `stanet export` (this file cannot import stanet's constants).
ONNX_FILE_PARAMETER = "onnx_file"  # the graph's file name, beside model.py in the version folder
INTRA_OP_PARAMETER = "intra_op_thread_count"  # "0" = every core the server may use
INTER_OP_PARAMETER = "inter_op_thread_count"
TIME_BUDGET_PARAMETER = "time_budget_ms"  # the longest one model call may take before it is ended
DEFAULT_TIME_BUDGET_MS = "30000"
RUNTIME_PARAMETER = "runtime"  # which runtime runs the graph; absent = onnxruntime (models exported before it)
RUNTIMES = ("onnxruntime", "openvino")
OPENVINO_FILE_PARAMETER = "openvino_file"  # the IR's .xml beside model.py (its .bin beside it)
OPENVINO_STREAMS_PARAMETER = "openvino_num_streams"  # NUM_STREAMS of each instance's compiled model
OPENVINO_HINT_PARAMETER = "openvino_performance_hint"  # LATENCY or THROUGHPUT
OPENVINO_PRECISION_PARAMETER = "openvino_precision"  # fp32 or bf16 (an int8 IR carries its own precision)
DEFAULT_OPENVINO_STREAMS, DEFAULT_OPENVINO_HINT = "1", "LATENCY"
OPENVINO_PRECISIONS = ("fp32", "bf16")
WATCH_INTERVAL_S = 0.02

# Result codes: what the adapter turns into a TritonError code.
INVALID_ARG, INTERNAL, CANCELLED = "INVALID_ARG", "INTERNAL", "CANCELLED"

Runner = Callable[[np.ndarray, "ort.RunOptions | None"], dict[str, np.ndarray]]


@dataclass(frozen=True)
class BackendSettings:
    input_name: str
    input_dtype: np.dtype
    input_dims: tuple[int, ...]  # without the batch axis, e.g. (T, H, W, 3)
    max_batch_size: int
    output_names: tuple[str, ...]
    output_dtypes: dict[str, np.dtype]
    intra_op_threads: int
    inter_op_threads: int
    allow_spinning: bool = True  # see spinning_allowed (OpenVINO: whether its threads are pinned to cores)
    time_budget_s: float = 30.0
    runtime: str = "onnxruntime"  # one of RUNTIMES
    openvino_streams: int = 1
    openvino_performance_hint: str = DEFAULT_OPENVINO_HINT
    openvino_precision: str = "fp32"


@dataclass
class RequestResult:
    outputs: dict[str, np.ndarray] | None = None
    error: str | None = None
    code: str = INTERNAL  # with an error: INVALID_ARG (the request's own fault), CANCELLED or INTERNAL

    @property
    def invalid_input(self) -> bool:
        return self.error is not None and self.code == INVALID_ARG


class CallEnded(RuntimeError):
    """A model call the watchdog ended (time budget or cancellation); `code` is the result code."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def available_cores() -> int:
    """CPU cores this process may run on (respects a container's cpuset, unlike os.cpu_count())."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _text_parameter(config: dict[str, Any], key: str, default: str) -> str:
    value = config.get("parameters", {}).get(key, {})
    return value.get("string_value", default) if isinstance(value, dict) else str(value)


def _parameter(config: dict[str, Any], key: str, default: str) -> int:
    text = _text_parameter(config, key, default)
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"config parameter {key!r} must be an integer, got {text!r}") from None
    if number < 0:
        raise ValueError(f"config parameter {key!r} must be >= 0, got {number}")
    return number


def settings_from_config(config: dict[str, Any], dtypes: dict[str, np.dtype]) -> BackendSettings:
    """Settings from Triton's model config (the JSON it hands to `initialize`, parsed) and the numpy dtype of
    every tensor (pb_utils.triton_string_to_numpy of each config entry's data_type)."""
    if len(config.get("input", [])) != 1:
        raise ValueError(f"the model config must declare exactly one input, found {len(config.get('input', []))}")
    clip = config["input"][0]
    outputs = tuple(spec["name"] for spec in config.get("output", []))
    if not outputs:
        raise ValueError("the model config declares no outputs")
    intra = _parameter(config, INTRA_OP_PARAMETER, "0")
    instances = sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1
    budget_ms = _parameter(config, TIME_BUDGET_PARAMETER, DEFAULT_TIME_BUDGET_MS)
    if budget_ms < 1:
        raise ValueError(f"config parameter {TIME_BUDGET_PARAMETER!r} must be >= 1 (milliseconds)")
    intra_op_threads = intra or available_cores()  # every core; instances beyond one then do not spin
    runtime = _text_parameter(config, RUNTIME_PARAMETER, RUNTIMES[0])
    if runtime not in RUNTIMES:
        raise ValueError(f"config parameter {RUNTIME_PARAMETER!r} must be one of {RUNTIMES}, got {runtime!r}")
    hint = _text_parameter(config, OPENVINO_HINT_PARAMETER, DEFAULT_OPENVINO_HINT)
    if hint not in ("LATENCY", "THROUGHPUT"):
        raise ValueError(f"config parameter {OPENVINO_HINT_PARAMETER!r} must be LATENCY or THROUGHPUT, got {hint!r}")
    precision = _text_parameter(config, OPENVINO_PRECISION_PARAMETER, OPENVINO_PRECISIONS[0])
    if precision not in OPENVINO_PRECISIONS:
        raise ValueError(f"config parameter {OPENVINO_PRECISION_PARAMETER!r} must be one of {OPENVINO_PRECISIONS}, "
                         f"got {precision!r}")
    return BackendSettings(
        input_name=clip["name"],
        input_dtype=np.dtype(dtypes[clip["name"]]),
        input_dims=tuple(int(d) for d in clip["dims"]),  # Triton's JSON may give int64 dims as strings
        max_batch_size=int(config.get("max_batch_size", 0)),
        output_names=outputs,
        output_dtypes={name: np.dtype(dtypes[name]) for name in outputs},
        intra_op_threads=intra_op_threads,
        allow_spinning=spinning_allowed(intra_op_threads, instances),
        inter_op_threads=_parameter(config, INTER_OP_PARAMETER, "1") or 1,
        time_budget_s=budget_ms / 1000.0,
        runtime=runtime,
        openvino_streams=_parameter(config, OPENVINO_STREAMS_PARAMETER, DEFAULT_OPENVINO_STREAMS) or 1,
        openvino_performance_hint=hint,
        openvino_precision=precision,
    )


def _file_parameter(config: dict[str, Any], key: str, what: str) -> str:
    name = _text_parameter(config, key, "")
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"config parameter {key!r} must name the {what} file beside model.py, got "
                         f"{name!r}; export again")
    return name


def onnx_file(config: dict[str, Any]) -> str:
    """The file name of the ONNX graph beside model.py, from the model config (`stanet export` writes it)."""
    return _file_parameter(config, ONNX_FILE_PARAMETER, "ONNX")


def openvino_file(config: dict[str, Any]) -> str:
    """The file name of the OpenVINO IR (.xml) beside model.py, from the model config."""
    return _file_parameter(config, OPENVINO_FILE_PARAMETER, "OpenVINO .xml")


def create_runner(folder: str | Path, config: dict[str, Any], settings: BackendSettings) -> Runner:
    """The served instance's model call, by the config's runtime: an onnxruntime session over the ONNX file
    or an OpenVINO compiled model over the IR, both from `folder` (the version folder)."""
    folder = Path(folder)
    if settings.runtime == "openvino":
        if __package__:  # imported from the repository (tests, the benchmark)
            from . import openvino_runtime
        else:  # Triton's stub: the version folder is on sys.path
            import openvino_runtime
        compiled = openvino_runtime.create_compiled(folder / openvino_file(config), settings)
        return openvino_runtime.compiled_runner(compiled, settings.input_name, settings.output_names)
    return session_runner(create_session(folder / onnx_file(config), settings), settings)


def spinning_allowed(intra_op_threads: int, instances: int) -> bool:
    """onnxruntime's idle threads spin for work by default; when the instances together have more threads than
    the cores, a spinning thread takes the core another instance is computing on, so they sleep instead."""
    return intra_op_threads * instances <= available_cores()


def open_session(model_path: str | Path, intra_op_threads: int, inter_op_threads: int,
                 allow_spinning: bool) -> ort.InferenceSession:
    """A CPU onnxruntime session with the backend's thread settings: what every served instance runs, and
    what the in-process benchmark (bench/runners.py) runs to compare with it."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    if not allow_spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def create_session(model_path: str | Path, settings: BackendSettings) -> ort.InferenceSession:
    """The served session; ValueError if the graph does not take the input the config declares."""
    session = open_session(model_path, settings.intra_op_threads, settings.inter_op_threads, settings.allow_spinning)
    graph_input = session.get_inputs()[0]
    graph_dims = tuple(graph_input.shape[1:])  # without the batch axis
    if graph_input.name != settings.input_name or graph_dims != settings.input_dims:
        raise ValueError(f"config.pbtxt declares input {settings.input_name!r} {list(settings.input_dims)} but "
                         f"{Path(model_path).name} takes {graph_input.name!r} {list(graph_dims)}: the config does "
                         f"not belong to this model; export again")
    return session


def session_runner(session: ort.InferenceSession, settings: BackendSettings) -> Runner:
    def run(batch: np.ndarray, run_options: ort.RunOptions | None = None) -> dict[str, np.ndarray]:
        names = list(settings.output_names)
        return dict(zip(names, session.run(names, {settings.input_name: batch}, run_options)))

    return run


class Watchdog:
    """Runs model calls on a worker thread and ends a call that exceeds `budget_s`, or whose requests have all
    been cancelled, by setting onnxruntime's RunOptions.terminate; the waiting requests are answered at
    once. A call that does not return even then (a hang outside onnxruntime) keeps its thread; the next call
    gets a fresh one."""

    def __init__(self, run: Runner, budget_s: float):
        self.run, self.budget_s = run, budget_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stanet-model")

    def __call__(self, batch: np.ndarray, cancelled: Callable[[], bool] = lambda: False) -> dict[str, np.ndarray]:
        options = ort.RunOptions()
        future = self._executor.submit(self.run, batch, options)
        deadline = time.monotonic() + self.budget_s
        while True:
            try:
                return future.result(timeout=WATCH_INTERVAL_S)
            except FutureTimeout:
                if cancelled():
                    self._abandon(future, options)
                    raise CallEnded("the request was cancelled", CANCELLED) from None
                if time.monotonic() > deadline:
                    self._abandon(future, options)
                    raise CallEnded(f"the model call exceeded its time budget of {self.budget_s:g} s and was "
                                    f"ended", INTERNAL) from None

    def _abandon(self, future, options: ort.RunOptions) -> None:
        options.terminate = True
        try:
            future.result(timeout=0.2)  # onnxruntime stops at its next operator
        except FutureTimeout:  # stuck elsewhere: leave the thread, take a new one
            self._executor.shutdown(wait=False)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stanet-model")
        except Exception:  # noqa: BLE001 - the terminated run's own error; already answered
            pass

    def close(self) -> None:
        self._executor.shutdown(wait=False)


def check_clip(clip: np.ndarray | None, settings: BackendSettings) -> str | None:
    """None if `clip` can join the batch, else an error naming the expected and the received shape/type."""
    expected = f"[batch, {', '.join(map(str, settings.input_dims))}] (batch 1 to {settings.max_batch_size})"
    if clip is None:
        return f"input {settings.input_name!r} is missing; expected {settings.input_dtype} {expected}"
    shape_ok = (clip.ndim == len(settings.input_dims) + 1 and tuple(clip.shape[1:]) == settings.input_dims
                and 1 <= clip.shape[0] <= max(settings.max_batch_size, 1))
    if not shape_ok:
        return f"input {settings.input_name!r} has shape {list(clip.shape)}, expected {expected}"
    if clip.dtype != settings.input_dtype:
        return f"input {settings.input_name!r} has type {clip.dtype}, expected {settings.input_dtype}"
    if np.issubdtype(clip.dtype, np.floating) and not np.all(np.isfinite(clip)):
        return f"input {settings.input_name!r} holds NaN or infinite values; expected finite pixel values"
    return None


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[\w.@+-]+){2,}/?")


def scrub(message: str) -> str:
    """An error message fit for a client: file system paths replaced, first line only, bounded length."""
    first = (message.strip().splitlines() or [""])[0]
    return _PATH.sub("<path>", first)[:300]


def infer_requests(run: Callable[..., dict[str, np.ndarray]], clips: list[np.ndarray | None],
                   settings: BackendSettings, *, cancelled: Callable[[], bool] = lambda: False) -> list[RequestResult]:
    """One result per request, in order. Valid requests are concatenated and run once; a bad request gets its
    own error and does not fail the others. `run(batch, cancelled)` is a Watchdog (or a plain function of the
    batch); `cancelled()` says whether every valid request's client has gone."""
    results = [RequestResult(error=problem, code=INVALID_ARG) if (problem := check_clip(clip, settings)) else None
               for clip in clips]
    valid = [i for i, result in enumerate(results) if result is None]
    if not valid:
        return results
    sizes = [len(clips[i]) for i in valid]
    batch = np.concatenate([clips[i] for i in valid])  # (sum of sizes, ...)
    try:
        outputs = run(batch, cancelled) if isinstance(run, Watchdog) else run(batch)
    except CallEnded as exc:
        for i in valid:
            results[i] = RequestResult(error=str(exc), code=exc.code)
        return results
    except Exception as exc:  # noqa: BLE001 - reported to every request of the batch, the server keeps running
        for i in valid:
            results[i] = RequestResult(error=f"the model failed on a batch of {sum(sizes)} clips: {scrub(str(exc))}")
        return results
    splits = np.cumsum(sizes)[:-1]
    parts = {name: np.split(outputs[name].astype(settings.output_dtypes[name], copy=False), splits)
             for name in settings.output_names}
    for k, i in enumerate(valid):
        mine = {name: parts[name][k] for name in settings.output_names}
        bad = [name for name, value in mine.items() if not np.all(np.isfinite(value))]
        if bad:
            results[i] = RequestResult(error=f"the model produced NaN or infinite values in {bad} for this request; "
                                             f"they are not returned")
        else:
            results[i] = RequestResult(outputs=mine)
    return results
