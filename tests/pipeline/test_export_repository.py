"""`stanet export` as a command: the Triton model directories and their config.pbtxt, atomic repository
writes, and every refusal with its message."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
from exported import (
    CLASSES,
    ONNX_TO_TRITON,
    TINY,
    listing,
    parse_config,
    run_export,
    tensorrt_usable,
    with_conv_weight_changed,
)
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from export import pipeline
from export.errors import ExportError
from export.onnx_graph import graph_io
from export.parity import PARITY_ATOL
from export.signature import serving_signature
from export.triton_config import ServingOptions, check_options, render_config
from serving.python_backend import stanet_backend
from stanet.constants import (
    INPUT_CLIP,
    LABELS_FILE,
    ONNX_FILE,
    OUTPUT_PROBABILITIES,
    OUTPUT_SPATIAL_ATTENTION,
    OUTPUT_TEMPORAL_ATTENTION,
)
from stanet.integrity import verify_version_folder


def test_onnxruntime_export_writes_a_triton_model_matching_the_graph(tiny_checkpoint, tmp_path, capsys):
    repository = tmp_path / "models"
    code, out, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                                "--target", "onnxruntime", "--max-batch-size", "4")
    assert code == 0, err
    assert "parity" in out and "wrote" in out
    model_dir = repository / "stanet"
    assert sorted(listing(model_dir)) == ["1", "1/SHA256SUMS", "1/model.onnx", "config.pbtxt", "export_report.json",
                                          LABELS_FILE]
    assert verify_version_folder(model_dir / "1") == []
    assert (model_dir / LABELS_FILE).read_text().splitlines() == list(CLASSES)

    config = parse_config(model_dir / "config.pbtxt")
    proto = onnx.load(model_dir / "1" / "model.onnx")
    io = graph_io(proto)
    assert config.name == "stanet" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 4
    assert [t.name for t in config.input] == [v.name for v in proto.graph.input]
    assert [t.name for t in config.output] == [v.name for v in proto.graph.output]
    for tensor in [*config.input, *config.output]:
        elem, dims = io[tensor.name]
        assert model_config_pb2.DataType.Name(tensor.data_type) == ONNX_TO_TRITON[elem]
        assert dims[0] == "batch" and list(tensor.dims) == dims[1:]  # batch axis implied by max_batch_size
    assert {t.name: t.label_filename for t in config.output} == {
        OUTPUT_PROBABILITIES: LABELS_FILE, OUTPUT_SPATIAL_ATTENTION: "", OUTPUT_TEMPORAL_ATTENTION: ""}
    batching = config.dynamic_batching
    assert batching.max_queue_delay_microseconds == 0
    assert batching.default_queue_policy.max_queue_size == 16
    assert batching.default_queue_policy.default_timeout_microseconds > 0
    assert batching.default_queue_policy.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT
    assert [(g.kind, g.count) for g in config.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_CPU, 2)]
    (warmup,) = config.model_warmup
    assert warmup.batch_size == 1 and list(warmup.inputs) == [INPUT_CLIP]
    assert list(warmup.inputs[INPUT_CLIP].dims) == list(config.input[0].dims) and warmup.inputs[INPUT_CLIP].zero_data
    assert not config.HasField("optimization")

    report = json.loads((model_dir / "export_report.json").read_text())
    (parity,) = report["parity"].values()
    assert parity["passed"] and parity["batch_sizes"] == [1, 4]
    assert all(diff <= PARITY_ATOL for diff in parity["max_abs_diff"].values())
    assert report["onnx"]["fp32_size_bytes"] == (model_dir / "1" / "model.onnx").stat().st_size
    assert report["model"]["files"]["1/model.onnx"] == report["onnx"]["fp32_size_bytes"]
    assert report["times_seconds"]["onnx_export"] > 0 and report["times_seconds"]["total"] > 0
    assert report["tensorrt_static_check"]["passed"] and report["int8"] is None


def test_python_export_ships_the_backend_and_its_parameters(tiny_checkpoint, tmp_path, capsys):
    repository = tmp_path / "models"
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                              "--target", "python", "--name", "stanet_cpu")
    assert code == 0, err
    version = repository / "stanet_cpu" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["SHA256SUMS", "model.onnx", "model.py", "stanet_backend.py"]
    for name in ("model.py", "stanet_backend.py"):
        assert (version / name).read_bytes() == (pipeline.PYTHON_BACKEND_DIR / name).read_bytes()
    config = parse_config(repository / "stanet_cpu" / "config.pbtxt")
    assert config.backend == "python" and config.platform == "" and config.name == "stanet_cpu"
    assert {k: v.string_value for k, v in config.parameters.items()} == {
        stanet_backend.ONNX_FILE_PARAMETER: ONNX_FILE,
        stanet_backend.INTRA_OP_PARAMETER: "0", stanet_backend.INTER_OP_PARAMETER: "1",
        stanet_backend.TIME_BUDGET_PARAMETER: stanet_backend.DEFAULT_TIME_BUDGET_MS}


def test_gpu_configs_carry_the_tensorrt_profile(tiny_graph):
    model, _ = tiny_graph
    signature = serving_signature(TINY, model.feature_map_size())
    config = text_format.Parse(render_config(signature, ServingOptions("stanet", "onnxruntime", "gpu", 8, "fp16")),
                               model_config_pb2.ModelConfig())
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    parameters = dict(accelerator.parameters)
    assert parameters["precision_mode"] == "FP16" and parameters["trt_engine_cache_enable"] == "true"
    assert (parameters["trt_profile_min_shapes"], parameters["trt_profile_opt_shapes"],
            parameters["trt_profile_max_shapes"]) == ("clip:1x4x32x32x3", "clip:4x4x32x32x3", "clip:8x4x32x32x3")
    plan = text_format.Parse(render_config(signature, ServingOptions("stanet", "tensorrt", "gpu", 8, "fp16")),
                             model_config_pb2.ModelConfig())
    assert plan.platform == "tensorrt_plan" and not plan.HasField("optimization")


def test_instances_and_threads_are_serving_options(tiny_graph):
    """`stanet export --instances N --intra-op-threads K` (the tuning knobs of docs/benchmark.md)."""
    model, _ = tiny_graph
    signature = serving_signature(TINY, model.feature_map_size())
    tuned = ServingOptions("stanet", "python", "cpu", 8, "fp32", instances=1, intra_op_threads=2)
    config = text_format.Parse(render_config(signature, tuned), model_config_pb2.ModelConfig())
    assert [g.count for g in config.instance_group] == [1]
    assert config.parameters[stanet_backend.INTRA_OP_PARAMETER].string_value == "2"
    gpu = text_format.Parse(render_config(signature, ServingOptions("stanet", "tensorrt", "gpu", 8, "fp16", instances=3)),
                            model_config_pb2.ModelConfig())
    assert [g.count for g in gpu.instance_group] == [3]
    with pytest.raises(ExportError, match="--intra-op-threads applies to --target python and openvino only"):
        check_options(ServingOptions("stanet", "onnxruntime", "cpu", 8, "fp32", intra_op_threads=2))
    with pytest.raises(ExportError, match="--instances must be >= 1"):
        check_options(ServingOptions("stanet", "python", "cpu", 8, "fp32", instances=-1))


def test_an_existing_version_is_refused_and_a_new_one_added(tiny_checkpoint, tmp_path, capsys):
    repository = tmp_path / "models"
    common = ["--checkpoint", str(tiny_checkpoint), "--repository", str(repository), "--target", "onnxruntime"]
    assert run_export(capsys, *common)[0] == 0
    before = listing(tmp_path)
    code, _, err = run_export(capsys, *common)
    assert code == 2 and "version folder" in err and "already exists" in err
    assert listing(tmp_path) == before
    code, _, err = run_export(capsys, *common, "--max-batch-size", "2", "--version", "2")
    assert code == 2 and "differs from the config this export needs" in err and "max_batch_size" in err
    assert listing(tmp_path) == before
    code, out, err = run_export(capsys, *common, "--version", "2")
    assert code == 0, err
    assert "new version" in out
    assert (repository / "stanet" / "2" / "model.onnx").is_file()
    assert {k: v for k, v in listing(tmp_path).items() if not k.startswith("models/stanet/2")
            and not k.endswith("export_report.json")} == {k: v for k, v in before.items()
                                                          if not k.endswith("export_report.json")}


def test_a_failed_gate_writes_nothing(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    repository = tmp_path / "models"
    common = ["--checkpoint", str(tiny_checkpoint), "--repository", str(repository), "--target", "python"]
    assert run_export(capsys, *common)[0] == 0
    before = listing(tmp_path)
    real_export = pipeline.export_onnx

    def export_with_a_changed_weight(model):
        graph = real_export(model)
        graph.onnx_bytes = with_conv_weight_changed(graph.onnx_bytes)
        return graph

    monkeypatch.setattr(pipeline, "export_onnx", export_with_a_changed_weight)
    code, _, err = run_export(capsys, *common, "--version", "2")
    assert code == 1
    assert "parity gate failed, nothing was written" in err and "max abs diff" in err
    assert listing(tmp_path) == before


def test_a_failure_while_moving_into_place_leaves_the_repository_unchanged(tiny_checkpoint, tmp_path, capsys,
                                                                           monkeypatch):
    repository = tmp_path / "models"
    repository.mkdir()
    before = listing(tmp_path)

    def failing_rename(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("export.repository.os.rename", failing_rename)
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                              "--target", "onnxruntime")
    assert code == 2 and "the repository is unchanged" in err and "No space left" in err
    assert listing(tmp_path) == before  # no half-written model, no staging directory left behind


def test_an_unwritable_repository_is_refused(tiny_checkpoint, tmp_path, capsys):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the repository's parent should be\n")
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository",
                              str(blocker / "models"), "--target", "onnxruntime")
    assert code == 2 and "cannot be created" in err and "is not a directory" in err
    assert blocker.read_text().startswith("a file")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_repository_is_refused(tiny_checkpoint, tmp_path, capsys):
    repository = tmp_path / "models"
    repository.mkdir()
    repository.chmod(0o555)
    try:
        code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                                  "--target", "onnxruntime")
    finally:
        repository.chmod(0o755)
    assert code == 2 and "is not writable" in err
    assert list(repository.iterdir()) == []


def test_a_repository_denying_writes_is_refused_even_for_root(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    # Root passes every permission check, so the denial is simulated for this one directory.
    repository = tmp_path / "models"
    repository.mkdir()
    real_access = os.access
    monkeypatch.setattr("export.repository.os.access",
                        lambda path, mode: False if Path(path) == repository else real_access(path, mode))
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                              "--target", "onnxruntime")
    assert code == 2 and f"model repository {repository} is not writable" in err
    assert list(repository.iterdir()) == []


def test_a_checkpoint_that_does_not_load_is_named(tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    code, _, err = run_export(capsys, "--checkpoint", str(broken), "--repository", str(tmp_path / "m"),
                              "--target", "onnxruntime")
    assert code == 2 and err.startswith("stanet export: error:") and "cannot be read as a stanet checkpoint" in err
    code, _, err = run_export(capsys, "--checkpoint", str(tmp_path / "missing.pt"), "--repository",
                              str(tmp_path / "m"), "--target", "onnxruntime")
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(tensorrt_usable(), reason="this machine can build TensorRT engines")
def test_tensorrt_target_without_a_gpu_says_what_is_missing(tiny_checkpoint, tmp_path, capsys):
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(tmp_path / "m"),
                              "--target", "tensorrt")
    assert code == 2
    assert "CUDA" in err or "tensorrt" in err
    assert "--target onnxruntime --instance-kind gpu" in err
    assert not (tmp_path / "m").exists()


def test_unsupported_combinations_are_refused(tiny_checkpoint, tmp_path, capsys):
    base = ["--checkpoint", str(tiny_checkpoint), "--repository", str(tmp_path / "m")]
    cases = [
        (["--target", "tensorrt", "--instance-kind", "cpu"], "runs on a GPU only"),
        (["--target", "python", "--instance-kind", "gpu"], "--target onnxruntime --instance-kind gpu"),
        (["--target", "onnxruntime", "--precision", "fp16"], "--precision fp16 is not supported"),
        (["--target", "onnxruntime", "--precision", "int8"], "needs --calibration DATA_DIR"),
        (["--target", "onnxruntime", "--precision", "int8", "--calibration", str(tmp_path / "none")],
         "is not a directory"),
        (["--target", "onnxruntime", "--calibration", str(tmp_path)], "only used with --precision int8"),
        (["--target", "onnxruntime", "--name", "../escape"], "--name must be"),
    ]
    for extra, message in cases:
        code, _, err = run_export(capsys, *base, *extra)
        assert code == 2 and message in err, (extra, err)
    assert not (tmp_path / "m").exists()


def test_data_with_other_classes_is_refused(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(tmp_path / "m"),
                              "--target", "onnxruntime", "--data", str(tiny_dataset))
    assert code == 2 and "the checkpoint was trained on" in err
