"""The puppets benchmark (the second generator): determinism, ground truth that matches the pixels, a class
that no single frame reveals, motion that defines the class, a generated directory that reads back, and bad
values rejected with the field and the expected range."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stanet.dataset_format import load_dataset
from stanet.video import read_video
from training.puppets import CLASS_NAMES, PUPPETS_CONFIG_FILE, PuppetsConfig, generate_puppets, main, render_puppet_clip
from training.puppets.backdrop import field, noise_spectrum
from training.puppets.motions import traced_path
from training.puppets.scene import ACTOR_OUTFIT
from training.synth.generate import clip_rng

EXPECTED_CLASSES = ("pace", "zigzag", "orbit", "figure_eight", "square", "triangle")
PLAIN = PuppetsConfig(noise=0.0, frame_size=64, num_frames=24)


def _render(class_name: str, index: int = 0, config: PuppetsConfig = PLAIN, seed_split: str = "train"):
    return render_puppet_clip(class_name, clip_rng(config, seed_split, index), config)


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)  # (N, 2)


def test_class_names_and_order() -> None:
    assert CLASS_NAMES == EXPECTED_CLASSES


def test_same_seed_same_clip_and_different_seed_different_clip() -> None:
    config = PuppetsConfig(num_frames=16, pan=1.0)
    first, again = _render("orbit", 1, config), _render("orbit", 1, config)
    other = render_puppet_clip("orbit", clip_rng(PuppetsConfig(seed=9, num_frames=16, pan=1.0), "train", 1), config)
    for name in ("frames", "boxes", "acting", "actor_coverage", "distractor_coverage"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.interval == again.interval
    assert not np.array_equal(first.frames, other.frames) and not np.array_equal(first.boxes, other.boxes)


@pytest.mark.parametrize("class_name", EXPECTED_CLASSES)
def test_boxes_hold_the_actors_pixels(class_name: str) -> None:
    clip = _render(class_name, EXPECTED_CLASSES.index(class_name))
    N, S = PLAIN.num_frames, PLAIN.frame_size
    assert clip.frames.shape == (N, S, S, 3) and clip.frames.dtype == np.uint8 and clip.boxes.shape == (N, 4)
    colours = np.stack([ACTOR_OUTFIT.skin, ACTOR_OUTFIT.shirt, ACTOR_OUTFIT.trousers])  # (3, 3) before dimming
    for t in range(N):
        half = clip.actor_coverage[t] >= 0.5
        ys, xs = np.nonzero(half)
        x1, y1, x2, y2 = clip.boxes[t]
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)  # tight, exclusive ends
        ys, xs = np.nonzero(clip.actor_coverage[t] > 0)  # the soft edge lies within a pixel of the box
        assert xs.min() >= x1 - 1 and xs.max() <= x2 and ys.min() >= y1 - 1 and ys.max() <= y2
        # fully covered pixels show the actor's colours (drawn last, no noise here; where a part's soft edge
        # crosses another part, their colours blend)
        full = clip.frames[t][clip.actor_coverage[t] >= 1.0].astype(float)  # (P, 3)
        dimmed = colours * (clip.outfit.shirt / ACTOR_OUTFIT.shirt)[0]
        distance = np.abs(full[:, None] - dimmed[None]).max(axis=2).min(axis=1)  # (P,) to the nearest colour
        assert len(full) and np.mean(distance <= 1.0) >= 0.7
    assert not (clip.distractor_coverage * clip.actor_coverage > 0.5).any()


def test_the_pose_shows_acting_exactly_on_the_interval() -> None:
    for index, class_name in enumerate(EXPECTED_CLASSES):
        clip = _render(class_name, index)
        first, last = clip.interval
        assert clip.acting.tolist() == [first <= t <= last for t in range(PLAIN.num_frames)]
        heights = clip.boxes[:, 3] - clip.boxes[:, 1]
        # raised arms reach above the head: the box is taller while acting
        assert heights[clip.acting].mean() > heights[~clip.acting].mean() + 1.0, class_name


@pytest.mark.parametrize("class_name", EXPECTED_CLASSES)
def test_the_actor_traces_its_path_during_the_action_and_ends_where_it_started(class_name: str) -> None:
    config = PuppetsConfig(noise=0.0, idle_stroll=0.0, frame_size=64, num_frames=32)
    for index in range(3):
        clip = _render(class_name, index, config)
        first, last = clip.interval
        assert 0.4 * config.num_frames - 1 <= last - first + 1 <= 0.6 * config.num_frames + 1
        path = traced_path(class_name, 200, np.random.default_rng(index), 64, 10)
        np.testing.assert_allclose(path[0], path[-1], atol=1e-6)  # closed
        centres = _centres(clip.boxes)  # box centres move with the arms too: a few pixels of slack
        assert np.ptp(centres[first:last + 1], axis=0).max() >= 0.15 * config.frame_size
        assert np.abs(centres[first] - centres[last]).max() <= 6.0
        idle = centres[~clip.acting]
        if len(idle) > 2:
            assert np.ptp(idle, axis=0).max() <= 4.0  # standing: a sway of about a pixel


def test_one_frame_does_not_reveal_the_class() -> None:
    """The actor's mean position and its mean pose (box size) in acting frames carry no class information."""
    config = PuppetsConfig(num_distractors=0, noise=0.0, frame_size=48, num_frames=16)
    centres, sizes = {}, {}
    for class_name in EXPECTED_CLASSES:
        clips = [_render(class_name, i, config) for i in range(24)]
        centres[class_name] = np.concatenate([_centres(clip.boxes) for clip in clips])
        acting = np.concatenate([clip.boxes[clip.acting] for clip in clips])
        sizes[class_name] = np.mean((acting[:, 2] - acting[:, 0]) * (acting[:, 3] - acting[:, 1]))
    overall = np.concatenate(list(centres.values())).mean(axis=0)
    for class_name, values in centres.items():
        assert np.abs(values.mean(axis=0) - overall).max() < 0.1 * config.frame_size, class_name
    assert max(sizes.values()) < 1.15 * min(sizes.values()), sizes


def test_distractors_move_and_never_wear_the_actors_shirt() -> None:
    config = PuppetsConfig(noise=0.0, num_distractors=6, frame_size=64, num_frames=16)
    for index in range(4):
        clip = _render("square", index, config)
        assert clip.distractor_coverage.any()
        assert not np.array_equal(clip.distractor_coverage[0], clip.distractor_coverage[-1])
        pixels = clip.frames[clip.distractor_coverage >= 1.0].astype(float)
        assert np.linalg.norm(pixels - clip.outfit.shirt, axis=1).min() > 60


def test_pan_shifts_the_backdrop_exactly_and_a_still_camera_not_at_all() -> None:
    spectrum = noise_spectrum(np.random.default_rng(0), 32, 1.5)
    np.testing.assert_allclose(field(spectrum, np.array([3.0, -2.0])), np.roll(field(spectrum, np.zeros(2)), (-2, 3),
                                                                             axis=(0, 1)), atol=1e-9)
    for pan, moves in ((0.0, False), (1.5, True)):
        clip = _render("pace", 0, PuppetsConfig(noise=0.0, num_distractors=0, frame_size=48, num_frames=12, pan=pan))
        free = ~((clip.actor_coverage[0] > 0) | (clip.actor_coverage[-1] > 0))
        changed = np.abs(clip.frames[0].astype(float) - clip.frames[-1])[free].max(axis=1) > 0
        assert changed.mean() > 0.9 if moves else not changed.any()


@pytest.mark.parametrize("values, message", [
    (dict(frame_size=63), r"frame_size must be even and >= 32, got 63"),
    (dict(num_frames=4), r"num_frames must be >= 8, got 4"),
    (dict(figure_scale=0.6), r"figure_scale must be in \[0.15, 0.45\] \(a fraction of the frame side\), got 0.6"),
    (dict(num_distractors=9), r"num_distractors must be in \[0, 8\], got 9"),
    (dict(idle_stroll=1.5), r"idle_stroll must be in \[0, 1\], got 1.5"),
    (dict(pan=-0.5), r"pan must be in \[0, 8\] pixels per frame, got -0.5"),
    (dict(crf=60), r"crf must be in \[0, 51\], got 60"),
])  # fmt: skip
def test_bad_values_are_rejected_with_the_field_and_range(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PuppetsConfig(**values)


def test_generated_directory_reads_back_and_is_deterministic(tmp_path: Path, capsys) -> None:
    argv = ["--quiet", "--train", "6", "--val", "6", "--test", "0", "--frame-size", "48", "--num-frames", "16",
            "--seed", "4", "--pan", "1.0"]
    assert main(["--out", str(tmp_path / "data"), *argv]) == 0
    assert "wrote 12 puppet clips (6 classes)" in capsys.readouterr().out
    dataset = load_dataset(tmp_path / "data")
    assert dataset.class_names == EXPECTED_CLASSES
    config = PuppetsConfig.from_dict(json.loads((tmp_path / "data" / PUPPETS_CONFIG_FILE).read_text()))
    assert (config.frame_size, config.num_frames, config.pan, config.seed) == (48, 16, 1.0, 4)
    record = dataset.split("val")[2]
    assert record.label == EXPECTED_CLASSES[2] and sorted(record.boxes) == list(range(16))
    video = read_video(record.video)
    assert video.frames.shape == (16, 48, 48, 3)
    clip = render_puppet_clip(record.label, clip_rng(config, "val", 2), config)
    assert record.interval == clip.interval and record.boxes[5] == tuple(clip.boxes[5])
    assert np.abs(video.frames[0].astype(float) - clip.frames[0]).mean() < 12.0
    again = generate_puppets(tmp_path / "again", config, progress=False)
    assert (again / "annotations.jsonl").read_text() == (tmp_path / "data" / "annotations.jsonl").read_text()
    # refuses to overwrite, and reports bad values as the CLI's error
    assert main(["--out", str(tmp_path / "data"), *argv]) == 2
    assert "data exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "bad"), "--quiet", "--figure-scale", "0.9"]) == 2
    assert "stanet data puppets: error: invalid PuppetsConfig: figure_scale must be in" in capsys.readouterr().err


@pytest.mark.slow
def test_a_single_frame_classifier_stays_near_chance(tmp_path: Path) -> None:
    """The single-frame classifier of tests/single_frame.py (the recognizer's trunk and a position-aware head),
    trained on one frame per clip: near chance, on any frame or on an acting one."""
    from single_frame import single_frame_accuracies

    config = PuppetsConfig(seed=21, train=360, val=0, test=120, frame_size=32, num_frames=16)
    accuracies = single_frame_accuracies(generate_puppets(tmp_path / "data", config, progress=False))
    assert max(accuracies) < 1 / len(CLASS_NAMES) + 0.15, accuracies
