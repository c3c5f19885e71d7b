"""The synthetic actions benchmark: determinism, ground truth that matches the pixels, a class that no single
frame reveals, and a generated directory that the dataset loader and the video decoder read back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from stanet.constants import ANNOTATIONS_FILE, SPLITS
from stanet.dataset_format import load_dataset
from stanet.video import read_video
from training.synth import CLASS_NAMES, SynthConfig, generate_dataset, main, render_clip
from training.synth.generate import SYNTH_CONFIG_FILE, clip_rng
from training.synth.render import actor_size, actor_sprites

EXPECTED_CLASSES = (
    "walk_horizontal", "walk_vertical", "walk_diagonal_down", "walk_diagonal_up",
    "circle", "hop", "shuffle", "corner",
)  # fmt: skip
TINY = SynthConfig(seed=3, train=8, val=8, test=8, num_frames=16)


def _render(class_name: str, seed: int = 0, index: int = 0, config: SynthConfig = SynthConfig()):
    return render_clip(class_name, np.random.default_rng([seed, 0, index]), config)


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)  # (N, 2)


@pytest.fixture(scope="module")
def generated_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "data", TINY, progress=False)


def test_class_names_and_order() -> None:
    assert CLASS_NAMES == EXPECTED_CLASSES


def test_same_seed_same_clip_and_different_seed_different_clip() -> None:
    first, again, other = _render("circle", seed=1), _render("circle", seed=1), _render("circle", seed=2)
    for name in ("frames", "boxes", "acting", "actor_masks", "distractor_masks"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert first.interval == again.interval
    assert not np.array_equal(first.frames, other.frames)
    assert not np.array_equal(first.boxes, other.boxes)


@pytest.mark.parametrize("class_name", EXPECTED_CLASSES)
def test_ground_truth_matches_the_pixels(class_name: str) -> None:
    config = SynthConfig(noise=0.0)
    clip = _render(class_name, index=EXPECTED_CLASSES.index(class_name), config=config)
    N, S = config.num_frames, config.frame_size
    assert clip.frames.shape == (N, S, S, 3) and clip.frames.dtype == np.uint8
    assert clip.boxes.shape == (N, 4) and clip.actor_masks.shape == (N, S, S)
    idle, acting = actor_sprites(actor_size(S))
    for t in range(N):
        ys, xs = np.nonzero(clip.actor_masks[t])
        x1, y1, x2, y2 = clip.boxes[t]
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)  # tight, exclusive ends
        inside = clip.actor_masks[t, int(y1) : int(y2), int(x1) : int(x2)]
        # The pose: acting (the plus) exactly on the interval's frames, idle (the square) elsewhere.
        in_interval = clip.interval[0] <= t <= clip.interval[1]
        assert clip.acting[t] == in_interval
        np.testing.assert_array_equal(inside, acting if in_interval else idle)
        # Drawn last, with the clip's colour (no noise here).
        colours = clip.frames[t][clip.actor_masks[t]]  # (P, 3)
        np.testing.assert_array_equal(colours, np.broadcast_to(np.rint(clip.actor_color), colours.shape))


@pytest.mark.parametrize("class_name", EXPECTED_CLASSES)
def test_actor_moves_during_the_action_and_barely_outside_it(class_name: str) -> None:
    config = SynthConfig(idle_wander=0.0)
    for index in range(5):
        clip = _render(class_name, index=index, config=config)
        centres = _centres(clip.boxes)
        first, last = clip.interval
        assert 0.35 * config.num_frames - 1 <= last - first + 1 <= 0.6 * config.num_frames + 1
        acting = centres[first : last + 1]
        assert np.ptp(acting, axis=0).max() >= 0.2 * config.frame_size, "too little motion during the action"
        steps = np.abs(np.diff(centres, axis=0)).max(axis=1)  # (N-1,) largest per-axis step
        both_idle = ~clip.acting[:-1] & ~clip.acting[1:]
        assert np.all(steps[both_idle] <= 4), "idle frames move more than a fidget"


def test_idle_wander_walks_in_and_out_in_straight_lines() -> None:
    config = SynthConfig(idle_wander=0.5, noise=0.0)
    moved = 0
    for index in range(8):
        clip = _render("hop", index=index, config=config)
        centres = _centres(clip.boxes)
        first, last = clip.interval
        for segment in (centres[:first], centres[last + 1:]):
            if len(segment) >= 3:
                # a straight walk (+-1 px jitter and small fidgets): far from the anchor at one end
                moved += np.abs(segment[0] - segment[-1]).max() >= 0.15 * config.frame_size
        assert not clip.acting[:first].any() and not clip.acting[last + 1:].any()
    assert moved >= 4, "idle segments should mostly walk somewhere"


@pytest.mark.parametrize("difficulty", ["normal", "hard"])
def test_distractors_never_take_the_actors_colour(difficulty: str) -> None:
    for noise in (0.0, 6.0):
        config = SynthConfig(difficulty=difficulty, noise=noise)
        for index, class_name in enumerate(EXPECTED_CLASSES):
            clip = _render(class_name, index=index, config=config)
            assert clip.distractor_masks.any()
            assert not (clip.distractor_masks & clip.actor_masks).any()
            pixels = clip.frames[clip.distractor_masks].astype(float)  # (P, 3)
            distance = np.linalg.norm(pixels - clip.actor_color, axis=1)
            assert distance.min() > (60 if noise == 0 else 30), f"{difficulty} {class_name}: {distance.min():.1f}"


def test_difficulty_presets_and_explicit_overrides() -> None:
    assert (SynthConfig().num_distractors, SynthConfig().clutter) == (2, 12)
    assert SynthConfig(difficulty="easy").num_distractors == 0
    hard = SynthConfig(difficulty="hard")
    assert hard.num_distractors == 4 and hard.clutter > SynthConfig().clutter and hard.distractor_similarity > 0
    assert SynthConfig(difficulty="hard", num_distractors=1).num_distractors == 1
    assert SynthConfig.from_dict(hard.to_dict()) == hard
    assert not _render("hop", config=SynthConfig(difficulty="easy")).distractor_masks.any()
    with pytest.raises(ValueError, match=r"difficulty must be one of \('easy', 'normal', 'hard'\), got 'extreme'"):
        SynthConfig(difficulty="extreme")
    with pytest.raises(ValueError, match=r"frame_size must be even and >= 32, got 63"):
        SynthConfig(frame_size=63)


def test_one_frame_does_not_reveal_the_class() -> None:
    """The actor's mean position and its direction of travel carry no class information."""
    config = SynthConfig(num_distractors=0, clutter=0, noise=0.0)
    centres, rightwards = {}, []
    for class_name in EXPECTED_CLASSES:
        clips = [_render(class_name, seed=7, index=i, config=config) for i in range(40)]
        centres[class_name] = np.concatenate([_centres(clip.boxes) for clip in clips])  # (40 N, 2)
        if class_name == "walk_horizontal":
            # walks go there and back: the direction is that of the first half
            rightwards = [clip.boxes[(clip.interval[0] + clip.interval[1]) // 2, 0] > clip.boxes[clip.interval[0], 0]
                          for clip in clips]
    overall = np.concatenate(list(centres.values())).mean(axis=0)
    for class_name, values in centres.items():
        offset = np.abs(values.mean(axis=0) - overall).max()
        assert offset < 0.1 * config.frame_size, f"{class_name}: mean position off by {offset:.1f} px"
    assert 0.2 <= np.mean(rightwards) <= 0.8


def test_generated_directory_reads_back(generated_dataset: Path) -> None:
    dataset = load_dataset(generated_dataset)
    assert dataset.class_names == EXPECTED_CLASSES
    assert SynthConfig.from_dict(json.loads((generated_dataset / SYNTH_CONFIG_FILE).read_text())) == TINY
    for split in SPLITS:
        records = dataset.split(split)
        assert [r.label for r in records] == [EXPECTED_CLASSES[i % 8] for i in range(8)]
        assert [r.video.relative_to(dataset.root).as_posix() for r in records[:2]] == [
            f"videos/{split}/00000_walk_horizontal.mp4",
            f"videos/{split}/00001_walk_vertical.mp4",
        ]
        for record in records:
            assert record.interval is not None and sorted(record.boxes) == list(range(TINY.num_frames))
    record = dataset.split("val")[5]
    video = read_video(record.video)
    assert video.frames.shape == (TINY.num_frames, TINY.frame_size, TINY.frame_size, 3)
    assert video.fps == TINY.fps
    clip = render_clip(record.label, clip_rng(TINY, "val", 5), TINY)
    assert record.interval == clip.interval
    assert record.boxes[3] == tuple(clip.boxes[3])
    # H.264 (yuv420) drops much of the per-pixel noise at 32x32: about 8 on 0..255, against ~60 for a wrong frame
    assert np.abs(video.frames[0].astype(float) - clip.frames[0]).mean() < 12.0
    assert not list(generated_dataset.parent.glob("*.tmp-*")), "the staging directory was left behind"


def test_annotations_are_deterministic(generated_dataset: Path, tmp_path: Path) -> None:
    small = SynthConfig(seed=TINY.seed, train=8, val=0, test=0, num_frames=TINY.num_frames)
    again = generate_dataset(tmp_path / "again", small, progress=False)
    other_seed = SynthConfig(seed=TINY.seed + 1, train=8, val=0, test=0, num_frames=TINY.num_frames)
    other = generate_dataset(tmp_path / "other", other_seed, progress=False)
    lines = (generated_dataset / ANNOTATIONS_FILE).read_text().splitlines()
    train = [line for line in lines if '"split": "train"' in line]
    assert (again / ANNOTATIONS_FILE).read_text().splitlines() == train
    assert (other / ANNOTATIONS_FILE).read_text().splitlines() != train


def test_refuses_to_overwrite_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    out.mkdir()
    generate_dataset(out, SynthConfig(train=1, val=0, test=0, num_frames=8), progress=False)  # empty: fine
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"data exists and is not empty; pass --overwrite"):
        generate_dataset(out, SynthConfig(train=1, val=0, test=0, num_frames=8), progress=False)
    assert main(["--out", str(out), "--train", "1", "--val", "0", "--test", "0", "--num-frames", "8", "--quiet"]) == 2
    assert re.search(r"stanet data synth: error: .*data exists and is not empty", capsys.readouterr().err)
    assert (out / "keep.txt").exists()

    main(["--out", str(out), "--overwrite", "--quiet", "--train", "2", "--val", "1", "--test", "0",
          "--num-frames", "8", "--difficulty", "hard", "--num-distractors", "1"])  # fmt: skip
    assert "wrote 3 clips" in capsys.readouterr().out
    assert not (out / "keep.txt").exists()
    config = json.loads((out / SYNTH_CONFIG_FILE).read_text())
    assert (config["difficulty"], config["num_distractors"], config["clutter"]) == ("hard", 1, 24)
    assert len(load_dataset(out).records) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "staging or old directories left behind"


def test_overwrite_never_deletes_a_directory_it_did_not_write(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match=r"is not a synthetic dataset .*only replaces directories written by"):
        generate_dataset(precious, SynthConfig(train=1, val=0, test=0, num_frames=8), progress=False,
                         overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("class_name", EXPECTED_CLASSES)
def test_every_action_ends_where_it_started(class_name: str) -> None:
    """The idle frames (before and after) must not reveal the class: they all hang around one point."""
    config = SynthConfig(idle_wander=0.0, noise=0.0)
    for index in range(4):
        clip = _render(class_name, index=index, config=config)
        centres = _centres(clip.boxes)
        first, last = clip.interval
        assert np.abs(centres[first] - centres[last]).max() <= 3.0, (class_name, centres[first], centres[last])
