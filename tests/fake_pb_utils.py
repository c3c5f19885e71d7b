"""A stand-in for the few `triton_python_backend_utils` calls the python backend's model.py makes, so its
wiring (config parsing, one response per request, per-request error codes) runs without Triton; the real
Triton runs the same file in tests/server."""

from __future__ import annotations

import types

import numpy as np

TRITON_TO_NUMPY = {"TYPE_UINT8": np.uint8, "TYPE_FP32": np.float32}


class TritonError(Exception):
    INVALID_ARG, INTERNAL = "INVALID_ARG", "INTERNAL"

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class Tensor:
    def __init__(self, name, array):
        self.name, self.array = name, array

    def as_numpy(self):
        return self.array


class InferenceResponse:
    def __init__(self, output_tensors=(), error=None):
        self.output_tensors, self.error = list(output_tensors), error


def _config_by_name(section: str):
    return lambda config, name: next(t for t in config[section] if t["name"] == name)


def fake_pb_utils() -> types.SimpleNamespace:
    """The module object to install as `sys.modules["triton_python_backend_utils"]`; a request is a dict of
    input name -> `Tensor`."""
    return types.SimpleNamespace(
        TritonError=TritonError, Tensor=Tensor, InferenceResponse=InferenceResponse,
        get_input_config_by_name=_config_by_name("input"), get_output_config_by_name=_config_by_name("output"),
        triton_string_to_numpy=lambda name: TRITON_TO_NUMPY[name],
        get_input_tensor_by_name=lambda request, name: request.get(name))
