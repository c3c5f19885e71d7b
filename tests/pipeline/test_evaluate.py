"""`stanet evaluate` on a tiny trained run: the report's keys, the baselines, figures and bad input."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from training.evaluate import main as evaluate_main

pytestmark = pytest.mark.slow


def test_report_has_the_documented_keys_and_figures(trained_run, tiny_dataset, tmp_path, capsys):
    figures = tmp_path / "figures"
    output = tmp_path / "metrics.json"
    code = evaluate_main(["--checkpoint", str(trained_run / "best.pt"), "--data", str(tiny_dataset), "--json",
                          "--quiet", "--output", str(output), "--figures", str(figures), "--num-figures", "3"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(output.read_text())
    assert report["split"] == "test" and report["num_clips"] == 24 and report["skipped_videos"] == 0
    c = report["classification"]
    assert set(c) >= {"top1", "top5", "per_class", "confusion_matrix", "num_clips"}
    assert sum(map(sum, c["confusion_matrix"])) == 24 and 0 <= c["top1"] <= c["top5"] <= 1
    assert set(report["spatial"]) == {"model", "cam_baseline"}
    for values in report["spatial"].values():
        assert set(values["iou_at"]) == {"0.05", "0.1", "0.2", "0.3"}
        # scored on the frames inside each clip's action interval only (the paper's action-tube protocol)
        assert 0 <= values["pointing_game"] <= 1 and 0 < values["num_frames"] < 24 * 8
    assert set(report["temporal"]) == {"model", "uniform_baseline"}
    uniform = report["temporal"]["uniform_baseline"]
    # Uniform weights put exactly the interval's share of the mass inside it, and their AP is that share.
    assert uniform["mass_inside"] == pytest.approx(uniform["interval_fraction"])
    assert uniform["frame_ap"] is not None
    pictures = sorted(figures.glob("*.png"))
    assert len(pictures) == 3 and len(report["figures"]) == 3
    with Image.open(pictures[0]) as image:
        assert image.size[0] > 400


def test_table_output(trained_run, tiny_dataset, capsys):
    assert evaluate_main(["--checkpoint", str(trained_run / "last.pt"), "--data", str(tiny_dataset), "--quiet",
                          "--split", "val", "--no-cam-baseline"]) == 0
    out = capsys.readouterr().out
    assert "val split: 16 clips" in out and "top-1" in out and "uniform_baseline" in out
    assert "cam_baseline" not in out


def test_bad_inputs_are_named(trained_run, tiny_dataset, tmp_path, capsys):
    assert evaluate_main(["--checkpoint", str(tmp_path / "none.pt"), "--data", str(tiny_dataset)]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "classes.txt").write_text("a\nb\n")
    (other / "annotations.jsonl").write_text('{"video": "v.mp4", "label": "a", "split": "test"}\n')
    assert evaluate_main(["--checkpoint", str(trained_run / "best.pt"), "--data", str(other)]) == 2
    assert "the checkpoint was trained on" in capsys.readouterr().err
