"""Triton's own OpenVINO backend (`--target openvino`, NGC images): the config.pbtxt parameters it documents
(the parameter list of the triton-inference-server/openvino_backend README), the ones stanet writes, and a static check
of a config against that list. The embedded Triton cannot load this backend, so the check is what verifies a
config before an NGC server reads it: an unknown key there is silently ignored, not an error.
"""

from __future__ import annotations

import re

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from stanet.constants import CLIP_SPAN_FRAMES_PARAMETER, CLIP_SPAN_SECONDS_PARAMETER

BACKEND_NAME = "openvino"
YES_NO = re.compile(r"(?i)yes|no")
NON_NEGATIVE = re.compile(r"\d+")
# name -> the values the README documents for it
DOCUMENTED_PARAMETERS = {
    "PERFORMANCE_HINT": re.compile(r"LATENCY|THROUGHPUT"),
    "CPU_EXTENSION_PATH": re.compile(r"/.+"),  # absolute path of a custom-layer library
    "INFERENCE_NUM_THREADS": NON_NEGATIVE,
    "COMPILATION_NUM_THREADS": NON_NEGATIVE,
    "HINT_BF16": re.compile(r"(?i)yes"),
    "NUM_STREAMS": re.compile(r"AUTO|NUMA|\d+"),
    "SKIP_OV_DYNAMIC_BATCHSIZE": YES_NO,
    "ENABLE_BATCH_PADDING": YES_NO,
    "RESHAPE_IO_LAYERS": YES_NO,
}
# stanet's own metadata for clients (the training clips' span, read by serving/client.py), which every backend
# ignores: allowed beside the backend's parameters.
METADATA_PARAMETERS = (CLIP_SPAN_FRAMES_PARAMETER, CLIP_SPAN_SECONDS_PARAMETER)
# One stream, latency hint: each instance runs one request batch at a time on every core it may use, as the
# python backend's OpenVINO runtime does (docs/serving.md, "OpenVINO runtime").
STREAMS, PERFORMANCE_HINT = "1", "LATENCY"


def backend_parameters(precision: str, threads: int = 0) -> tuple[tuple[str, str], ...]:
    """(key, value) parameters of a `--target openvino` config. An int8 IR carries its own precision."""
    parameters = [("NUM_STREAMS", STREAMS), ("PERFORMANCE_HINT", PERFORMANCE_HINT)]
    if threads:
        parameters.append(("INFERENCE_NUM_THREADS", str(threads)))
    if precision == "bf16":
        parameters.append(("HINT_BF16", "YES"))
    return tuple(parameters)


def config_problems(config_text: str) -> list[str]:
    """Why a config.pbtxt is not a valid openvino-backend config (empty if it is): unparsable, another backend,
    a parameter the backend does not document, or a value outside the documented ones."""
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(config_text, config)
    except text_format.ParseError as exc:
        return [f"not a Triton model config: {exc}"]
    if config.backend != BACKEND_NAME:
        return [f"backend is {config.backend or config.platform!r}, expected {BACKEND_NAME!r}"]
    problems = []
    for key, value in sorted(config.parameters.items()):
        if key in METADATA_PARAMETERS:
            continue
        pattern = DOCUMENTED_PARAMETERS.get(key)
        if pattern is None:
            problems.append(f"parameter {key!r} is not one the openvino backend documents "
                            f"({', '.join(DOCUMENTED_PARAMETERS)})")
        elif not pattern.fullmatch(value.string_value):
            problems.append(f"parameter {key!r} = {value.string_value!r} is not a documented value "
                            f"({pattern.pattern})")
    return problems
