"""Learning "no action" (`train.background=true`) on a mix of trimmed clips and untrimmed videos: the
dataset's background samples lie outside every segment, a tiny run lowers its loss, and the checkpoint says
it has a background class and the span of its clips; trimmed evaluation still works on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stanet.checkpoint import load_checkpoint
from stanet.constants import BACKGROUND_CLASS, BEST_CHECKPOINT
from stanet.dataset_format import load_dataset, record_segments
from tiny import tiny_overrides
from training.data import BackgroundSpec, ClipDataset, ClipSpec
from training.train import main as train_main
from training.synth import main as synth_main

SYNTH = ["--train", "32", "--val", "8", "--test", "16", "--num-frames", "16", "--frame-size", "32", "--seed", "3",
         "--untrimmed", "--untrimmed-train", "8", "--untrimmed-val", "2", "--untrimmed-test", "2",
         "--untrimmed-seconds", "12", "--quiet"]


@pytest.fixture(scope="module")
def mixed_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixed") / "data"
    assert synth_main(["--out", str(out), *SYNTH]) == 0
    return out


def test_background_samples_lie_outside_every_segment(mixed_dataset: Path) -> None:
    dataset = load_dataset(mixed_dataset)
    records = dataset.split("train")
    background = len(dataset.class_names)
    clips = ClipDataset(records, ClipSpec(8, 32, 32), train=True, seed=2, progress=False,
                        background=BackgroundSpec(index=background))
    assert clips.span.frames == 16 and clips.span.seconds == 1.6  # the trimmed clips' length, 10 fps
    untrimmed_actions = sum(len(r.segments) for r in records if r.untrimmed)
    assert len(clips.actions) == 32 + untrimmed_actions
    assert len(clips) == len(clips.actions) + clips.background_per_epoch and clips.background_per_epoch >= 1
    seen_background = 0
    for epoch in range(3):
        for index in range(len(clips)):
            item = clips[index, epoch]
            record = clips.records[clips.samples(epoch)[index].record]
            frames = item["frame_indices"].numpy()
            if int(item["label"]) == background:
                seen_background += 1
                busy = [(f, l) for _, f, l in record_segments(record, num_frames=10**6)] if record.untrimmed or \
                    record.interval else []
                assert all(not ((frames >= f) & (frames <= l)).any() for f, l in busy), (record.line, frames)
                assert frames.max() - frames.min() < clips.span.frames
                assert not item["inside"].any() and np.isnan(item["boxes"].numpy()).all()
            elif record.untrimmed:
                assert item["inside"].any() and frames.max() - frames.min() < clips.span.frames
    assert seen_background == 3 * clips.background_per_epoch


def test_a_tiny_run_with_background_learns_and_records_it(mixed_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train_main(["--data", str(mixed_dataset), "--out", str(out), "--quiet",
                       *tiny_overrides(5, "train.background=true")]) == 0
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    checkpoint = load_checkpoint(out / BEST_CHECKPOINT)
    assert checkpoint.background and checkpoint.class_names[-1] == BACKGROUND_CLASS
    assert checkpoint.action_class_names == load_dataset(mixed_dataset).class_names
    assert checkpoint.extra["clip_span"] == {"frames": 16, "seconds": 1.6}  # Checkpoint.clip_span reads it
    assert checkpoint.extra["run_config"]["train"]["background"] is True

    from training.evaluate import evaluate  # noqa: PLC0415

    report = evaluate(out / BEST_CHECKPOINT, mixed_dataset, cam_baseline=False, progress=False)
    assert report["num_clips"] == 16  # the trimmed test clips only; untrimmed ones are for --timeline


def test_background_off_by_default_and_refused_without_idle_time(mixed_dataset: Path, tmp_path: Path,
                                                                 capsys) -> None:
    from training.run_data import prepare_data  # noqa: PLC0415
    from training.config import resolve_run_config  # noqa: PLC0415

    plain = prepare_data(mixed_dataset, resolve_run_config("plain"), progress=False)
    assert not plain.background and BACKGROUND_CLASS not in plain.class_names
    assert plain.train_set.background_per_epoch == 0

    trimmed_only = tmp_path / "trimmed"
    assert synth_main(["--out", str(trimmed_only), *SYNTH[:10], "--quiet"]) == 0
    code = train_main(["--data", str(trimmed_only), "--out", str(tmp_path / "run"), "--quiet",
                       *tiny_overrides(1, "train.background=true", "train.background_min_idle=1.0")])
    assert code != 0
    assert "no training video has an idle stretch of at least 1 x the clip span (16 frames)" in capsys.readouterr().err
