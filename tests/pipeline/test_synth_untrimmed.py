"""`stanet data synth --untrimmed`: long videos with 1 to several actions and idle gaps, written as untrimmed
records beside the trimmed clips; segments inside the video and apart per class, boxes on every frame, the
actor's pose matching the segments, and the same seed giving the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stanet.constants import ANNOTATIONS_FILE
from stanet.dataset_format import check_frame_count, load_dataset, record_segments
from stanet.video import probe_video
from training.synth import SynthConfig, main
from training.synth.generate import UNTRIMMED_DEFAULTS, untrimmed_rng
from training.synth.untrimmed import action_lengths, min_gap_frames, render_untrimmed, untrimmed_frames

ARGS = ["--train", "4", "--val", "2", "--test", "2", "--num-frames", "16", "--frame-size", "32", "--untrimmed",
        "--untrimmed-train", "3", "--untrimmed-val", "1", "--untrimmed-test", "2", "--untrimmed-seconds", "12",
        "--fps", "10", "--quiet"]
CONFIG = SynthConfig(num_frames=16, untrimmed_test=1, untrimmed_seconds=12, fps=10)


@pytest.fixture(scope="module")
def untrimmed_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("untrimmed") / "data"
    assert main(["--out", str(out), "--seed", "5", *ARGS]) == 0
    return out


def test_untrimmed_records_next_to_trimmed_clips(untrimmed_dataset: Path) -> None:
    dataset = load_dataset(untrimmed_dataset)  # validates: known classes, no overlap within a class
    untrimmed = [r for r in dataset.records if r.untrimmed]
    assert [r.split for r in untrimmed] == ["train"] * 3 + ["val"] + ["test"] * 2
    assert len(dataset.records) - len(untrimmed) == 8
    shortest, longest = action_lengths(CONFIG)
    for record in untrimmed:
        info = probe_video(record.video)
        assert info.num_frames == 120 and info.fps == 10
        check_frame_count(record, info.num_frames, untrimmed_dataset / ANNOTATIONS_FILE)
        segments = record_segments(record)
        assert 1 <= len(segments) <= 4
        ends = [(first, last) for _, first, last in segments]
        assert all(shortest <= last - first + 1 <= longest for first, last in ends)
        # idle gaps of at least one clip length before, between and after the actions
        gaps = [ends[0][0]] + [b[0] - a[1] - 1 for a, b in zip(ends, ends[1:])] + [119 - ends[-1][1]]
        assert min(gaps) >= min_gap_frames(CONFIG) == 16
        assert sorted(record.boxes) == list(range(120))


def test_pose_matches_the_segments_and_the_seed_decides_everything(tmp_path: Path) -> None:
    for index in range(6):
        video = render_untrimmed(untrimmed_rng(CONFIG, "test", index), CONFIG)
        assert video.frames.shape == (untrimmed_frames(CONFIG), 32, 32, 3)
        acting = np.zeros(len(video.frames), dtype=bool)
        for _, first, last in video.segments:
            acting[first:last + 1] = True
        np.testing.assert_array_equal(video.acting, acting)
        again = render_untrimmed(untrimmed_rng(CONFIG, "test", index), CONFIG)
        np.testing.assert_array_equal(video.frames, again.frames)
        assert video.segments == again.segments
    assert render_untrimmed(untrimmed_rng(CONFIG, "test", 0), CONFIG).segments != \
        render_untrimmed(untrimmed_rng(CONFIG, "test", 1), CONFIG).segments

    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        assert main(["--out", str(out), "--seed", "9", *ARGS]) == 0
    assert (first / ANNOTATIONS_FILE).read_bytes() == (second / ANNOTATIONS_FILE).read_bytes()
    assert json.loads((first / "synth_config.json").read_text())["untrimmed_seconds"] == 12


def test_untrimmed_flag_defaults_and_bad_lengths(tmp_path: Path, capsys) -> None:
    from training.synth.generate import parse_args

    args = parse_args(["--out", "x", "--untrimmed"])
    assert {split: getattr(args, f"untrimmed_{split}") for split in UNTRIMMED_DEFAULTS} == UNTRIMMED_DEFAULTS
    assert parse_args(["--out", "x"]).untrimmed_train is None
    code = main(["--out", str(tmp_path / "bad"), "--untrimmed", "--untrimmed-seconds", "3", "--quiet"])
    assert code == 2 and not (tmp_path / "bad").exists()
    assert "untrimmed_seconds=3 gives 30 frames at 10 fps, expected at least" in capsys.readouterr().err


def test_stanet_data_check_probes_the_videos(untrimmed_dataset: Path, tmp_path: Path, capsys) -> None:
    from stanet.cli import main as stanet_main  # noqa: PLC0415

    assert stanet_main(["data", "check", str(untrimmed_dataset), "--quiet"]) == 0
    assert "train: 4 trimmed clips, 3 untrimmed videos" in capsys.readouterr().out
    # A segment past the end of its 120-frame video: named with its file, line and field.
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("classes.txt", "videos"):
        (broken / name).symlink_to(untrimmed_dataset / name)
    lines = (untrimmed_dataset / ANNOTATIONS_FILE).read_text().splitlines()
    record = json.loads(lines[8])  # the first untrimmed record
    record["segments"][-1]["interval"][1] = 120
    lines[8] = json.dumps(record)
    (broken / ANNOTATIONS_FILE).write_text("\n".join(lines) + "\n")
    assert stanet_main(["data", "check", str(broken), "--quiet"]) == 2
    field = f"segments[{len(record['segments']) - 1}].interval"
    assert (f"annotations.jsonl, line 9: field '{field}': found [{record['segments'][-1]['interval'][0]}, 120]"
            in capsys.readouterr().err)
