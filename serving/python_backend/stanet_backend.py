"""The python backend's logic as plain functions: read the model config, run all requests of a batch through
one onnxruntime session (or one OpenVINO compiled model, openvino_runtime.py, with `runtime: openvino`) in a
single call, and give every request its own outputs or its own error.

Runs inside Triton's python stub, where only numpy, onnxruntime and openvino exist: nothing from the stanet repository
is imported, and the expected clip shape comes from config.pbtxt (`input.dims`), not from stanet.

Every model call runs on a worker thread watched by a `Watchdog`: a call past its time budget, or one whose
requests have all been cancelled by their clients, is ended (onnxruntime's RunOptions.terminate) and its
requests answered with an error, so a hung call never holds the model forever. Outputs are checked to be
finite before they leave. Error messages name shapes and types, never file paths.

Where the served time goes inside the stub (`PhaseClock`, exported as stanet_backend_phase_seconds) and why
one-thread instances that fill the server's cores are pinned to one core each (`instance_cores`): see
docs/serving.md, "The python-backend hop".
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
PIN_PARAMETER = "pin_instances"  # "auto": one-thread instances that exactly fill the cores get one core each; "off"
PIN_MODES = ("auto", "off")
WATCH_INTERVAL_S = 0.02
# A queued request's cancellation is looked up (one round trip to Triton per request) only when the batch is
# expected to run at least this long: a shorter call ends before the watchdog could end it anyway.
CANCEL_CHECK_MIN_S = WATCH_INTERVAL_S

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
    allow_spinning: bool = True  # see spinning_allowed (OpenVINO: openvino_runtime.served_pinning)
    time_budget_s: float = 30.0
    runtime: str = "onnxruntime"  # one of RUNTIMES
    openvino_streams: int = 1
    openvino_performance_hint: str = DEFAULT_OPENVINO_HINT
    openvino_precision: str = "fp32"
    pin: str = "auto"  # one of PIN_MODES (see instance_cores)
    instances: int = 1  # the model's instances, each its own stub process


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
    instances = instance_count(config)
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
    pin = _text_parameter(config, PIN_PARAMETER, PIN_MODES[0])
    if pin not in PIN_MODES:
        raise ValueError(f"config parameter {PIN_PARAMETER!r} must be one of {PIN_MODES}, got {pin!r}")
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
        pin=pin,
        instances=instances,
    )


def instance_count(config: dict[str, Any]) -> int:
    """The model's instances over all its instance groups (1 without any)."""
    return sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1


def instance_index(config: dict[str, Any], instance_name: str) -> int:
    """This instance's position among the model's instances, from the name Triton gives it
    ("<group name>_<index in group>", the group name defaulting to "<model>_<group index>")."""
    groups = config.get("instance_group", [])
    head, _, index = instance_name.rpartition("_")
    if not index.isdigit():
        return 0
    before = 0
    for position, group in enumerate(groups):
        if head == group.get("name", f"{config.get('name', '')}_{position}"):
            return before + int(index)
        before += int(group.get("count", 1))
    return int(index)


def instance_cores(settings: BackendSettings, index: int) -> tuple[int, ...]:
    """The core this instance's model thread is pinned to, or () for none. Only one-thread onnxruntime
    instances whose count equals the cores the server may use (`pin: auto`): then the cores are the server's
    (a cpuset, a machine of its own), and a model thread that stays on its core is woken there at once, not
    behind the other instance's thread, and finds its caches as it left them (docs/serving.md). With a wider
    affinity mask than the instances need (a CPU quota on a big host) nothing is pinned."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if (settings.pin != "auto" or settings.runtime != "onnxruntime" or settings.intra_op_threads != 1
            or settings.instances != len(cores)):
        return ()
    return (cores[index % len(cores)],)


def pin_thread(cores: tuple[int, ...]) -> None:
    """Pin the calling thread (Linux: pid 0 is the thread) to `cores`; nothing for (). Pinning only makes the
    thread faster: a core taken away since (a cpuset changed at run time) leaves it unpinned, never failing."""
    if cores:
        try:
            os.sched_setaffinity(0, cores)
        except OSError:
            pass


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
    gets a fresh one. The worker is pinned to `cores` (instance_cores). Each call's wall time in the worker
    (`model_s`) and around it (`call_s`: the hand-off both ways included) are kept, and a running mean of the
    seconds per clip (`expected_s`)."""

    def __init__(self, run: Runner, budget_s: float, cores: tuple[int, ...] = ()):
        self.run, self.budget_s, self.cores = run, budget_s, cores
        self.model_s = self.call_s = 0.0
        self._per_clip_s: float | None = None
        self._executor = self._new_executor()

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="stanet-model", initializer=pin_thread,
                                  initargs=(self.cores,))

    def _timed(self, batch: np.ndarray, options: ort.RunOptions) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        outputs = self.run(batch, options)
        self.model_s = time.perf_counter() - started
        return outputs

    def expected_s(self, clips: int) -> float:
        """How long a call of `clips` clips is expected to take; infinite before the first call returned."""
        return float("inf") if self._per_clip_s is None else self._per_clip_s * clips

    def __call__(self, batch: np.ndarray, cancelled: Callable[[], bool] = lambda: False) -> dict[str, np.ndarray]:
        options = ort.RunOptions()
        started = time.perf_counter()
        self.model_s = 0.0
        future = self._executor.submit(self._timed, batch, options)
        deadline = time.monotonic() + self.budget_s
        while True:
            try:
                outputs = future.result(timeout=WATCH_INTERVAL_S)
            except FutureTimeout:
                if cancelled():
                    self._abandon(future, options)
                    raise CallEnded("the request was cancelled", CANCELLED) from None
                if time.monotonic() > deadline:
                    self._abandon(future, options)
                    raise CallEnded(f"the model call exceeded its time budget of {self.budget_s:g} s and was "
                                    f"ended", INTERNAL) from None
            else:
                self.call_s = time.perf_counter() - started
                per_clip = self.model_s / max(len(batch), 1)
                self._per_clip_s = per_clip if self._per_clip_s is None else 0.9 * self._per_clip_s + 0.1 * per_clip
                return outputs

    def _abandon(self, future, options: ort.RunOptions) -> None:
        options.terminate = True
        try:
            future.result(timeout=0.2)  # onnxruntime stops at its next operator
        except FutureTimeout:  # stuck elsewhere: leave the thread, take a new one
            self._executor.shutdown(wait=False)
            self._executor = self._new_executor()
        except Exception:  # noqa: BLE001 - the terminated run's own error; already answered
            pass

    def close(self) -> None:
        self._executor.shutdown(wait=False)


PHASE_METRIC = "stanet_backend_phase_seconds"  # a counter per phase; `stanet bench` reads it
PHASES = ("cancel_check", "inputs", "batch", "handoff", "model", "outputs", "responses")


class PhaseClock:
    """Seconds spent in each phase of `execute`, summed, handed out at most every `interval_s` (each hand-out
    is one metric update per phase, a message to Triton, kept off the per-request path). Phases: looking up
    cancellations, reading the input tensors, checking and concatenating the batch, the hand-off to the
    model thread and back, the model call itself, splitting and checking the outputs, building responses."""

    def __init__(self, interval_s: float = 0.25):
        self.interval_s = interval_s
        self._sums = dict.fromkeys(PHASES, 0.0)
        self._last = time.monotonic()

    def add(self, phase: str, seconds: float) -> None:
        self._sums[phase] += seconds

    def take_if_due(self) -> dict[str, float] | None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return None
        sums, self._sums, self._last = self._sums, dict.fromkeys(PHASES, 0.0), now
        return sums


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
                   settings: BackendSettings, *, cancelled: Callable[[], bool] = lambda: False,
                   clock: PhaseClock | None = None) -> list[RequestResult]:
    """One result per request, in order. Valid requests are concatenated and run once; a bad request gets its
    own error and does not fail the others. `run(batch, cancelled)` is a Watchdog (or a plain function of the
    batch); `cancelled()` says whether every valid request's client has gone. With a `clock` (and a Watchdog)
    the time of each phase is added to it."""
    started = time.perf_counter()
    results = [RequestResult(error=problem, code=INVALID_ARG) if (problem := check_clip(clip, settings)) else None
               for clip in clips]
    valid = [i for i, result in enumerate(results) if result is None]
    if not valid:
        return results
    sizes = [len(clips[i]) for i in valid]
    batch = np.concatenate([clips[i] for i in valid])  # (sum of sizes, ...)
    called = time.perf_counter()
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
    ends = np.cumsum(sizes)  # request k owns rows ends[k] - sizes[k] .. ends[k] - 1 of every output
    arrays = {name: outputs[name].astype(settings.output_dtypes[name], copy=False) for name in settings.output_names}
    # One finiteness pass per output over the whole batch (not one per request and output): rows with a
    # NaN or an infinity, then a cumulative count to tell each request's share.
    bad_rows = {name: np.concatenate([[0], np.cumsum(~np.isfinite(value.reshape(len(value), -1)).all(axis=1))])
                for name, value in arrays.items()}
    for k, i in enumerate(valid):
        first, last = ends[k] - sizes[k], ends[k]
        bad = [name for name in settings.output_names if bad_rows[name][last] > bad_rows[name][first]]
        if bad:
            results[i] = RequestResult(error=f"the model produced NaN or infinite values in {bad} for this request; "
                                             f"they are not returned")
        else:
            results[i] = RequestResult(outputs={name: arrays[name][first:last] for name in settings.output_names})
    if clock is not None and isinstance(run, Watchdog):
        clock.add("batch", called - started)
        clock.add("handoff", run.call_s - run.model_s)
        clock.add("model", run.model_s)
        clock.add("outputs", time.perf_counter() - called - run.call_s)
    return results
