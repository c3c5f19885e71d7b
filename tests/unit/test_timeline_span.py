"""The training clips' span: measured from the training videos, carried by checkpoint and config.pbtxt
(training/clip_span.py, export/triton_config.py), read back by the client (serving/client.py)."""

from __future__ import annotations

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from export.signature import serving_signature
from export.triton_config import ServingOptions, render_config
from serving.client import served_clip_span
from stanet.config import ModelConfig
from stanet.constants import CLIP_SPAN_FRAMES_PARAMETER, CLIP_SPAN_SECONDS_PARAMETER
from stanet.dataset_format import ClipRecord
from stanet.timeline.windows import ClipSpan
from stanet.video import write_video
from training.clip_span import training_clip_span


def test_span_is_the_median_training_video(tmp_path):
    records = []
    for i, n in enumerate((20, 30, 40)):
        path = tmp_path / f"{i}.mp4"
        write_video(path, np.zeros((n, 16, 16, 3), np.uint8), fps=10)
        records.append(ClipRecord(path, "a", 0, "train", None, None, i + 1))
    records.append(ClipRecord(tmp_path / "missing.mp4", "a", 0, "train", None, None, 4))  # unreadable: skipped
    assert training_clip_span(records) == ClipSpan(frames=30, seconds=3.0)
    assert training_clip_span([]) is None


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
