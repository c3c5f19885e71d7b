"""Shared fixtures, built once per session: a tiny synthetic dataset and a small run trained on it (training,
evaluation and export tests), and an easy dataset with a clip model that really learns it (the motion test
and the serving tests, which need right labels)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny import TINY_SYNTH, tiny_overrides


def _synthesize(tmp_path_factory, name: str, args: list[str]) -> Path:
    from training.synth import main as synth_main

    out = tmp_path_factory.mktemp(name) / "data"
    assert synth_main(["--out", str(out), *args, "--quiet"]) == 0
    return out


def _train(data: Path, tmp_path_factory, name: str, args: list[str]) -> Path:
    from training.train import main as train_main

    out = tmp_path_factory.mktemp(name) / "run"
    assert train_main(["--data", str(data), "--out", str(out), "--quiet", *args]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A small synthetic dataset (32x32 frames, 16 frames per video), generated once."""
    return _synthesize(tmp_path_factory, "tiny", TINY_SYNTH)


@pytest.fixture(scope="session")
def trained_run(tiny_dataset, tmp_path_factory) -> Path:
    """A tiny model trained for 4 epochs on `tiny_dataset` (best.pt, last.pt, history.jsonl)."""
    return _train(tiny_dataset, tmp_path_factory, "tiny_run", tiny_overrides(4))


EASY_SYNTH = ["--train", "480", "--val", "64", "--test", "160", "--frame-size", "32", "--num-frames", "24",
              "--seed", "11", "--difficulty", "easy"]
# A clip model that learns the easy data within a test's budget (about 88% test top-1).
EASY_MODEL = ["model.clip_length=16", "model.height=32", "model.width=32", "model.backbone_width=16",
              "model.hidden_channels=32", "model.attention_dim=32", "train.epochs=16", "train.batch_size=32",
              "train.max_minutes=0", "train.regularizer_warmup_epochs=4"]


@pytest.fixture(scope="session")
def easy_dataset(tmp_path_factory) -> Path:
    """The easy difficulty (no distractors, no idle walks): the same motion-defined classes."""
    return _synthesize(tmp_path_factory, "easy", EASY_SYNTH)


@pytest.fixture(scope="session")
def easy_run(easy_dataset, tmp_path_factory) -> Path:
    """The demo preset's model, small, trained on `easy_dataset` (best.pt)."""
    return _train(easy_dataset, tmp_path_factory, "easy_run",
                  ["--preset", "demo", *sum((["--set", item] for item in EASY_MODEL), [])])


@pytest.fixture(scope="session")
def served_repository(easy_run, tmp_path_factory) -> Path:
    """`easy_run` exported for the embedded Triton (python target, max_batch_size 4)."""
    from export.cli import main as export_main

    repo = tmp_path_factory.mktemp("serving") / "model_repository"
    assert export_main(["--checkpoint", str(easy_run / "best.pt"), "--repository", str(repo), "--target", "python",
                        "--max-batch-size", "4"]) == 0
    return repo


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """`exported.tiny_model()` saved as a checkpoint (the export tests' model, untrained)."""
    from exported import CLASSES, tiny_model
    from stanet.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, tiny_model(), CLASSES)
    return path


@pytest.fixture(scope="session")
def tiny_graph(tiny_checkpoint):
    """(model, exported graph) of `tiny_checkpoint`."""
    from export.onnx_graph import export_onnx
    from stanet.checkpoint import load_checkpoint

    model = load_checkpoint(tiny_checkpoint).build_model().eval()
    return model, export_onnx(model)
