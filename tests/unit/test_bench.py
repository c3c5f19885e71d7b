"""The benchmark's statistics and report, on known numbers (the benchmark itself runs in `make bench`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.report import render, targets
from bench.stats import percentiles, summarize
from serving.loadgen import open_loop_schedule


def test_percentiles_on_known_samples():
    samples = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    p50, p90, p99 = percentiles(samples)
    assert p50 == pytest.approx(50.5) and p90 == pytest.approx(90.1) and p99 == pytest.approx(99.01)
    assert percentiles([0.007]) == [pytest.approx(7.0)] * 3
    assert all(math.isnan(v) for v in percentiles([]))


def test_summary_counts_clips_per_second_and_the_maximum():
    summary = summarize([0.010, 0.020, 0.030, 0.040], clips=8, seconds=2.0)
    assert summary.requests == 4 and summary.clips_per_s == 4.0 and summary.max_ms == pytest.approx(40.0)
    assert summary.p50_ms == pytest.approx(25.0)


def test_open_loop_sends_at_a_fixed_rate_whatever_the_answers():
    times = open_loop_schedule(rate_per_s=50, duration_s=2.0)
    assert len(times) == 100 and times[0] == 0.0
    np.testing.assert_allclose(np.diff(times), 0.02)
    with pytest.raises(ValueError, match="rate and duration must be > 0"):
        open_loop_schedule(0, 1)


def _point(clips_per_s, p50, **extra):
    return {"clips_per_s": clips_per_s, "p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.5, **extra}


def _report(int8_passed=True):
    report = {
        "label": "toy", "machine": "test", "threads": 2, "gflop_per_clip": 1.0, "fp32_ceiling_gflops": 100.0,
        "int8_gate": {"passed": int8_passed},
        "torch_eager": [_point(10, 100, batch=1), _point(12, 330, batch=4)],
        "onnxruntime": [_point(40, 25, batch=1), _point(45, 88, batch=4)],
        "triton_fp32": [_point(38, 26.5, concurrency=1), _point(42, 47, concurrency=2)],
        "triton_int8": [_point(50, 20, concurrency=1), _point(60, 33, concurrency=2)],
        "server_peak_rss_mb": 300.0, "client_peak_rss_mb": 900.0,
    }
    report["achieved_gflops"] = {k: max(p["clips_per_s"] for p in report[k]) * 1.0
                                 for k in ("torch_eager", "onnxruntime", "triton_fp32", "triton_int8")}
    return report


def test_targets_are_ratios_from_the_run_with_pass_and_fail():
    report = _report()
    results = {t["target"]: t for t in targets(report)}
    assert results["triton_vs_ort_throughput"]["value"] == pytest.approx(42 / 45, abs=1e-3)
    assert results["triton_vs_ort_throughput"]["passed"]  # 0.933 >= 0.9
    assert results["triton_latency_overhead"]["value"] == pytest.approx(1.5) and results["triton_latency_overhead"]["passed"]
    assert results["triton_vs_torch"]["value"] == pytest.approx(3.5) and results["triton_vs_torch"]["passed"]
    assert results["int8_vs_torch"]["value"] == pytest.approx(5.0) and results["int8_vs_torch"]["passed"]
    assert results["ceiling"]["value"] == pytest.approx(0.42) and not results["ceiling"]["passed"]
    # an int8 model outside its accuracy gate does not pass, however fast
    assert not {t["target"]: t for t in targets(_report(int8_passed=False))}["int8_vs_torch"]["passed"]


def test_the_report_renders_and_serializes():
    report = _report()
    report["targets"] = targets(report)
    text = render(report)
    assert "[PASS] (c) throughput >= 1.8 x (a): 3.5" in text and "[FAIL]" in text
    assert "triton_fp32: 3.50x (a), 0.93x (b)" in text
    assert json.loads(json.dumps(report))["targets"][0]["target"] == "triton_vs_ort_throughput"


def test_the_fp32_ceiling_is_the_faster_of_a_matmul_and_a_conv():
    from bench.runners import fp32_ceiling_gflops

    measured = fp32_ceiling_gflops(1, size=256, seconds=0.2)
    assert set(measured) == {"matmul", "conv", "ceiling"}
    assert measured["ceiling"] == max(measured["matmul"], measured["conv"]) and measured["matmul"] > 0


def test_colour_clips_are_videos_whose_class_is_the_actors_colour(tmp_path):
    """training.synth.colour_clips (the INT8 benchmark fixture for random-trunk ResNet models): one folder per colour,
    decodable videos of the requested size, and the pixels farthest from the grey background are nearest to
    the class colour."""
    from training.synth.colour_clips import COLOURS, main
    from stanet.video import read_video

    assert main(["--out", str(tmp_path / "src"), "--per-class", "2", "--frames", "4", "--size", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == sorted(COLOURS)
    for name in COLOURS:
        videos = sorted((tmp_path / "src" / name).glob("*.mp4"))
        assert len(videos) == 2
        frames = read_video(videos[0]).frames
        assert frames.shape == (4, 32, 32, 3)
        pixels = frames[0].reshape(-1, 3).astype(float)
        distance = np.linalg.norm(pixels - 110.0, axis=1)  # away from the grey background
        actor = pixels[distance >= np.quantile(distance, 0.97)].mean(axis=0)
        nearest = min(COLOURS, key=lambda other: np.linalg.norm(actor - COLOURS[other]))  # H.264 blurs chroma
        assert nearest == name, (name, actor)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "src")])  # not empty: refused


def _openvino_report(int8_served=True):
    report = _report()
    report.update({
        "openvino_models": {"fp32": "stanet_ov_fp32", "bf16": "stanet_ov_bf16",
                            "int8": "stanet_ov_int8" if int8_served else None},
        "openvino_refused": {} if int8_served else {"int8": "OpenVINO int8 drift gate failed"},
        "torch_bf16": [_point(30, 33, batch=1)],
        "openvino_bf16": [_point(100, 10, batch=1), _point(110, 36, batch=4)],
        "triton_ov_bf16": [_point(95, 11.5, concurrency=1), _point(104, 19, concurrency=2)],
        "triton_ov_int8": [_point(150, 7, concurrency=1)] if int8_served else [],
        "openvino_bf16_ceiling_gflops": 200.0, "openvino_fp32_ceiling_gflops": 100.0,
        "server_rss_mb": {"stanet": 250.0, "stanet_ov_bf16": 310.0},
    })
    report["achieved_gflops"].update({"triton_ov_bf16": 104.0, "openvino_bf16": 110.0, "torch_bf16": 30.0})
    return report


def test_the_openvino_targets_are_ratios_of_the_same_run():
    results = {t["target"]: t for t in targets(_openvino_report())}
    assert results["ov_bf16_vs_ort"]["value"] == pytest.approx(104 / 45, abs=1e-3) and results["ov_bf16_vs_ort"]["passed"]
    assert results["ov_bf16_vs_torch"]["value"] == pytest.approx(104 / 12, abs=1e-3)
    assert results["ov_bf16_vs_torch_bf16"]["value"] == pytest.approx(104 / 30, abs=1e-3)
    assert results["ov_int8_vs_ort"]["value"] == pytest.approx(150 / 45, abs=1e-3) and results["ov_int8_vs_ort"]["passed"]
    assert results["ov_served_vs_in_process"]["value"] == pytest.approx(104 / 110, abs=1e-3)
    assert results["ov_latency_overhead"]["value"] == pytest.approx(1.5) and results["ov_latency_overhead"]["passed"]
    assert results["ov_bf16_ceiling"]["value"] == pytest.approx(104 / 200, abs=1e-3)
    assert not results["ov_bf16_ceiling"]["passed"]
    refused = {t["target"]: t for t in targets(_openvino_report(int8_served=False))}
    assert not refused["ov_int8_vs_ort"]["passed"]  # not served (its gate refused it): not a pass
    report = _openvino_report(int8_served=False)
    report["targets"] = targets(report)
    text = render(report)
    assert "triton_ov_int8: not measured (OpenVINO int8 drift gate failed)" in text
    assert "OpenVINO ceilings: fp32 100 GFLOP/s, bf16 200 GFLOP/s" in text
    assert "stanet_ov_bf16 310 MB" in text and "torch_bf16       b1" in text


def test_the_long_video_is_written_frame_by_frame_with_its_crossings(tmp_path):
    from bench.long_video import write_long_video
    from stanet.video import probe_video, read_frames

    path = tmp_path / "long.mp4"
    write_long_video(path, seconds=8, width=96, height=48, fps=5)  # crossings during seconds 0-3, 6-9
    info = probe_video(path)
    assert (info.num_frames, info.fps) == (40, 5)
    assert not (tmp_path / "long.partial.mp4").exists()
    frames = read_frames(path, [0, 7, 20]).frames.astype(int)  # crossing start, mid-crossing, idle
    middle = frames[:, 24]  # the row through the square
    assert middle[0, :8].mean() > 200 and middle[0, 40:].mean() < 160  # the square starts at the left
    assert middle[1, :8].mean() < 160 and middle[1].max() > 200  # ... and has moved on
    assert middle[2].max() < 180  # idle: no square


def test_the_long_video_targets_compare_the_longest_timeline_with_the_shortest():
    from bench.long_video import targets

    def row(video, mode, seconds, rss, wall, concurrency=None):
        return {"video": video, "mode": mode, "concurrency": concurrency, "video_seconds": seconds,
                "peak_rss_mb": rss, "wall_s": wall, "realtime_factor": seconds / wall}

    rows = [row("1min", "clip", 60, 150, 1), row("1min", "timeline", 60, 300, 3, 4),
            row("10min", "clip", 600, 160, 1), row("10min", "timeline", 600, 450, 50, 4),
            row("10min", "timeline", 600, 1500, 100, 1)]  # another concurrency: not what the targets read
    spread, limit, speed = targets(rows, 4)
    assert (spread["value"], spread["met"]) == ("+150 MB", True)
    assert (limit["value"], limit["met"]) == ("450 MB (10min, timeline)", True)
    assert (speed["value"], speed["met"]) == ("12.0x", True)
    rows[3] = row("10min", "timeline", 600, 1100, 70, 4)
    spread, limit, speed = targets(rows, 4)
    assert not spread["met"] and not limit["met"] and not speed["met"]


def test_the_stub_split_is_per_execution_and_the_hop_is_what_triton_counts_beyond_it():
    from bench.report import render_stub_split
    from bench.served import stub_split
    from serving.python_backend.stanet_backend import PHASES

    delta = dict.fromkeys(PHASES, 0.0)
    delta.update(model=0.8, handoff=0.02, responses=0.01)  # seconds over 100 executions
    split = stub_split(delta, executed=100, executed_s=0.9)
    assert split["model"] == pytest.approx(8.0) and split["execution"] == pytest.approx(9.0)
    assert split["hop"] == pytest.approx(9.0 - 8.0 - 0.2 - 0.1)
    assert stub_split(dict.fromkeys(PHASES, 0.0), executed=100, executed_s=0.9) is None  # no phase counters
    text = render_stub_split({"stub_ms": split, "concurrency": 16, "average_batch": 4.5, "server_cpu_cores": 1.5,
                              "client_cpu_cores": 0.3})
    assert text.startswith("per execution at c16 (batch 4.50): Triton 9.000 ms = stub cancel_check 0.000")
    assert "model 8.000" in text and "hop 0.700" in text and "client 0.30" in text


def test_the_pinning_comparison_adds_one_parameter_to_an_exported_config():
    from bench.pinning import with_parameter

    text = 'name: "stanet"\nparameters [\n  { key: "onnx_file" value: { string_value: "model.onnx" } }\n]\n'
    changed = with_parameter(text, "pin_instances", "off")
    assert changed.count("key:") == 2 and '{ key: "pin_instances" value: { string_value: "off" } },' in changed
    with pytest.raises(ValueError, match="no parameters section"):
        with_parameter('name: "stanet"\n', "pin_instances", "off")


def test_the_openvino_pinning_comparison_times_both_settings_in_alternated_rounds(tmp_path):
    """bench.openvino_pinning on a tiny model: each setting timed once per round, the order swapped every round,
    and the medians written where the docs read them. In a subprocess, as it is run: its pinned OpenVINO threads
    stay out of the test process."""
    import subprocess
    import sys

    from bench.openvino_pinning import SETTINGS
    from stanet.checkpoint import save_checkpoint
    from stanet.model import build_model
    from tiny import tiny_model_config

    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, build_model(tiny_model_config(num_classes=3)).eval(), ("a", "b", "c"))
    output = tmp_path / "pinning.json"
    done = subprocess.run([sys.executable, "-m", "bench.openvino_pinning", "--checkpoint", str(checkpoint),
                           "--precision", "fp32", "--rounds", "2", "--seconds", "0.2", "--output", str(output)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line.split()[2] for line in done.stdout.splitlines() if line.startswith("round")]
    assert lines == ["pinned", "unpinned", "unpinned", "pinned"]
    report = json.loads(output.read_text())
    assert set(report["rounds"]) == set(SETTINGS) and all(len(r) == 2 for r in report["rounds"].values())
    assert all(r["requests"] > 0 and r["p50_ms"] > 0 for rounds in report["rounds"].values() for r in rounds)
    assert set(report["median_p50_ms"]) == set(SETTINGS)
