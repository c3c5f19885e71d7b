"""The track oracle (training.generalization.track_oracle): classes that the actor's path tells apart are
told apart from its boxes alone, labels that the path does not tell are not, and gaps in the boxes are filled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stanet.dataset_format import ClipRecord
from training.generalization.track_oracle import track_centres, track_features, track_oracle

FRAMES, CLIP, STEPS = 32, 16, 500
CLASSES = ["circle", "line"]


def path(kind: str, rng: np.random.Generator) -> np.ndarray:
    """(FRAMES, 2) centres: a circle or a back-and-forth line, anywhere, any size, in any orientation."""
    t = np.linspace(0, 2 * np.pi, FRAMES) + rng.uniform(0, 2 * np.pi)
    radius, angle, centre = rng.uniform(5, 20), rng.uniform(0, np.pi), rng.uniform(30, 70, size=2)
    if kind == "circle":
        offsets = np.stack([np.cos(t), np.sin(t)], axis=1) * radius
    else:
        offsets = np.outer(np.sin(t), [np.cos(angle), np.sin(angle)]) * radius
    return centre + offsets + rng.normal(0, 0.5, size=(FRAMES, 2))


def records(label_of, seed: int = 0) -> list[ClipRecord]:
    rng, made = np.random.default_rng(seed), []
    for line, (split, count) in enumerate([("train", 40)] * 2 + [("test", 20)] * 2):
        for _ in range(count):
            kind = "circle" if line % 2 == 0 else "line"
            centres = path(kind, rng)
            label = label_of(kind, rng)
            boxes = {i: (x - 3, y - 5, x + 3, y + 5) for i, (x, y) in enumerate(centres)}
            made.append(ClipRecord(video=Path(f"{len(made)}.mp4"), label=label, label_index=CLASSES.index(label),
                                   split=split, interval=None, boxes=boxes, line=len(made) + 1))
    return made


def test_a_path_that_tells_the_classes_apart_is_read():
    result = track_oracle(records(lambda kind, rng: kind), 2, CLIP, steps=STEPS)
    assert result.test_top1 >= 0.9 and result.chance == 0.5
    assert (result.train_clips, result.test_clips) == (80, 40)


def test_labels_the_path_does_not_tell_stay_near_chance():
    result = track_oracle(records(lambda kind, rng: CLASSES[rng.integers(2)]), 2, CLIP, steps=STEPS)
    assert result.test_top1 < 0.75


def test_gaps_take_the_previous_box_and_no_boxes_is_none():
    record = ClipRecord(video=Path("v.mp4"), label="a", label_index=0, split="train", interval=None,
                        boxes={2: (0, 0, 2, 2), 6: (10, 10, 12, 12), 7: (20, 20, 22, 22)}, line=1)
    centres = track_centres(record, 8)  # the boxes span frames 0..7: one sample per frame
    assert centres.tolist() == [[1, 1]] * 6 + [[11, 11], [21, 21]]
    assert track_centres(ClipRecord(**{**record.__dict__, "boxes": None}), 8) is None


def test_moving_rotating_and_scaling_a_path_keeps_its_shape_features():
    rng = np.random.default_rng(1)
    centres = path("circle", rng)[:CLIP]
    rotation = np.array([[0.6, -0.8], [0.8, 0.6]])
    moved = 3.0 * centres @ rotation.T + 17.0
    invariant = CLIP * (CLIP - 1) // 2 + (CLIP - 1) + (CLIP - 2)
    np.testing.assert_allclose(track_features(moved)[:invariant], track_features(centres)[:invariant], atol=1e-5)
    assert not np.allclose(track_features(moved)[invariant:], track_features(centres)[invariant:], atol=1e-3)
