"""The python backend's guards as plain functions (the real Triton runs them in test_reliability.py): the
watchdog's time budget and cancellation, input and output checks, message scrubbing; and the fault settings
of the reliability tests' wrapper (tests/fault_injection.py)."""

from __future__ import annotations

import dataclasses
import os
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


def test_instance_index_counts_the_instances_of_earlier_groups():
    config = {"name": "stanet", "instance_group": [{"count": 2}, {"name": "big", "count": 3}]}
    names = ("stanet_0_0", "stanet_0_1", "big_0", "big_2")
    assert [backend.instance_index(config, name) for name in names] == [0, 1, 2, 4]
    assert backend.instance_index({"name": "stanet", "instance_group": [{"count": 2}]}, "stanet_0_1") == 1
    assert backend.instance_index(config, "") == 0  # no name given (an older stub): the first core


def test_one_thread_instances_that_fill_the_cores_are_pinned_one_core_each():
    cores = sorted(os.sched_getaffinity(0))
    one_thread = dataclasses.replace(SETTINGS, intra_op_threads=1, instances=len(cores))
    assert [backend.instance_cores(one_thread, k) for k in range(len(cores))] == [(c,) for c in cores]
    more = dataclasses.replace(one_thread, instances=len(cores) + 1)
    assert backend.instance_cores(more, 0) == ()  # more instances than cores
    assert backend.instance_cores(dataclasses.replace(one_thread, pin="off"), 0) == ()
    assert backend.instance_cores(dataclasses.replace(one_thread, runtime="openvino"), 0) == ()
    assert backend.instance_cores(dataclasses.replace(one_thread, intra_op_threads=2), 0) == ()
    before = os.sched_getaffinity(0)
    backend.pin_thread((max(before) + 4096,))  # a core this process may not use: left unpinned, no error
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError, match="'pin_instances' must be one of"):
        backend.settings_from_config({"input": [{"name": "clip", "dims": [2, 3]}], "output": [{"name": "y"}],
                                      "parameters": {backend.PIN_PARAMETER: {"string_value": "always"}}},
                                     {"clip": np.float32, "y": np.float32})


def test_the_watchdog_runs_the_model_on_a_pinned_thread_also_after_a_hang():
    everywhere = os.sched_getaffinity(0)
    core = sorted(everywhere)[-1]
    release = threading.Event()

    def run(batch, options):
        if batch[0, 0, 0] < 0:
            release.wait(10)
        return {"y": batch, "cores": np.array(sorted(os.sched_getaffinity(0)))}

    watchdog = backend.Watchdog(run, budget_s=0.3, cores=(core,))
    assert watchdog(np.ones((1, 2, 3), np.float32))["cores"].tolist() == [core]
    with pytest.raises(backend.CallEnded):
        watchdog(-np.ones((1, 2, 3), np.float32))
    assert watchdog(np.ones((1, 2, 3), np.float32))["cores"].tolist() == [core]  # the fresh worker too
    assert os.sched_getaffinity(0) == everywhere  # the calling thread is left as it was
    release.set()
    watchdog.close()


def test_the_watchdog_times_its_calls_and_expects_the_next_from_them():
    watchdog = backend.Watchdog(lambda batch, options: (time.sleep(0.01 * len(batch)), {"y": batch})[1], budget_s=5)
    assert watchdog.expected_s(4) == float("inf")  # nothing measured yet: assume a long call
    watchdog(np.ones((2, 2, 3), np.float32))
    assert 0.02 <= watchdog.model_s <= watchdog.call_s
    assert watchdog.expected_s(4) == pytest.approx(0.04, rel=0.5)
    watchdog.close()


def test_the_phase_clock_sums_each_phase_and_hands_them_out_when_due():
    clock = backend.PhaseClock(interval_s=3600)
    watchdog = backend.Watchdog(lambda batch, options: (time.sleep(0.02), {"y": batch})[1], budget_s=5)
    started = time.perf_counter()
    results = backend.infer_requests(watchdog, [np.ones((1, 2, 3), np.float32)] * 2, SETTINGS, clock=clock)
    wall = time.perf_counter() - started
    clock.add("responses", 0.001)
    assert [r.outputs["y"].shape for r in results] == [(1, 2, 3), (1, 2, 3)]
    assert clock.take_if_due() is None  # not due for an hour
    clock.interval_s = 0
    sums = clock.take_if_due()
    assert set(sums) == set(backend.PHASES) and sums["model"] >= 0.02 and sums["responses"] == 0.001
    assert all(value >= 0 for value in sums.values()) and sum(sums.values()) - 0.001 <= wall
    assert sum(clock.take_if_due().values()) == 0  # handed out once
    watchdog.close()
