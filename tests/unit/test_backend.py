"""The python backend's guards as plain functions (the real Triton runs them in test_reliability.py): the
watchdog's time budget and cancellation, input and output checks, message scrubbing; and the fault settings
of the reliability tests' wrapper (tests/fault_injection.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fault_injection import FAULT_PARAMETER, parse_fault
from serving.python_backend import stanet_backend as backend

SETTINGS = backend.BackendSettings(input_name="clip", input_dtype=np.dtype(np.float32), input_dims=(2, 3),
                                   max_batch_size=4, output_names=("y",), output_dtypes={"y": np.dtype(np.float32)},
                                   intra_op_threads=1, inter_op_threads=1)


def test_watchdog_ends_a_call_past_its_budget_and_keeps_working():
    release = threading.Event()

    def run(batch, options):
        if batch[0, 0, 0] < 0:
            release.wait(10)  # stuck outside onnxruntime: terminate cannot reach it
        return {"y": batch}

    watchdog = backend.Watchdog(run, budget_s=0.3)
    started = time.monotonic()
    with pytest.raises(backend.CallEnded, match="exceeded its time budget of 0.3 s") as caught:
        watchdog(-np.ones((1, 2, 3), np.float32))
    assert caught.value.code == backend.INTERNAL and time.monotonic() - started < 2
    assert watchdog(np.ones((1, 2, 3), np.float32))["y"].shape == (1, 2, 3)  # a fresh worker answers
    release.set()
    watchdog.close()


def test_watchdog_ends_a_call_whose_requests_are_all_cancelled():
    cancelled = threading.Event()
    watchdog = backend.Watchdog(lambda batch, options: (time.sleep(2), {"y": batch})[1], budget_s=30)
    threading.Timer(0.1, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(backend.CallEnded, match="cancelled") as caught:
        watchdog(np.ones((1, 2, 3), np.float32), cancelled.is_set)
    assert caught.value.code == backend.CANCELLED and time.monotonic() - started < 1.5
    watchdog.close()


def test_float_inputs_with_nan_or_inf_are_refused_and_non_finite_outputs_withheld():
    good, bad = np.ones((1, 2, 3), np.float32), np.ones((1, 2, 3), np.float32)
    bad[0, 1, 2] = np.inf
    assert "holds NaN or infinite values" in backend.check_clip(bad, SETTINGS)
    assert backend.check_clip(good, SETTINGS) is None

    def run(batch):  # a NaN answer for the second clip only
        out = batch.copy()
        out[1:] = np.nan
        return {"y": out}

    results = backend.infer_requests(run, [good, good, bad], SETTINGS)
    assert results[0].outputs is not None
    assert "produced NaN or infinite values in ['y']" in results[1].error and results[1].code == backend.INTERNAL
    assert results[2].code == backend.INVALID_ARG


def test_errors_for_clients_carry_no_paths_or_tracebacks():
    message = ("[ONNXRuntimeError] : 1 : FAIL : Load model from /srv/models/stanet/1/model.onnx failed\n"
               "Traceback (most recent call last):\n  File \"/usr/lib/x.py\"")
    scrubbed = backend.scrub(message)
    assert "/srv" not in scrubbed and "Traceback" not in scrubbed and "<path>" in scrubbed


@pytest.mark.parametrize("value, expected", [("none", ("none", 0.0)), ("delay:250", ("delay", 0.25)),
                                             ("hang", ("hang", 0.0))])
def test_fault_settings_parse(value, expected):
    assert parse_fault({"parameters": {FAULT_PARAMETER: {"string_value": value}}}) == expected


@pytest.mark.parametrize("value", ["delay", "explode", "hang:5"])
def test_unknown_fault_settings_are_refused(value):
    with pytest.raises(ValueError, match="fault_injection"):
        parse_fault({"parameters": {FAULT_PARAMETER: {"string_value": value}}})
