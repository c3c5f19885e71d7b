"""`stanet evaluate --faithfulness` on the tiny trained run: the documented JSON keys, the seeded subsample,
figures, the served graphs (fp32 and int8 QDQ through onnxruntime) against PyTorch, and bad arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.evaluate import main as evaluate_main

pytestmark = pytest.mark.slow

SPATIAL_MAPS = {"model", "random", "cam", "grad_cam"}


@pytest.fixture(scope="module")
def served_graphs(trained_run, tmp_path_factory):
    """The trained run's fp32 graph and its int8 QDQ graph as .onnx files."""
    from export.onnx_graph import export_onnx
    from export.quantize import quantize_int8
    from stanet.checkpoint import load_checkpoint

    model = load_checkpoint(trained_run / "best.pt").build_model().eval()
    fp32 = export_onnx(model).onnx_bytes
    calibration = np.random.default_rng(0).integers(0, 256, (8, 8, 32, 32, 3), dtype=np.uint8)
    folder = tmp_path_factory.mktemp("served")
    (folder / "fp32.onnx").write_bytes(fp32)
    (folder / "int8.onnx").write_bytes(quantize_int8(fp32, calibration, batch_size=4))
    return folder / "fp32.onnx", folder / "int8.onnx"


def test_faithfulness_keys_figures_and_served_graphs(trained_run, tiny_dataset, served_graphs, tmp_path, capsys):
    figures = tmp_path / "figures"
    code = evaluate_main(["--checkpoint", str(trained_run / "best.pt"), "--data", str(tiny_dataset), "--json",
                          "--quiet", "--faithfulness", "--faithfulness-clips", "3", "--faithfulness-steps", "2",
                          "--figures", str(figures), "--num-figures", "2",
                          "--served", str(served_graphs[0]), "--served", str(served_graphs[1]),
                          "--served-clips", "2"])
    assert code == 0
    section = json.loads(capsys.readouterr().out)["faithfulness"]
    for kind in ("deletion_auc", "insertion_auc"):
        assert set(section["spatial"][kind]) == SPATIAL_MAPS
        assert all(0.0 <= v <= 1.0 for v in section["spatial"][kind].values())
        assert set(section["temporal"][kind]) == {"model", "random"}
    r = section["randomization"]
    assert set(r) == {"stages", "spatial_spearman", "temporal_spearman"}
    assert r["stages"][0] == "classifier"
    assert len(r["spatial_spearman"]) == len(r["temporal_spearman"]) == len(r["stages"])
    settings = section["settings"]
    assert settings["clips_scored"] == 3 and settings["clips_in_split"] == 24 and len(settings["clip_indices"]) == 3
    assert len(section["figures"]) == 2 and all((figures / p.split("/")[-1]).is_file() for p in section["figures"])
    served = section["served"]
    assert served["clips"] == 2 and [g["precision"] for g in served["graphs"]] == ["fp32", "int8"]
    fp32 = served["graphs"][0]
    assert set(fp32["areas"]) == {"spatial.deletion_auc", "spatial.insertion_auc", "temporal.deletion_auc",
                                  "temporal.insertion_auc"}
    assert fp32["passed"] and fp32["max_abs_diff"] <= fp32["tolerance"]


def test_table_says_the_subsample(trained_run, tiny_dataset, capsys):
    assert evaluate_main(["--checkpoint", str(trained_run / "best.pt"), "--data", str(tiny_dataset), "--quiet",
                          "--no-cam-baseline", "--faithfulness", "--faithfulness-clips", "2",
                          "--faithfulness-steps", "2", "--faithfulness-seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "faithfulness on 2 of 24 clips (seeded subsample, seed 5)" in out
    assert "spatial cam" in out and "n/a" in out  # no CAM baseline fitted: its areas are absent, not invented


@pytest.mark.parametrize("args, message", [
    (["--faithfulness", "--faithfulness-clips", "0"], "--faithfulness-clips must be a positive number of clips"),
    (["--faithfulness", "--faithfulness-clips", "many"], "--faithfulness-clips must be a positive number"),
    (["--faithfulness", "--faithfulness-steps", "1"], "steps must be an integer >= 2"),
    (["--faithfulness", "--faithfulness-baseline", "zeros"], "baseline must be one of ('blur', 'mean')"),
    (["--served", "x.onnx"], "add --faithfulness"),
    (["--faithfulness", "--served-clips", "0"], "--served-clips must be a positive number"),
])
def test_bad_arguments_are_named(trained_run, tiny_dataset, args, message, capsys):
    assert evaluate_main(["--checkpoint", str(trained_run / "best.pt"), "--data", str(tiny_dataset), "--quiet",
                          *args]) == 2
    assert message in capsys.readouterr().err


def test_a_served_path_that_is_no_graph_is_named(tmp_path):
    from training.faithfulness.served import served_graphs

    with pytest.raises(ValueError, match="neither a .onnx file, nor a model folder"):
        served_graphs([tmp_path])


def test_served_graphs_of_a_repository_and_their_areas(tiny_graph, tmp_path):
    from export.repository import REPORT_FILE
    from stanet.constants import ONNX_FILE
    from training.faithfulness.config import FaithfulnessConfig
    from training.faithfulness.predict import TorchPredictor
    from training.faithfulness.served import served_faithfulness, served_graphs

    model, graph = tiny_graph
    for name, precision in (("stanet", "fp32"), ("stanet_int8", "int8")):  # two model folders, newest version wins
        for version in (1, 3):
            (tmp_path / name / str(version)).mkdir(parents=True)
            (tmp_path / name / str(version) / ONNX_FILE).write_bytes(graph.onnx_bytes)
        (tmp_path / name / REPORT_FILE).write_text(json.dumps({"model": {"precision": precision}}))
    found = served_graphs([tmp_path])
    assert [(p.relative_to(tmp_path).as_posix(), precision) for p, precision in found] == [
        ("stanet/3/model.onnx", "fp32"), ("stanet_int8/3/model.onnx", "int8")]
    clips = np.random.default_rng(0).integers(0, 256, (2, *graph.signature.clip.dims), dtype=np.uint8)
    result = served_faithfulness(TorchPredictor(model), [tmp_path / "stanet"], clips, np.arange(2),
                                 FaithfulnessConfig(steps=2))
    (row,) = result["graphs"]
    assert row["precision"] == "fp32" and row["passed"] and row["max_abs_diff"] < 1e-4
