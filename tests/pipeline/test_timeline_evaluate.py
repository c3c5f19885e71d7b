"""`stanet evaluate --timeline` on a hand-made dataset of untrimmed videos (clips concatenated with idle
time between them): the report's "timeline" keys, the two baselines in the same run, the trimmed clips'
report beside it, an unreadable video listed, and the notes for a checkpoint without background or span."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from exported import CLASSES
from stanet.constants import ANNOTATIONS_FILE, CLASSES_FILE
from stanet.video import write_video
from training.evaluate import main as evaluate_main

TIOUS = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
MAP_KEYS = {"map", "mean_0.3_0.7", "per_class", "classes", "ground_truth", "detections"}


@pytest.fixture(scope="module")
def untrimmed_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrimmed")
    (root / "videos").mkdir()
    (root / CLASSES_FILE).write_text("".join(f"{c}\n" for c in CLASSES))
    rng = np.random.default_rng(3)
    lines = []
    for i in range(3):
        frames = np.full((80, 32, 32, 3), 20, np.uint8)
        frames[10:30, 4:20, 4:20] = 200  # action 1
        frames[50:70, 10:28, 10:28] = rng.integers(0, 255, (20, 18, 18, 3), dtype=np.uint8)  # action 2
        write_video(root / "videos" / f"u{i}.mp4", frames, 25)
        lines.append({"video": f"videos/u{i}.mp4", "split": "test",
                      "segments": [{"label": CLASSES[i], "interval": [10, 29]},
                                   {"label": CLASSES[3], "interval": [50, 69]}]})
    (root / "videos" / "broken.mp4").write_bytes(b"not a video")
    lines.append({"video": "videos/broken.mp4", "split": "test", "segments": [{"label": "wave", "interval": [0, 5]}]})
    for i in range(2):
        write_video(root / "videos" / f"t{i}.mp4", np.full((16, 32, 32, 3), 60 * i, np.uint8), 25)
        lines.append({"video": f"videos/t{i}.mp4", "label": CLASSES[i], "split": "test"})
    (root / ANNOTATIONS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def test_evaluate_timeline_reports_the_method_and_both_baselines(tiny_checkpoint, untrimmed_dataset, capsys):
    code = evaluate_main(["--checkpoint", str(tiny_checkpoint), "--data", str(untrimmed_dataset), "--timeline",
                          "--json", "--no-cam-baseline", "--quiet", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["num_clips"] == 2 and "classification" in report  # the trimmed clips, as without --timeline
    section = report["timeline"]
    for name in ("attention", "uniform_baseline", "window_baseline"):
        assert set(section[name]) == MAP_KEYS
        assert list(section[name]["map"]) == TIOUS
        assert all(0.0 <= v <= 1.0 for v in section[name]["map"].values())
        assert section[name]["ground_truth"] == 6 and section[name]["classes"] == 4
    assert section["window_baseline"]["detections"] > 0
    assert (section["num_videos"], section["num_ground_truth"]) == (3, 6)
    assert [s["line"] for s in section["skipped_videos"]] == [4]
    assert section["background"] is False and section["clip_span"] is None
    assert any("no background class" in note for note in section["notes"])
    assert any("records no training clip span" in note for note in section["notes"])


def test_evaluate_timeline_table_and_errors(tiny_checkpoint, untrimmed_dataset, tmp_path, capsys):
    code = evaluate_main(["--checkpoint", str(tiny_checkpoint), "--data", str(untrimmed_dataset), "--timeline",
                          "--no-cam-baseline", "--quiet", "--device", "cpu", "--stride-frames", "2",
                          "--figures", str(tmp_path / "figures"), "--num-figures", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "figures" / "timeline").iterdir()) == ["u0.png", "u1.png"]
    assert "timeline (THUMOS14 mAP %, 3 untrimmed videos, 6 actions)" in out
    assert all(any(line.strip().startswith(name) for line in out.splitlines())
               for name in ("attention", "uniform_baseline", "window_baseline"))
    code = evaluate_main(["--checkpoint", str(tiny_checkpoint), "--data", str(untrimmed_dataset), "--timeline",
                          "--no-cam-baseline", "--quiet", "--device", "cpu", "--stride-frames", "500"])
    assert code == 2 and "longer than the video" in capsys.readouterr().err
    code = evaluate_main(["--checkpoint", str(tiny_checkpoint), "--data", str(untrimmed_dataset), "--timeline",
                          "--no-cam-baseline", "--quiet", "--device", "cpu", "--json", "--smoothing", "0.5",
                          "--min-duration", "0", "--nms-iou", "0.3", "--threshold", "0.2"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["timeline"]["segment_options"] == {
        "threshold": 0.2, "smoothing": 0.5, "min_duration": 0.0, "nms_iou": 0.3}
    code = evaluate_main(["--checkpoint", str(tiny_checkpoint), "--data", str(untrimmed_dataset), "--timeline",
                          "--no-cam-baseline", "--quiet", "--device", "cpu", "--nms-iou", "0"])
    assert code == 2 and "nms_iou must be in (0, 1], got 0.0" in capsys.readouterr().err
    trimmed_only = tmp_path / "trimmed"
    trimmed_only.mkdir()
    (trimmed_only / CLASSES_FILE).write_text((untrimmed_dataset / CLASSES_FILE).read_text())
    shutil.copy(untrimmed_dataset / "videos" / "t0.mp4", trimmed_only / "t0.mp4")
    (trimmed_only / ANNOTATIONS_FILE).write_text(json.dumps({"video": "t0.mp4", "label": "wave", "split": "test"})
                                                 + "\n")
    code = evaluate_main(["--checkpoint", str(tiny_checkpoint), "--data", str(trimmed_only), "--timeline",
                          "--no-cam-baseline", "--quiet", "--device", "cpu"])
    assert code == 2 and "no untrimmed records" in capsys.readouterr().err


def test_timeline_settings_scores_every_value_from_one_pass(tiny_checkpoint, untrimmed_dataset, tmp_path, capsys):
    from training.timeline_settings import GRID
    from training.timeline_settings import main as settings_main

    code = settings_main(["--checkpoint", str(tiny_checkpoint), "--data", str(untrimmed_dataset), "--quiet",
                          "--output", str(tmp_path / "settings.json")])
    out = capsys.readouterr().out
    assert code == 0
    rows = json.loads((tmp_path / "settings.json").read_text())["rows"]
    assert [(r["setting"], r["value"]) for r in rows] == [(k, v) for k, values in GRID.items() for v in values]
    assert len(out.splitlines()) == len(rows) + 2  # header, one line per row, the footnote
    defaults = [r["attention"] for r in rows if r["default"]]
    assert len(defaults) == len(GRID) and all(d == defaults[0] for d in defaults)
    code = evaluate_main(["--checkpoint", str(tiny_checkpoint), "--data", str(untrimmed_dataset), "--timeline",
                          "--json", "--no-cam-baseline", "--quiet", "--device", "cpu"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["timeline"]["attention"] == defaults[0]  # the same scoring
    kept = [r["detections"] for r in rows if r["setting"] == "min_duration"]
    assert kept == sorted(kept, reverse=True)  # a longer minimum can only drop segments
    (tmp_path / "other").mkdir()
    shutil.copytree(untrimmed_dataset, tmp_path / "other", dirs_exist_ok=True)
    (tmp_path / "other" / CLASSES_FILE).write_text("".join(f"{c}\n" for c in reversed(CLASSES)))
    code = settings_main(["--checkpoint", str(tiny_checkpoint), "--data", str(tmp_path / "other"), "--quiet"])
    assert code == 2 and "same names in the same order" in capsys.readouterr().err
