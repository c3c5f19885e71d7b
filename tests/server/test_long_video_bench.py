"""`python -m bench.long_video` end to end on small files: it writes the videos, serves a tiny model on the
real embedded Triton, runs the real client as child processes and reports their memory, time and the
targets. Whether the targets are met is for the benchmark at full size, not for this test."""

from __future__ import annotations

import json

import pytest
import torch

from bench.long_video import main
from stanet.checkpoint import save_checkpoint
from stanet.constants import CLIP_SPAN_KEY
from stanet.model import build_model
from tiny import tiny_model_config

pytestmark = pytest.mark.slow


def test_the_long_video_benchmark_measures_each_client_run(tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model(tiny_model_config(num_classes=3, clip_length=4)).eval()
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, model, ("idle", "cross", "wave"), **{CLIP_SPAN_KEY: {"frames": 8, "seconds": 0.8}})
    out = tmp_path / "bench"
    assert main(["--checkpoint", str(checkpoint), "--output", str(out), "--minutes", "0.1,0.2",
                 "--size", "96x64", "--fps", "10", "--max-batch-size", "2", "--concurrency", "2,1"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["size"] == "96x64"
    runs = {(r["video"].split("_")[1], r["mode"], r["concurrency"]): r for r in report["runs"]}
    assert set(runs) == {(length, "clip", None) for length in ("0.1min", "0.2min")} | {
        (length, "timeline", n) for length in ("0.1min", "0.2min") for n in (1, 2)}
    assert runs["0.2min", "timeline", 1]["frames"] == 120
    assert "0.2min_96x64_10fps.mp4" in report["targets"][0]["target"]
    for r in runs.values():
        assert 20 < r["peak_rss_mb"] < 2048 and r["wall_s"] > 0
    assert "segments" in runs["0.1min", "timeline", 2]
    assert [t["met"] in (True, False) for t in report["targets"]] == [True, True, True]
    assert "client peak RSS MB" in capsys.readouterr().out
    # The videos are kept: a second run reuses them (same files, not rewritten).
    stamp = (out / "videos" / runs["0.1min", "clip", None]["video"]).stat().st_mtime_ns
    assert main(["--checkpoint", str(checkpoint), "--output", str(out), "--minutes", "0.1",
                 "--size", "96x64", "--fps", "10", "--max-batch-size", "2"]) == 0
    assert (out / "videos" / runs["0.1min", "clip", None]["video"]).stat().st_mtime_ns == stamp
