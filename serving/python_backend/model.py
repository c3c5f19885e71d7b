"""Triton python-backend adapter for stanet: a thin shell over stanet_backend.py (its logic, plain functions
that tests call without Triton). Only numpy and onnxruntime (or openvino) are needed; no torch, nothing from stanet."""

import json
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


def _error_counters(args):
    """One counter per error code. This Triton counts a request answered with an error response as a
    success in nv_inference_request_*; these counters make such errors visible (created at 0)."""
    family_type = getattr(pb_utils, "MetricFamily", None)  # custom metrics: Triton >= 23.05
    if family_type is None:
        return None, {}
    family = family_type(name=ERROR_METRIC, description="Requests the stanet model answered with an error, by code",
                         kind=family_type.COUNTER)
    codes = (stanet_backend.INVALID_ARG, stanet_backend.INTERNAL, stanet_backend.CANCELLED)
    # The family must outlive its metrics: both are kept on the model.
    return family, {code: family.Metric(labels={"model": args["model_name"], "version": args["model_version"],
                                                "code": code}) for code in codes}


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
        self.run = stanet_backend.Watchdog(runner, self.settings.time_budget_s)
        self.error_family, self.error_counters = _error_counters(args)

    def execute(self, requests):
        try:
            return self._execute(requests)
        except Exception as exc:  # noqa: BLE001 - never let Triton print a traceback (with paths) to clients
            result = stanet_backend.RequestResult(error=f"the model failed: {stanet_backend.scrub(str(exc))}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=_error(result)) for _ in requests]

    def _execute(self, requests):
        # Requests whose clients cancelled while queued are answered without running the model.
        live = [r for r in requests if not _is_cancelled(r)]
        clips = []
        for request in live:
            tensor = pb_utils.get_input_tensor_by_name(request, self.settings.input_name)
            clips.append(None if tensor is None else tensor.as_numpy())
        results = stanet_backend.infer_requests(self.run, clips, self.settings,
                                                cancelled=lambda: all(_is_cancelled(r) for r in live))
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
        return responses

    def finalize(self):
        self.run.close()
        self.run = None
        self.error_counters = {}  # metrics before their family
        self.error_family = None
