"""The python backend's plain functions without Triton: settings from config.pbtxt, the spinning rule, one
run per batch with per-request errors, and model.py's wiring against a fake pb_utils."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from exported import TINY, parse_config
from fake_pb_utils import TRITON_TO_NUMPY, Tensor, TritonError, fake_pb_utils
from google.protobuf import json_format

from export import pipeline
from export.cli import main as export_main
from export.clips import random_clips
from export.parity import run_onnx
from serving.python_backend import stanet_backend
from stanet.constants import (
    OPENVINO_BACKEND_FILE,
    INPUT_CLIP,
    ONNX_FILE,
    OUTPUT_PROBABILITIES,
    OUTPUT_SPATIAL_ATTENTION,
    OUTPUT_TEMPORAL_ATTENTION,
)


@pytest.fixture(scope="module")
def python_model_dir(tiny_checkpoint, tmp_path_factory) -> Path:
    repository = tmp_path_factory.mktemp("python_repo")
    assert export_main(["--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                        "--target", "python", "--max-batch-size", "4"]) == 0
    return repository / "stanet"


def _backend_settings(model_dir: Path) -> stanet_backend.BackendSettings:
    # The JSON Triton hands to initialize(); int64 dims arrive as strings, as protobuf's JSON writes them.
    config = json_format.MessageToDict(parse_config(model_dir / "config.pbtxt"), preserving_proto_field_name=True)
    dtypes = {t["name"]: TRITON_TO_NUMPY[t["data_type"]] for t in [*config["input"], *config["output"]]}
    return stanet_backend.settings_from_config(config, dtypes)


def test_backend_settings_come_from_the_config(python_model_dir):
    settings = _backend_settings(python_model_dir)
    assert settings.input_name == INPUT_CLIP and settings.input_dims == (4, 32, 32, 3)
    assert settings.input_dtype == np.uint8 and settings.max_batch_size == 4
    assert settings.output_names == (OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)
    assert settings.intra_op_threads == stanet_backend.available_cores()  # each of the two instances: every core
    assert settings.inter_op_threads == 1
    assert not settings.allow_spinning  # two instances x every core: more threads than cores


def test_oversubscribed_instances_do_not_spin(python_model_dir, tmp_path):
    """Two instances with every core each (the default): more threads than cores, so onnxruntime's idle
    threads must sleep rather than spin on the core the other instance computes on; one thread per
    instance (`--intra-op-threads 1` on 2 cores) fits, and spins."""
    config = json_format.MessageToDict(parse_config(python_model_dir / "config.pbtxt"), preserving_proto_field_name=True)
    dtypes = {t["name"]: TRITON_TO_NUMPY[t["data_type"]] for t in [*config["input"], *config["output"]]}
    settings = stanet_backend.settings_from_config(config, dtypes)
    session = stanet_backend.create_session(python_model_dir / "1" / ONNX_FILE, settings)
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    config["parameters"][stanet_backend.INTRA_OP_PARAMETER]["string_value"] = "1"
    config["instance_group"][0]["count"] = stanet_backend.available_cores()
    fitting = stanet_backend.settings_from_config(config, dtypes)
    assert fitting.intra_op_threads == 1 and fitting.allow_spinning


def test_backend_runs_a_batch_once_and_fails_only_the_bad_request(python_model_dir):
    settings = _backend_settings(python_model_dir)
    session = stanet_backend.create_session(python_model_dir / "1" / ONNX_FILE, settings)
    run = stanet_backend.session_runner(session, settings)
    calls = []

    def counting_run(batch):
        calls.append(batch.shape[0])
        return run(batch)

    clips = random_clips(3, TINY).clips
    requests = [clips[:1], clips[:1, :3], clips[1:3], clips[:1].astype(np.float32), None]
    results = stanet_backend.infer_requests(counting_run, requests, settings)
    assert calls == [3]  # the two valid requests, concatenated, in one run
    assert [r.error is None for r in results] == [True, False, True, False, False]
    assert all(r.invalid_input for r in results if r.error)
    assert "has shape [1, 3, 32, 32, 3], expected [batch, 4, 32, 32, 3]" in results[1].error
    assert "has type float32, expected uint8" in results[3].error and "is missing" in results[4].error
    alone = {k: run_onnx(session, clips[k:k + 1], 1) for k in range(3)}
    for result, indices in ((results[0], [0]), (results[2], [1, 2])):
        for name in settings.output_names:
            assert result.outputs[name].dtype == np.float32 and len(result.outputs[name]) == len(indices)
            expected = np.concatenate([alone[k][name] for k in indices])
            np.testing.assert_allclose(result.outputs[name], expected, atol=1e-6)


def test_backend_reports_a_failed_run_to_every_valid_request(python_model_dir):
    settings = _backend_settings(python_model_dir)

    def broken_run(batch):
        raise RuntimeError("out of memory")

    clips = random_clips(2, TINY).clips
    results = stanet_backend.infer_requests(broken_run, [clips[:1], clips[:1, :2], clips[1:]], settings)
    assert [r.invalid_input for r in results] == [False, True, False]
    assert "out of memory" in results[0].error and "out of memory" in results[2].error


def _served_model(model_dir: Path):
    """model.py of `model_dir` initialized as Triton's stub would, against tests/fake_pb_utils.py."""
    version = model_dir / "1"
    spec = importlib.util.spec_from_file_location("stanet_triton_model", version / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    config = json_format.MessageToDict(parse_config(model_dir / "config.pbtxt"), preserving_proto_field_name=True)
    model.initialize({"model_config": json.dumps(config), "model_version": "1"})
    return model


@pytest.fixture()
def served_model(python_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake_pb_utils())
    monkeypatch.syspath_prepend(str(python_model_dir / "1"))
    try:
        model = _served_model(python_model_dir)
        yield model
        model.finalize()
    finally:
        sys.modules.pop("stanet_backend", None)


def test_model_py_answers_each_request_in_order(served_model):
    """The adapter's wiring (config parsing, one response per request, per-request error codes) against
    tests/fake_pb_utils.py; the real Triton runs it in tests/server."""
    clips = random_clips(3, TINY).clips
    responses = served_model.execute([{INPUT_CLIP: Tensor(INPUT_CLIP, clips[:2])},
                                      {INPUT_CLIP: Tensor(INPUT_CLIP, clips[:1, :, :16])},
                                      {INPUT_CLIP: Tensor(INPUT_CLIP, clips[2:])}])
    assert [r.error is None for r in responses] == [True, False, True]
    assert responses[1].error.code == TritonError.INVALID_ARG and "[1, 4, 16, 32, 3]" in str(responses[1].error)
    assert [t.name for t in responses[0].output_tensors] == [OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION,
                                                              OUTPUT_TEMPORAL_ATTENTION]
    assert [len(t.array) for t in responses[0].output_tensors] == [2, 2, 2]
    assert [len(t.array) for t in responses[2].output_tensors] == [1, 1, 1]


class _Request(dict):
    """A request of the fake pb_utils that can be cancelled, counting how often it was asked."""

    def __init__(self, clip, cancelled=False):
        super().__init__({INPUT_CLIP: Tensor(INPUT_CLIP, clip)})
        self.cancelled, self.asked = cancelled, 0

    def is_cancelled(self):
        self.asked += 1
        return self.cancelled


def test_cancellations_are_looked_up_only_while_a_call_is_expected_to_be_long(served_model):
    clips = random_clips(2, TINY).clips
    first = [_Request(clips[:1], cancelled=True), _Request(clips[1:])]
    responses = served_model.execute(first)  # nothing measured yet: every request is looked up
    assert all(r.asked >= 1 for r in first)
    assert "cancelled" in str(responses[0].error) and responses[1].error is None
    assert served_model.run.expected_s(2) < stanet_backend.CANCEL_CHECK_MIN_S  # the tiny model runs in ~1 ms
    second = [_Request(clips[:1], cancelled=True), _Request(clips[1:])]
    responses = served_model.execute(second)  # a call shorter than the watchdog's poll: no lookups
    assert [r.asked for r in second] == [0, 0] and [r.error for r in responses] == [None, None]
    served_model.run._per_clip_s = 1.0  # a model that takes a second per clip is looked up again
    third = [_Request(clips[:1], cancelled=True), _Request(clips[1:])]
    served_model.execute(third)
    assert all(r.asked >= 1 for r in third)


def test_backend_files_need_only_numpy_onnxruntime_and_openvino():
    allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime", "openvino", "triton_python_backend_utils",
                                              "stanet_backend", "openvino_runtime"}
    for name in (*pipeline.PYTHON_BACKEND_FILES, OPENVINO_BACKEND_FILE):
        tree = ast.parse((pipeline.PYTHON_BACKEND_DIR / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     if node.level == 0}  # `from . import openvino_runtime`: the file beside it
        assert imported <= allowed, (name, imported - allowed)
