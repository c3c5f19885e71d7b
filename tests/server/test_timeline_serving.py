"""`stanet infer --timeline` and `StanetClient.infer_timeline` against the real Triton binary: the JSON
schema, the Python client's typed results, overlays and bad input (empty, corrupt, damaged in the middle,
shorter than a window, a bad stride, a model without background). Two tiny untrained models: only shapes,
keys and error paths are checked here; what segments are right is tests/unit/test_timeline.py's job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from export.cli import main as export_main
from helpers import free_port
from serving.client import StanetClient
from serving.infer_cli import main as infer_main
from serving.server import ServerOptions, TritonServer
from serving.timeline import NO_BACKGROUND_NOTE, VideoTimeline
from stanet.checkpoint import save_checkpoint
from stanet.constants import BACKGROUND_CLASS, CLIP_SPAN_KEY, MODEL_NAME
from stanet.model import build_model
from stanet.timeline.pipeline import TimelineOptions
from stanet.timeline.segments import Segment, SegmentOptions
from stanet.video import probe_video, write_video
from tiny import tiny_model_config

pytestmark = pytest.mark.slow
FPS = 25
SPAN = {"frames": 8, "seconds": 8 / FPS}
WITH_BACKGROUND = "stanet_bg"
SEGMENT_KEYS = ["label", "score", "start", "end", "start_frame", "end_frame"]


def _export(tmp, repo, name, classes):
    torch.manual_seed(len(classes))
    model = build_model(tiny_model_config(num_classes=len(classes), clip_length=4)).eval()
    checkpoint = tmp / f"{name}.pt"
    save_checkpoint(checkpoint, model, classes, **{CLIP_SPAN_KEY: SPAN})
    assert export_main(["--checkpoint", str(checkpoint), "--repository", str(repo), "--target", "python",
                        "--name", name, "--max-batch-size", "2", "--instances", "1"]) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    repo = tmp / "repository"
    _export(tmp, repo, MODEL_NAME, ("wave", "walk", "jump"))
    _export(tmp, repo, WITH_BACKGROUND, (BACKGROUND_CLASS, "hop", "wave"))
    options = ServerOptions(repository=repo, grpc_port=free_port(), metrics_port=free_port(), exit_timeout_s=10)
    with TritonServer(options) as running:
        yield running


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """An untrimmed video made of clips (dark idle, a bright moving square, idle, a second action), one shorter
    than a window, an empty file, random bytes, and an mp4 damaged in the middle (decodes 51 of 100 frames)."""
    tmp = tmp_path_factory.mktemp("timeline_videos")
    rng = np.random.default_rng(0)
    idle = np.full((20, 32, 32, 3), 30, np.uint8)
    action = np.full((20, 32, 32, 3), 30, np.uint8)
    for i in range(20):
        action[i, 8:20, i:i + 12] = 230
    paths = {"long": tmp / "long.mp4", "short": tmp / "short.mp4", "empty": tmp / "empty.mp4",
             "corrupt": tmp / "corrupt.mp4", "damaged": tmp / "damaged.mp4"}
    write_video(paths["long"], np.concatenate([idle, action, idle, action[::-1], idle]), FPS)
    write_video(paths["short"], action[:5], FPS)
    paths["empty"].write_bytes(b"")
    paths["corrupt"].write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    write_video(paths["damaged"], rng.integers(0, 255, (100, 32, 32, 3), dtype=np.uint8), FPS)
    data = bytearray(paths["damaged"].read_bytes())
    data[len(data) // 2:len(data) // 2 + 4000] = bytes(4000)
    paths["damaged"].write_bytes(bytes(data))
    return paths


def _infer(capsys, server, *args):
    code = infer_main([*map(str, args), "--url", server.options.grpc_url, "--timeline", "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_timeline_json_schema_and_bad_files_named(server, videos, capsys):
    order = [videos[k] for k in ("long", "empty", "short", "corrupt", "damaged")]
    code, out, err = _infer(capsys, server, *order, "--json", "--threshold", "0")
    assert code == 1
    document = json.loads(out)  # exactly one JSON object
    assert list(document) == ["videos"]
    answers = document["videos"]
    assert [a["video"] for a in answers] == [str(p) for p in order]
    for answer in answers:
        assert list(answer) == ["video", "fps", "frames", "segments", "error", "notes"]
    long, empty, short, corrupt, damaged = answers
    assert (long["fps"], long["frames"], long["error"]) == (FPS, 100, None)
    assert long["segments"], "threshold 0: every class is a segment"
    for segment in long["segments"] + short["segments"] + damaged["segments"]:
        assert list(segment) == SEGMENT_KEYS
        assert 0 <= segment["start_frame"] <= segment["end_frame"]
        assert segment["start"] == pytest.approx(segment["start_frame"] / FPS, abs=1e-3)
        assert segment["end"] == pytest.approx((segment["end_frame"] + 1) / FPS, abs=1e-3)
        assert segment["label"] in ("wave", "walk", "jump") and 0 <= segment["score"] <= 1
    assert max(s["end_frame"] for s in long["segments"]) == 99
    assert (short["frames"], short["error"]) == (5, None)  # shorter than a window: one padded window
    assert max(s["end_frame"] for s in short["segments"]) == 4
    assert "the file is empty" in empty["error"] and empty["segments"] == []
    assert "not a decodable video" in corrupt["error"]
    assert damaged["frames"] == 51 and damaged["segments"], "segments up to the damage"
    assert max(s["end_frame"] for s in damaged["segments"]) <= 50
    assert "ends at frame 51 of the 100" in damaged["error"]
    for name in ("empty", "corrupt", "damaged"):
        assert f"stanet infer: error: {videos[name]}: " in err
    assert NO_BACKGROUND_NOTE in long["notes"] and NO_BACKGROUND_NOTE in err
    assert "Traceback" not in err


def test_timeline_table_and_overlays(server, videos, tmp_path, capsys):
    code, out, err = _infer(capsys, server, videos["long"], "--overlay", tmp_path / "out", "--threshold", "0",
                            "--model", WITH_BACKGROUND)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{videos['long']}  (100 frames, 25 fps, 4.0 s)")
    assert lines[1].split() == ["label", "score", "start", "s", "end", "s", "frames"]
    assert NO_BACKGROUND_NOTE not in err  # this model has a background class
    folder = tmp_path / "out" / "long"
    from PIL import Image

    with Image.open(folder / "timeline.png") as picture:
        assert picture.width > 0
    assert probe_video(folder / "annotated.mp4").num_frames == 100


def test_python_client_returns_typed_segments_and_names_a_bad_stride(server, videos):
    with StanetClient(server.options.grpc_url, WITH_BACKGROUND) as client:
        assert client.model().clip_span.frames == 8
        answer = client.infer_timeline(videos["long"], TimelineOptions(segments=SegmentOptions(threshold=0.0)),
                                       concurrency=2)
        assert isinstance(answer, VideoTimeline) and answer.ok and answer.frames == 100
        assert all(isinstance(s, Segment) and s.label in ("hop", "wave") for s in answer.segments)
        assert all(s.where.shape == (s.end_frame - s.start_frame + 1, 2) for s in answer.segments)
        for stride, message in ((TimelineOptions(stride_frames=0), "stride must be > 0 frames"),
                                (TimelineOptions(stride_frames=500), "longer than the video")):
            bad = client.infer_timeline(videos["long"], stride)
            assert not bad.ok and message in bad.error and str(videos["long"]) in bad.error


def test_infer_cli_segment_settings_reach_the_timeline_and_bad_ones_are_named(server, videos, capsys):
    code, out, err = _infer(capsys, server, videos["long"], "--json", "--threshold", "0")
    assert code == 0 and json.loads(out)["videos"][0]["segments"], err
    # the shortest segment kept is 20 windows of 8 frames, longer than the 100-frame video: nothing is left
    code, out, err = _infer(capsys, server, videos["long"], "--json", "--threshold", "0", "--min-duration", "20")
    assert code == 0 and json.loads(out)["videos"][0]["segments"] == [], err
    for bad, message in ((("--stride", "1", "--stride-frames", "4"), "go alone"),
                         (("--nms-iou", "0"), "nms_iou must be in (0, 1], got 0.0"),
                         (("--smoothing", "-1"), "smoothing and min_duration must be >= 0")):
        with pytest.raises(SystemExit):
            _infer(capsys, server, videos["long"], *bad)
        assert message in capsys.readouterr().err


def test_without_timeline_infer_still_answers_one_clip_per_video(server, videos, capsys):
    code = infer_main([str(videos["long"]), "--url", server.options.grpc_url, "--json", "--no-progress",
                       "--top-k", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (result,) = json.loads(captured.out)["results"]
    assert result["error"] is None and len(result["top_k"]) == 2 and len(result["frame_indices"]) == 4
