"""`stanet export`: the ONNX graph, the parity gate, int8, the TensorRT static check, config.pbtxt, atomic
repository writes and the python backend's plain functions. A tiny model is built in-test; the int8 and
real-clip tests use the session's trained tiny run."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from google.protobuf import json_format, text_format
from onnx import numpy_helper
from tritonclient.grpc import model_config_pb2

from export import pipeline, quantize, tensorrt
from export.cli import main as export_main
from export.clips import dataset_clips, random_clips
from export.errors import ExportError
from export.onnx_graph import CONTROL_FLOW_OPS, OPSET_VERSION, check_graph, export_onnx, graph_io
from export.parity import PARITY_ATOL, check_parity, onnx_session, run_onnx
from export.quantize import check_int8, quantize_int8
from export.signature import serving_signature
from export.tensorrt import TENSORRT_SUPPORTED_OPS, static_check
from export.triton_config import check_options, ServingOptions, render_config
from serving.python_backend import stanet_backend
from stanet.checkpoint import load_checkpoint, save_checkpoint
from stanet.config import ModelConfig
from stanet.constants import (INPUT_CLIP, LABELS_FILE, ONNX_FILE, OUTPUT_PROBABILITIES,
                              OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)
from stanet.integrity import verify_version_folder
from stanet.model import build_model

# K == T on purpose: probabilities and temporal_attention then have the same shape, so swapping them is a
# graph that only the values can expose.
TINY = ModelConfig(num_classes=4, clip_length=4, height=32, width=32, backbone_width=8, hidden_channels=8,
                   attention_dim=8)
CLASSES = ("wave", "walk", "jump", "sit")
ONNX_TO_TRITON = {onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.FLOAT: "TYPE_FP32"}
TRITON_TO_NUMPY = {"TYPE_UINT8": np.uint8, "TYPE_FP32": np.float32}


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(TINY)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them into the convs is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, _tiny_model(), CLASSES)
    return path


@pytest.fixture(scope="module")
def tiny_graph(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint).build_model().eval()
    return model, export_onnx(model)


def listing(root: Path) -> dict[str, str]:
    """Every path under root (hidden ones too) with its content hash: 'unchanged' means byte-identical."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*"))}


def run_export(capsys, *args: str) -> tuple[int, str, str]:
    code = export_main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def parse_config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


# ---------------------------------------------------------------------------------------------------------
# The ONNX graph and the parity gate.


def test_graph_is_unrolled_static_and_named_by_the_constants(tiny_graph):
    model, graph = tiny_graph
    proto = onnx.load_from_string(graph.onnx_bytes)
    ops = {node.op_type for node in proto.graph.node}
    assert not ops & CONTROL_FLOW_OPS
    io = graph_io(proto)
    assert [v.name for v in proto.graph.input] == [INPUT_CLIP]
    assert [v.name for v in proto.graph.output] == [OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION,
                                                    OUTPUT_TEMPORAL_ATTENTION]
    h, w = model.feature_map_size()
    assert io[INPUT_CLIP] == (onnx.TensorProto.UINT8, ["batch", 4, 32, 32, 3])
    assert io[OUTPUT_PROBABILITIES] == (onnx.TensorProto.FLOAT, ["batch", 4])
    assert io[OUTPUT_SPATIAL_ATTENTION] == (onnx.TensorProto.FLOAT, ["batch", 4, h, w])
    assert io[OUTPUT_TEMPORAL_ATTENTION] == (onnx.TensorProto.FLOAT, ["batch", 4])
    report = graph.report
    assert report["opset"] == OPSET_VERSION and "dynamo=False" in report["exporter"]
    assert report["node_count"] == len(proto.graph.node) and report["op_counts"]["Conv"] >= 5
    assert report["size_bytes"] > 0 and report["export_seconds"] > 0
    # Every Conv weight and bias is an initializer (TensorRT and the int8 quantizer need them to be).
    initializers = {init.name for init in proto.graph.initializer}
    assert all(set(node.input[1:]) <= initializers for node in proto.graph.node if node.op_type == "Conv")


def test_onnxruntime_matches_pytorch_at_batch_1_and_max_batch(tiny_graph):
    model, graph = tiny_graph
    clips = random_clips(8, TINY).clips
    report = check_parity(model, graph.onnx_bytes, clips, batch_sizes=(1, 8))
    assert report.passed, report.failures
    assert set(report.max_abs_diff) == {OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION}
    assert all(0 <= diff <= PARITY_ATOL for diff in report.max_abs_diff.values())
    assert report.top1_agreement == 1.0 and report.batch_sizes == (1, 8) and report.num_clips == 8


def _with_conv_weight_changed(onnx_bytes: bytes) -> bytes:
    proto = onnx.load_from_string(onnx_bytes)
    conv = next(node for node in proto.graph.node if node.op_type == "Conv")
    init = next(i for i in proto.graph.initializer if i.name == conv.input[1])
    weight = numpy_helper.to_array(init).copy()
    weight.flat[0] += 1.0
    init.CopyFrom(numpy_helper.from_array(weight, init.name))
    return proto.SerializeToString()


def _with_outputs_swapped(onnx_bytes: bytes, a: str, b: str) -> bytes:
    proto = onnx.load_from_string(onnx_bytes)
    rename = {a: b, b: a}
    for node in proto.graph.node:
        for i, name in enumerate(node.output):
            node.output[i] = rename.get(name, name)
    return proto.SerializeToString()


def test_parity_gate_refuses_an_altered_graph(tiny_graph):
    model, graph = tiny_graph
    clips = random_clips(4, TINY).clips
    changed = check_parity(model, _with_conv_weight_changed(graph.onnx_bytes), clips, batch_sizes=(1, 4))
    assert not changed.passed
    assert max(changed.max_abs_diff.values()) > PARITY_ATOL
    assert any("max abs diff" in failure for failure in changed.failures)
    swapped = check_parity(model, _with_outputs_swapped(graph.onnx_bytes, OUTPUT_PROBABILITIES,
                                                        OUTPUT_TEMPORAL_ATTENTION), clips, batch_sizes=(1,))
    assert not swapped.passed
    assert swapped.max_abs_diff[OUTPUT_PROBABILITIES] > PARITY_ATOL
    assert swapped.max_abs_diff[OUTPUT_SPATIAL_ATTENTION] <= PARITY_ATOL


def test_graph_check_names_what_is_wrong(tiny_graph):
    model, graph = tiny_graph
    signature = serving_signature(TINY, model.feature_map_size())
    proto = onnx.load_from_string(graph.onnx_bytes)
    proto.graph.output[2].type.tensor_type.shape.dim[1].dim_param = "frames"
    with pytest.raises(ExportError, match="temporal_attention axis 1 is 'frames', expected a static size"):
        check_graph(proto, signature)
    other = serving_signature(ModelConfig(num_classes=5, clip_length=4, height=32, width=32), model.feature_map_size())
    with pytest.raises(ExportError, match=r"probabilities has dims \['batch', 4\], expected \[batch, 5\]"):
        check_graph(graph.onnx_bytes, other)


# ---------------------------------------------------------------------------------------------------------
# The TensorRT static check.


def test_tensorrt_static_check_passes_the_exported_graph(tiny_graph):
    report = static_check(tiny_graph[1].onnx_bytes)
    assert report.passed, report.problems
    assert report.unsupported_ops == {} and report.dynamic_dims == [] and report.opset == OPSET_VERSION


def test_tensorrt_static_check_names_an_unsupported_op_and_a_dynamic_dim(tiny_graph):
    proto = onnx.load_from_string(tiny_graph[1].onnx_bytes)
    assert "ConvInteger" not in TENSORRT_SUPPORTED_OPS
    proto.graph.node.append(onnx.helper.make_node("ConvInteger", ["clip", "clip"], ["unused"]))
    proto.graph.output[1].type.tensor_type.shape.dim[2].dim_param = "height"
    report = static_check(proto)
    assert not report.passed
    assert report.unsupported_ops == {"ConvInteger": 1}
    assert any("ConvInteger" in problem for problem in report.problems)
    assert report.dynamic_dims == ["spatial_attention axis 2 is 'height', expected a static size"]


def test_engine_gate_compares_top1_and_attention(tiny_graph, monkeypatch):
    """The engine gate's arithmetic, with the engine's outputs given (building one needs a GPU)."""
    model, graph = tiny_graph
    signature = serving_signature(TINY, model.feature_map_size())
    clips = random_clips(4, TINY).clips
    reference = run_onnx(onnx_session(graph.onnx_bytes), clips, 4)
    engine_outputs = {name: value + 1e-3 for name, value in reference.items()}  # FP16-sized noise
    monkeypatch.setattr(tensorrt, "run_engine", lambda plan, clips, batch, input_name, names: engine_outputs)
    report = tensorrt.check_engine(b"plan", signature, reference, clips, batch_sizes=(1, 4))
    assert report["passed"], report["failures"]
    assert report["batch_4"]["top1_agreement"] == 1.0
    flipped = dict(engine_outputs, **{OUTPUT_PROBABILITIES: reference[OUTPUT_PROBABILITIES][:, ::-1]})
    monkeypatch.setattr(tensorrt, "run_engine", lambda plan, clips, batch, input_name, names: flipped)
    report = tensorrt.check_engine(b"plan", signature, reference, clips, batch_sizes=(1,))
    assert not report["passed"] and "top-1 agreement" in report["failures"][0]


# ---------------------------------------------------------------------------------------------------------
# The command: model directories, config.pbtxt, refusals.


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
    with pytest.raises(ExportError, match="--intra-op-threads applies to --target python only"):
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
        graph.onnx_bytes = _with_conv_weight_changed(graph.onnx_bytes)
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


def _tensorrt_usable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(_tensorrt_usable(), reason="this machine can build TensorRT engines")
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


# ---------------------------------------------------------------------------------------------------------
# The python backend's plain functions (no Triton needed).


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


def test_model_py_answers_each_request_in_order(python_model_dir, monkeypatch):
    """The adapter's wiring (config parsing, one response per request, per-request error codes) against a
    stand-in for the few pb_utils calls it makes; the real Triton runs it in the serving tests."""

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

    def config_by_name(section):
        return lambda config, name: next(t for t in config[section] if t["name"] == name)

    pb_utils = types.SimpleNamespace(
        TritonError=TritonError, Tensor=Tensor, InferenceResponse=InferenceResponse,
        get_input_config_by_name=config_by_name("input"), get_output_config_by_name=config_by_name("output"),
        triton_string_to_numpy=lambda name: TRITON_TO_NUMPY[name],
        get_input_tensor_by_name=lambda request, name: request.get(name))
    version = python_model_dir / "1"
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb_utils)
    monkeypatch.syspath_prepend(str(version))
    try:
        spec = importlib.util.spec_from_file_location("stanet_triton_model", version / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.TritonPythonModel()
        config = json_format.MessageToDict(parse_config(python_model_dir / "config.pbtxt"),
                                           preserving_proto_field_name=True)
        model.initialize({"model_config": json.dumps(config), "model_version": "1"})
        clips = random_clips(3, TINY).clips
        responses = model.execute([{INPUT_CLIP: Tensor(INPUT_CLIP, clips[:2])},
                                   {INPUT_CLIP: Tensor(INPUT_CLIP, clips[:1, :, :16])},
                                   {INPUT_CLIP: Tensor(INPUT_CLIP, clips[2:])}])
    finally:
        sys.modules.pop("stanet_backend", None)
    assert [r.error is None for r in responses] == [True, False, True]
    assert responses[1].error.code == TritonError.INVALID_ARG and "[1, 4, 16, 32, 3]" in str(responses[1].error)
    assert [t.name for t in responses[0].output_tensors] == [OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION,
                                                              OUTPUT_TEMPORAL_ATTENTION]
    assert [len(t.array) for t in responses[0].output_tensors] == [2, 2, 2]
    assert [len(t.array) for t in responses[2].output_tensors] == [1, 1, 1]


def test_backend_files_need_only_numpy_and_onnxruntime():
    allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime", "triton_python_backend_utils", "stanet_backend"}
    for name in pipeline.PYTHON_BACKEND_FILES:
        tree = ast.parse((pipeline.PYTHON_BACKEND_DIR / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported <= allowed, (name, imported - allowed)


# ---------------------------------------------------------------------------------------------------------
# Real clips and int8, on the session's trained tiny run (clip_length 8, 32x32, 8 classes).


@pytest.mark.slow
def test_fp32_gate_on_real_clips(trained_run, tiny_dataset, tmp_path, capsys):
    code, out, err = run_export(capsys, "--checkpoint", str(trained_run / "best.pt"), "--repository",
                                str(tmp_path / "m"), "--target", "onnxruntime", "--data", str(tiny_dataset))
    assert code == 0, err
    report = json.loads((tmp_path / "m" / "stanet" / "export_report.json").read_text())
    assert len(report["parity"]) == 2
    real = next(r for source, r in report["parity"].items() if "test split" in source)
    assert real["passed"] and real["num_clips"] == 24 and real["batch_sizes"] == [1, 8]
    assert all(diff <= PARITY_ATOL for diff in real["max_abs_diff"].values())


@pytest.mark.slow
def test_int8_quantizes_conv_only_and_measures_its_drift(trained_run, tiny_dataset):
    checkpoint = load_checkpoint(trained_run / "best.pt")
    model = checkpoint.build_model().eval()
    graph = export_onnx(model)
    calibration = dataset_clips(tiny_dataset, ("train", "val"), checkpoint.model_config, checkpoint.class_names,
                                limit=16)
    int8 = quantize_int8(graph.onnx_bytes, calibration.clips)
    proto = onnx.load_from_string(int8)
    producer = {out: node.op_type for node in proto.graph.node for out in node.output}
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert not ops & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul"}
    convs = [node for node in proto.graph.node if node.op_type == "Conv"]
    assert convs and all(producer.get(node.input[0]) == producer.get(node.input[1]) == "DequantizeLinear"
                         for node in convs)
    attention = [node for node in proto.graph.node if node.op_type in ("MatMul", "Gemm")]
    assert attention and not any(producer.get(name) == "DequantizeLinear" for node in attention
                                 for name in node.input)
    test_clips = dataset_clips(tiny_dataset, ("test",), checkpoint.model_config, checkpoint.class_names, limit=24)
    report = check_int8(onnx_session(graph.onnx_bytes), int8, test_clips)
    assert report.num_clips == 24 and 0 <= report.top1_agreement <= 1
    assert report.accuracy_fp32 is not None and report.accuracy_drop is not None
    assert 0 <= report.temporal_drift_max <= 1 and -1 <= report.spatial_correlation <= 1
    assert report.passed == (not report.failures)


@pytest.mark.slow
def test_int8_export_is_gated(trained_run, tiny_dataset, tmp_path, capsys, monkeypatch):
    repository = tmp_path / "m"
    command = ["--checkpoint", str(trained_run / "best.pt"), "--repository", str(repository), "--target",
               "python", "--precision", "int8", "--calibration", str(tiny_dataset)]
    monkeypatch.setattr(quantize, "MIN_SPATIAL_CORRELATION", 1.01)  # a gate no int8 graph can pass
    monkeypatch.setattr(quantize, "FLAT_MAP_ATOL", -1.0)
    code, _, err = run_export(capsys, *command)
    assert code == 1 and "int8 gate failed, nothing was written" in err and "spatial mask correlation" in err
    assert "top-1 agreement" in err and not repository.exists()
    # A tiny model trained for a few epochs sits near chance, so top-1 may flip on near-ties; this run
    # checks the wiring with the top-1 bound relaxed, the other bounds as shipped.
    monkeypatch.undo()
    monkeypatch.setattr(quantize, "MIN_TOP1_AGREEMENT", 0.0)
    monkeypatch.setattr(quantize, "MAX_ACCURACY_DROP", 1.0)
    code, out, err = run_export(capsys, *command)
    assert code == 0, err
    report = json.loads((repository / "stanet" / "export_report.json").read_text())
    assert report["model"]["precision"] == "int8" and report["int8"]["passed"]
    assert report["calibration"]["num_clips"] == 48 and "train split" in report["calibration"]["source"]
    assert report["int8"]["num_clips"] == 24 and "test split" in report["int8"]["source"]
    served = onnx.load(repository / "stanet" / "1" / "model.onnx")
    assert any(node.op_type == "QuantizeLinear" for node in served.graph.node)
    assert report["onnx"]["int8_size_bytes"] == (repository / "stanet" / "1" / "model.onnx").stat().st_size


# ---------------------------------------------------------------------------------------------------------
# GPU only.


@pytest.mark.gpu
@pytest.mark.skipif(not _tensorrt_usable(), reason="needs CUDA and the tensorrt package")
def test_tensorrt_engine_matches_onnxruntime(tiny_checkpoint, tmp_path, capsys):
    code, _, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(tmp_path / "m"),
                              "--target", "tensorrt", "--max-batch-size", "4",
                              "--timing-cache", str(tmp_path / "timing.cache"))
    assert code == 0, err
    report = json.loads((tmp_path / "m" / "stanet" / "export_report.json").read_text())
    assert report["tensorrt"]["passed"] and (tmp_path / "m" / "stanet" / "1" / "model.plan").stat().st_size > 0
    assert (tmp_path / "timing.cache").stat().st_size > 0
    config = parse_config(tmp_path / "m" / "stanet" / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 4
