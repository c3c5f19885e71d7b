"""The synthetic benchmark's classes are defined by motion: a classifier that sees one frame stays near
chance, while the attention model that sees the clip learns them."""

from __future__ import annotations

import pytest

from stanet.dataset_format import load_dataset
from single_frame import single_frame_accuracies
from training.evaluate import evaluate

pytestmark = pytest.mark.slow


def test_single_frame_stays_near_chance_while_the_clip_model_learns(easy_dataset, easy_run):
    accuracies = single_frame_accuracies(easy_dataset)
    report = evaluate(easy_run / "best.pt", easy_dataset, cam_baseline=False, progress=False)
    clip_accuracy = report["classification"]["top1"]
    chance = 1 / len(load_dataset(easy_dataset).class_names)
    print(f"single frame: {accuracies} (any frame, acting frame); clip model: {clip_accuracy:.3f}; chance {chance}")
    assert max(accuracies) < chance + 0.15, accuracies
    assert clip_accuracy > 0.5 and clip_accuracy > max(accuracies) + 0.25, clip_accuracy
