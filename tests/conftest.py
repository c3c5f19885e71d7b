"""Shared fixtures: a tiny synthetic dataset and one small trained run, built once per session and reused
by the training, evaluation and (later) export and serving tests."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SYNTH = ["--train", "48", "--val", "16", "--test", "24", "--num-frames", "16", "--frame-size", "32",
              "--seed", "7"]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A small synthetic dataset (32x32 frames, 16 frames per video), generated once."""
    from training.synth import main as synth_main

    out = tmp_path_factory.mktemp("data") / "tiny"
    assert synth_main(["--out", str(out), *TINY_SYNTH, "--quiet"]) == 0
    return out


TINY_MODEL = ["model.clip_length=8", "model.height=32", "model.width=32", "model.backbone_width=8",
              "model.hidden_channels=8", "model.attention_dim=8"]
TINY_TRAIN = ["train.batch_size=8", "train.max_minutes=0", "train.lr=3e-3"]


def tiny_overrides(epochs: int = 2, *extra: str) -> list[str]:
    args = []
    for item in [*TINY_MODEL, *TINY_TRAIN, f"train.epochs={epochs}", *extra]:
        args += ["--set", item]
    return args


@pytest.fixture(scope="session")
def trained_run(tiny_dataset, tmp_path_factory) -> Path:
    """A tiny model trained for 4 epochs on `tiny_dataset` (best.pt, last.pt, history.jsonl)."""
    from training.train import main as train_main

    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert train_main(["--data", str(tiny_dataset), "--out", str(out), "--quiet", *tiny_overrides(4)]) == 0
    return out
