"""The training clips' span: carried by checkpoint and config.pbtxt
(training/windows.py, export/triton_config.py), read back by the client (serving/client.py)."""

from __future__ import annotations

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from export.signature import serving_signature
from export.triton_config import ServingOptions, render_config
from serving.client import served_clip_span
from stanet.config import ModelConfig
from stanet.constants import CLIP_SPAN_FRAMES_PARAMETER, CLIP_SPAN_SECONDS_PARAMETER
from stanet.timeline.windows import ClipSpan


def test_config_pbtxt_carries_the_span_for_every_target_and_the_client_reads_it():
    signature = serving_signature(ModelConfig(num_classes=3), (16, 16))
    for target, kind in (("python", "cpu"), ("onnxruntime", "cpu"), ("tensorrt", "gpu")):
        text = render_config(signature, ServingOptions("m", target, kind, 4, "fp32"), ClipSpan(24, 0.96))
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert config.parameters[CLIP_SPAN_FRAMES_PARAMETER].string_value == "24"
        assert config.parameters[CLIP_SPAN_SECONDS_PARAMETER].string_value == "0.96"
        as_json = {"parameters": {k: {"string_value": v.string_value} for k, v in config.parameters.items()}}
        assert served_clip_span(as_json) == ClipSpan(24, 0.96)
    plain = render_config(signature, ServingOptions("m", "onnxruntime", "cpu", 4, "fp32"))
    assert CLIP_SPAN_FRAMES_PARAMETER not in plain
    assert served_clip_span({}) is None
