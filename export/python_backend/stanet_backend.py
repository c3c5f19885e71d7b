"""The python backend's logic as plain functions: read the model config, run all requests of a batch through
one onnxruntime session in a single call, and give every request its own outputs or its own error.

Runs inside Triton's python stub, where only numpy and onnxruntime exist: nothing from the stanet repository
is imported, and the expected clip shape comes from config.pbtxt (`input.dims`), not from stanet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort

ONNX_FILE = "model.onnx"  # beside model.py in the version folder
INTRA_OP_PARAMETER = "intra_op_thread_count"  # config.pbtxt `parameters`; "0" = every core we may use
INTER_OP_PARAMETER = "inter_op_thread_count"

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


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


@dataclass
class RequestResult:
    outputs: dict[str, np.ndarray] | None = None
    error: str | None = None
    invalid_input: bool = False  # the request's own fault (INVALID_ARG), not the server's (INTERNAL)


def available_cores() -> int:
    """CPU cores this process may run on (respects a container's cpuset, unlike os.cpu_count())."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _parameter(config: dict[str, Any], key: str, default: str) -> int:
    value = config.get("parameters", {}).get(key, {})
    text = value.get("string_value", default) if isinstance(value, dict) else str(value)
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
    return BackendSettings(
        input_name=clip["name"],
        input_dtype=np.dtype(dtypes[clip["name"]]),
        input_dims=tuple(int(d) for d in clip["dims"]),  # Triton's JSON may give int64 dims as strings
        max_batch_size=int(config.get("max_batch_size", 0)),
        output_names=outputs,
        output_dtypes={name: np.dtype(dtypes[name]) for name in outputs},
        intra_op_threads=intra or available_cores(),
        inter_op_threads=_parameter(config, INTER_OP_PARAMETER, "1") or 1,
    )


def create_session(model_path: str | Path, settings: BackendSettings) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def session_runner(session: ort.InferenceSession, settings: BackendSettings) -> Runner:
    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(settings.output_names, session.run(list(settings.output_names), {settings.input_name: batch})))

    return run


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
    return None


def infer_requests(run: Runner, clips: list[np.ndarray | None], settings: BackendSettings) -> list[RequestResult]:
    """One result per request, in order. Valid requests are concatenated and run once; a bad request gets its
    own error and does not fail the others."""
    results = [RequestResult(error=problem, invalid_input=True) if (problem := check_clip(clip, settings)) else None
               for clip in clips]
    valid = [i for i, result in enumerate(results) if result is None]
    if not valid:
        return results
    sizes = [len(clips[i]) for i in valid]
    try:
        outputs = run(np.concatenate([clips[i] for i in valid]))  # (sum of sizes, ...)
    except Exception as exc:  # noqa: BLE001 - reported to every request of the batch, the server keeps running
        for i in valid:
            results[i] = RequestResult(error=f"onnxruntime failed on a batch of {sum(sizes)} clips: {exc}")
        return results
    splits = np.cumsum(sizes)[:-1]
    parts = {name: np.split(outputs[name].astype(settings.output_dtypes[name], copy=False), splits)
             for name in settings.output_names}
    for k, i in enumerate(valid):
        results[i] = RequestResult(outputs={name: parts[name][k] for name in settings.output_names})
    return results
