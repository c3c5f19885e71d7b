"""Faults for the reliability tests, injected into the served model's calls (test code: production exports carry
no fault hook). The variant models of tests/server/test_reliability.py get this file and fault_model.py in their
version folders; the config parameter `fault_injection` picks the fault: "delay:<ms>" sleeps before each call,
"hang" never returns, "raise" fails each call, "nan" returns NaN outputs. Only the standard library and numpy:
it runs inside Triton's python stub."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

FAULT_PARAMETER = "fault_injection"
FAULT_MODES = ("none", "delay", "hang", "raise", "nan")

Runner = Callable[..., dict[str, np.ndarray]]  # stanet_backend.Runner: (batch, run_options) -> outputs


def parse_fault(config: dict[str, Any]) -> tuple[str, float]:
    """(mode, delay in seconds) from Triton's model config (parsed JSON); ("none", 0.0) without the parameter."""
    value = config.get("parameters", {}).get(FAULT_PARAMETER, {})
    text = value.get("string_value", "none") if isinstance(value, dict) else str(value)
    mode, _, delay = text.partition(":")
    if mode not in FAULT_MODES or (mode == "delay") != bool(delay):
        raise ValueError(f"config parameter {FAULT_PARAMETER!r} must be one of {FAULT_MODES} (delay as "
                         f"'delay:<ms>'), got {text!r}")
    return mode, (int(delay) / 1000.0 if delay else 0.0)


def with_fault(run: Runner, mode: str, delay_s: float = 0.0, release: threading.Event | None = None) -> Runner:
    """`run` with the fault injected; `run` itself for "none". A "hang" lasts until `release` is set (never
    without one): the model's finalize sets it, or the stuck thread would keep the stub process from exiting."""
    if mode == "none":
        return run
    release = release or threading.Event()

    def faulty(batch: np.ndarray, run_options=None) -> dict[str, np.ndarray]:
        if mode == "delay":
            time.sleep(delay_s)
        elif mode == "hang":
            release.wait()
        elif mode == "raise":
            raise RuntimeError("injected fault")
        outputs = run(batch, run_options)
        if mode == "nan":
            outputs = {name: np.full_like(value, np.nan) for name, value in outputs.items()}
        return outputs

    return faulty
