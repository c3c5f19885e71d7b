"""`stanet export` with OpenVINO: the IR converted from the verified ONNX and written beside it with its
hashes, the fp32 parity gate and the bf16 / int8 drift gates on real clips (a model they must refuse is
refused, nothing written), the precision that follows the machine, and `--target openvino` for Triton's own
openvino backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from exported import parse_config, run_export, with_conv_weight_changed

from export import quantize
from export.clips import random_clips
from export.onnx_graph import serving_module
from export.openvino_backend import config_problems
from export.openvino_ir import bf16_support
from export.openvino_stage import openvino_stage
from export.parity import onnx_session
from serving.errors import ServingError
from serving.python_backend.stanet_backend import create_runner, settings_from_config
from serving.repository_check import check_repository
from stanet.checkpoint import load_checkpoint, save_checkpoint
from stanet.constants import CONFIG_FILE, MODEL_NAME, ONNX_FILE, OPENVINO_BIN_FILE, OPENVINO_XML_FILE
from stanet.integrity import MANIFEST_FILE, verify_version_folder

HAS_BF16 = bf16_support().available
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no native bf16 (AVX512_BF16 / AMX_BF16)")


def _report(repository: Path, name: str = MODEL_NAME) -> dict:
    return json.loads((repository / name / "export_report.json").read_text())


def _in_process(model_dir: Path):
    """The served model's call, built by the backend's own functions from what the export wrote."""
    from google.protobuf import json_format

    config = json_format.MessageToDict(parse_config(model_dir / CONFIG_FILE), preserving_proto_field_name=True)
    dtypes = {spec["name"]: (np.uint8 if spec["data_type"] == "TYPE_UINT8" else np.float32)
              for spec in config["input"] + config["output"]}
    settings = settings_from_config(config, dtypes)
    return create_runner(model_dir / "1", config, settings), settings


def test_fp32_openvino_export_writes_the_ir_beside_the_onnx_with_its_hashes(tiny_checkpoint, tmp_path, capsys):
    repository = tmp_path / "m"
    code, out, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                                "--target", "python", "--runtime", "openvino", "--max-batch-size", "4")
    assert code == 0, err
    assert "precision: fp32" in out and "openvino fp32 parity" in out
    version = repository / MODEL_NAME / "1"
    manifest = (version / MANIFEST_FILE).read_text()
    for name in (ONNX_FILE, OPENVINO_XML_FILE, OPENVINO_BIN_FILE, "openvino_runtime.py"):
        assert f"  {name}\n" in manifest
    assert verify_version_folder(version) == []
    report = _report(repository)
    assert report["model"]["runtime"] == "openvino" and report["model"]["precision"] == "fp32"
    assert all(r["passed"] for r in report["openvino"]["parity"].values())
    assert "openvino" in report["versions"]
    run, settings = _in_process(repository / MODEL_NAME)
    assert settings.runtime == "openvino" and settings.openvino_precision == "fp32"
    clips = random_clips(4, load_checkpoint(tiny_checkpoint).model_config, seed=5).clips
    session = onnx_session(version / ONNX_FILE)
    expected = dict(zip(settings.output_names, session.run(list(settings.output_names), {"clip": clips})))
    got = run(clips)
    for name in settings.output_names:
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=1e-5, err_msg=name)


def test_the_openvino_fp32_gate_refuses_an_ir_that_differs_from_pytorch(tiny_graph):
    model, graph = tiny_graph
    module, _ = serving_module(model)
    clips = random_clips(4, model.config)
    stage = openvino_stage("fp32", with_conv_weight_changed(graph.onnx_bytes), module,
                           onnx_session(graph.onnx_bytes), [clips], None, (1, 4), log=lambda _: None)
    assert stage.failure is not None and "OpenVINO FP32 parity gate failed, nothing was written" in stage.failure
    assert not all(r["passed"] for r in stage.sections["openvino"]["parity"].values())


def _peaked(trained_run: Path, tmp_path: Path) -> Path:
    """The trained run with its temporal attention scores scaled 3000x: a near-arg-max softmax over frames,
    whose weights bf16 rounding of the scores moves far past the drift gate's 0.1."""
    checkpoint = load_checkpoint(trained_run / "best.pt")
    model = checkpoint.build_model().eval()
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "score_out"):
                module.score_out.weight.mul_(3000.0)
    path = tmp_path / "peaked.pt"
    save_checkpoint(path, model, checkpoint.class_names)
    return path


@pytest.mark.slow
@needs_bf16
def test_bf16_follows_the_machine_and_is_gated_on_real_clips(trained_run, tiny_dataset, tmp_path, capsys):
    repository = tmp_path / "m"
    code, out, err = run_export(capsys, "--checkpoint", str(trained_run / "best.pt"), "--repository",
                                str(repository), "--target", "python", "--runtime", "openvino", "--data",
                                str(tiny_dataset))
    assert code == 0, err
    assert "precision: bf16 (the CPU has" in out and "openvino bf16 drift gate" in out
    report = _report(repository)
    drift = report["openvino"]["drift"]
    assert report["model"]["precision"] == "bf16" and drift["passed"] and "test split" in drift["source"]
    assert drift["num_clips"] == 24 and drift["temporal_drift_max"] <= quantize.MAX_TEMPORAL_DRIFT
    config = (repository / MODEL_NAME / CONFIG_FILE).read_text()
    assert 'key: "openvino_precision" value: { string_value: "bf16" }' in config


@pytest.mark.slow
@needs_bf16
def test_the_bf16_gate_refuses_a_model_it_must_refuse(trained_run, tiny_dataset, tmp_path, capsys):
    peaked = _peaked(trained_run, tmp_path)
    asked = tmp_path / "asked"
    code, _, err = run_export(capsys, "--checkpoint", str(peaked), "--repository", str(asked), "--target",
                              "python", "--runtime", "openvino", "--precision", "bf16", "--data", str(tiny_dataset))
    assert code == 1, err
    assert "OpenVINO bf16 drift gate failed, nothing was written" in err and "temporal weight drift" in err
    assert not asked.exists()
    chosen = tmp_path / "chosen"  # no --precision: bf16 is tried, refused, and fp32 written instead
    code, out, err = run_export(capsys, "--checkpoint", str(peaked), "--repository", str(chosen), "--target",
                                "python", "--runtime", "openvino", "--data", str(tiny_dataset))
    assert code == 0, err
    assert "precision: fp32 (bf16 was chosen for this CPU but its gate failed" in out
    assert _report(chosen)["model"]["precision"] == "fp32"
    assert 'string_value: "fp32"' in (chosen / MODEL_NAME / CONFIG_FILE).read_text()


@pytest.mark.slow
def test_int8_openvino_export_is_gated(trained_run, tiny_dataset, tmp_path, capsys, monkeypatch):
    # As in test_export_gates.py: a tiny model near chance flips top-1 on near-ties, so the wiring is checked
    # with the top-1 and accuracy bounds relaxed, the attention bounds as shipped.
    monkeypatch.setattr(quantize, "MIN_TOP1_AGREEMENT", 0.0)
    monkeypatch.setattr(quantize, "MAX_ACCURACY_DROP", 1.0)
    repository = tmp_path / "m"
    code, out, err = run_export(capsys, "--checkpoint", str(trained_run / "best.pt"), "--repository",
                                str(repository), "--target", "python", "--runtime", "openvino", "--precision",
                                "int8", "--calibration", str(tiny_dataset))
    assert code == 0, err
    report = _report(repository)
    assert report["int8"]["passed"] and report["openvino"]["drift"]["passed"]
    assert report["openvino"]["precision"] == "int8" and "openvino int8 drift gate" in out
    assert verify_version_folder(repository / MODEL_NAME / "1") == []


def test_target_openvino_is_a_model_for_tritons_openvino_backend(tiny_checkpoint, tmp_path, capsys):
    repository = tmp_path / "m"
    code, out, err = run_export(capsys, "--checkpoint", str(tiny_checkpoint), "--repository", str(repository),
                                "--target", "openvino")
    assert code == 0, err
    model = repository / MODEL_NAME
    assert sorted(p.name for p in (model / "1").iterdir()) == [MANIFEST_FILE, OPENVINO_BIN_FILE, OPENVINO_XML_FILE]
    assert config_problems((model / CONFIG_FILE).read_text()) == []
    assert parse_config(model / CONFIG_FILE).backend == "openvino"
    with pytest.raises(ServingError, match=r"OpenVINO backend .* --target python --runtime openvino"):
        check_repository(repository)
