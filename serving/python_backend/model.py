"""Triton python-backend adapter for stanet: a thin shell over stanet_backend.py (its logic, plain functions
that tests call without Triton). Only numpy and onnxruntime (or openvino) are needed; no torch, nothing from stanet."""

import json
import time
from pathlib import Path

import triton_python_backend_utils as pb_utils

import stanet_backend  # beside this file: Triton's stub puts the version folder on sys.path


def _dtype(config, name, is_input):
    entry = (pb_utils.get_input_config_by_name if is_input else pb_utils.get_output_config_by_name)(config, name)
    return pb_utils.triton_string_to_numpy(entry["data_type"])


def _error(result):
    # Error codes exist in the python backend since Triton 23.x; older stubs take a message only.
    code = getattr(pb_utils.TritonError, result.code, None)
    return pb_utils.TritonError(result.error) if code is None else pb_utils.TritonError(result.error, code)


ERROR_METRIC = "stanet_backend_errors"  # the Prometheus rules in deploy/ read it


def _counters(args, name, description, label, values):
    """A counter family and one counter per label value (created at 0); (None, {}) before Triton 23.05,
    which has no custom metrics. The family must outlive its metrics: both are kept on the model."""
    family_type = getattr(pb_utils, "MetricFamily", None)
    if family_type is None:
        return None, {}
    family = family_type(name=name, description=description, kind=family_type.COUNTER)
    labels = {"model": args["model_name"], "version": args["model_version"]}
    return family, {value: family.Metric(labels={**labels, label: value}) for value in values}


def _error_counters(args):
    """One counter per error code. This Triton counts a request answered with an error response as a
    success in nv_inference_request_*; these counters make such errors visible."""
    codes = (stanet_backend.INVALID_ARG, stanet_backend.INTERNAL, stanet_backend.CANCELLED)
    return _counters(args, ERROR_METRIC, "Requests the stanet model answered with an error, by code", "code", codes)


def _is_cancelled(request):
    check = getattr(request, "is_cancelled", None)  # Triton >= 23.10
    return bool(check and check())


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        dtypes = {spec["name"]: _dtype(config, spec["name"], True) for spec in config["input"]}
        dtypes.update({spec["name"]: _dtype(config, spec["name"], False) for spec in config["output"]})
        self.settings = stanet_backend.settings_from_config(config, dtypes)
        runner = stanet_backend.create_runner(Path(__file__).parent, config, self.settings)
        index = stanet_backend.instance_index(config, args.get("model_instance_name", ""))
        cores = stanet_backend.instance_cores(self.settings, index)
        self.run = stanet_backend.Watchdog(runner, self.settings.time_budget_s, cores)
        self.error_family, self.error_counters = _error_counters(args)
        self.phase_family, self.phase_counters = _counters(
            args, stanet_backend.PHASE_METRIC, "Seconds the stanet model's execute spent in each phase", "phase",
            stanet_backend.PHASES)
        self.clock = stanet_backend.PhaseClock()

    def execute(self, requests):
        try:
            return self._execute(requests)
        except Exception as exc:  # noqa: BLE001 - never let Triton print a traceback (with paths) to clients
            result = stanet_backend.RequestResult(error=f"the model failed: {stanet_backend.scrub(str(exc))}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=_error(result)) for _ in requests]

    def _execute(self, requests):
        started = time.perf_counter()
        # Requests whose clients cancelled after Triton's queue checked them are answered without running the
        # model, when the call is long enough for that to matter (each lookup is a round trip to Triton).
        worth_it = self.run.expected_s(len(requests)) >= stanet_backend.CANCEL_CHECK_MIN_S
        live = [r for r in requests if not _is_cancelled(r)] if worth_it else list(requests)
        checked = time.perf_counter()
        clips = []
        for request in live:
            tensor = pb_utils.get_input_tensor_by_name(request, self.settings.input_name)
            clips.append(None if tensor is None else tensor.as_numpy())
        read = time.perf_counter()
        results = stanet_backend.infer_requests(self.run, clips, self.settings, clock=self.clock,
                                                cancelled=lambda: all(_is_cancelled(r) for r in live))
        answered = time.perf_counter()
        by_request = dict(zip(map(id, live), results))
        responses = []
        for request in requests:
            result = by_request.get(id(request)) or stanet_backend.RequestResult(
                error="the request was cancelled", code=stanet_backend.CANCELLED)
            if result.error is not None:
                if result.code in self.error_counters:
                    self.error_counters[result.code].increment(1)
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=_error(result)))
            else:
                tensors = [pb_utils.Tensor(name, array) for name, array in result.outputs.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        self.clock.add("cancel_check", checked - started)
        self.clock.add("inputs", read - checked)
        self.clock.add("responses", time.perf_counter() - answered)
        sums = self.clock.take_if_due()
        for phase, seconds in (sums or {}).items():
            if phase in self.phase_counters:
                self.phase_counters[phase].increment(seconds)
        return responses

    def finalize(self):
        self.run.close()
        self.run = None
        self.error_counters = self.phase_counters = {}  # metrics before their family
        self.error_family = self.phase_family = None
