"""Triton python-backend adapter for stanet: a thin shell over stanet_backend.py (its logic, plain functions
that tests call without Triton). Only numpy and onnxruntime are needed; no torch, nothing from stanet."""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils

import stanet_backend  # beside this file: Triton's stub puts the version folder on sys.path


def _dtype(config, name, is_input):
    entry = (pb_utils.get_input_config_by_name if is_input else pb_utils.get_output_config_by_name)(config, name)
    return pb_utils.triton_string_to_numpy(entry["data_type"])


def _error(result):
    # Error codes exist in the python backend since Triton 23.x; older stubs take a message only.
    code = getattr(pb_utils.TritonError, "INVALID_ARG" if result.invalid_input else "INTERNAL", None)
    return pb_utils.TritonError(result.error) if code is None else pb_utils.TritonError(result.error, code)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        dtypes = {spec["name"]: _dtype(config, spec["name"], True) for spec in config["input"]}
        dtypes.update({spec["name"]: _dtype(config, spec["name"], False) for spec in config["output"]})
        self.settings = stanet_backend.settings_from_config(config, dtypes)
        session = stanet_backend.create_session(Path(__file__).with_name(stanet_backend.ONNX_FILE), self.settings)
        self.run = stanet_backend.session_runner(session, self.settings)

    def execute(self, requests):
        clips = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, self.settings.input_name)
            clips.append(None if tensor is None else tensor.as_numpy())
        responses = []
        for result in stanet_backend.infer_requests(self.run, clips, self.settings):
            if result.error is not None:
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=_error(result)))
            else:
                tensors = [pb_utils.Tensor(name, array) for name, array in result.outputs.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self):
        self.run = None
