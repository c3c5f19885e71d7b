"""The synthetic generator's options for the generalization suite (background, camera pan, distractor look,
actor scale, large frames and long clips): ground truth stays exact under each, each does what it says, bad
values are rejected with messages naming the field and the expected range, and the defaults keep today's
sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stanet.dataset_format import load_dataset
from stanet.video import read_video
from training.synth import CLASS_NAMES, SynthConfig, generate_dataset, main, render_clip
from training.synth.background import pan_offsets
from training.synth.generate import SYNTH_CONFIG_FILE, clip_rng
from training.synth.render import actor_size, actor_sprites
from training.synth.trajectories import wander_path

OPTIONS = {
    "flat": dict(background="flat"),
    "texture": dict(background="texture"),
    "texture_pan": dict(background="texture", pan=2.0),
    "gradient_pan": dict(pan=1.5),
    "lookalike": dict(distractor_look="actor", difficulty="hard"),
    "small_actor_128_48": dict(frame_size=128, num_frames=48, actor_scale=0.08, background="texture"),
    "large_actor": dict(frame_size=64, actor_scale=0.3, pan=1.0),
}


def _render(config: SynthConfig, class_name: str = "circle", index: int = 0):
    return render_clip(class_name, clip_rng(config, "train", index), config)


def test_default_actor_size_is_the_historical_one() -> None:
    for size in range(32, 257, 2):
        assert actor_size(size) == actor_size(size, SynthConfig().actor_scale) == 2 * round(size / 12) + 1


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_ground_truth_is_exact_under_every_option(name: str) -> None:
    config = SynthConfig(noise=0.0, **OPTIONS[name])
    N, S = config.num_frames, config.frame_size
    idle, acting = actor_sprites(actor_size(S, config.actor_scale))
    for index, class_name in enumerate(CLASS_NAMES[:3]):
        clip = _render(config, class_name, index)
        assert clip.frames.shape == (N, S, S, 3) and clip.boxes.shape == (N, 4)
        for t in range(N):
            ys, xs = np.nonzero(clip.actor_masks[t])
            x1, y1, x2, y2 = clip.boxes[t]
            assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            inside = clip.actor_masks[t, int(y1):int(y2), int(x1):int(x2)]
            in_interval = clip.interval[0] <= t <= clip.interval[1]
            assert clip.acting[t] == in_interval
            if inside.shape == idle.shape:  # not cut by the frame's edge
                np.testing.assert_array_equal(inside, acting if in_interval else idle)
            colours = clip.frames[t][clip.actor_masks[t]]  # drawn last, in the clip's colour
            np.testing.assert_array_equal(colours, np.broadcast_to(np.rint(clip.actor_color), colours.shape))


def test_flat_background_is_one_colour_without_clutter() -> None:
    config = SynthConfig(background="flat", noise=0.0)
    assert config.clutter == 0
    clip = _render(config)
    background = clip.frames[~(clip.actor_masks | clip.distractor_masks)]  # (P, 3)
    assert len(np.unique(background, axis=0)) == 1


def _background_stats(config: SynthConfig, clips: int = 16) -> tuple[float, float]:
    """Mean abs difference of horizontal neighbours off the actor, and the mean fraction of background pixels
    at least 0.8 times as bright as the actor."""
    detail, bright = [], []
    for index in range(clips):
        clip = _render(config, index=index)
        frame, mask = clip.frames[0].astype(float), clip.actor_masks[0]
        step = np.abs(np.diff(frame, axis=1)).mean(axis=2)  # (H, W - 1)
        detail.append(step[~(mask[:, 1:] | mask[:, :-1])].mean())
        bright.append((frame[~mask].mean(axis=1) >= 0.8 * clip.actor_color.mean()).mean())
    return float(np.mean(detail)), float(np.mean(bright))


def test_texture_has_fine_detail_and_the_objects_brightness() -> None:
    plain = SynthConfig(num_distractors=0, noise=0.0, frame_size=64)
    gradient_detail, gradient_bright = _background_stats(plain)
    texture_detail, texture_bright = _background_stats(SynthConfig(num_distractors=0, noise=0.0, frame_size=64,
                                                                   background="texture", clutter=0))
    assert texture_detail > 4 * gradient_detail and texture_detail > 5.0, (texture_detail, gradient_detail)
    # the gradient is darker than any object, so brightness finds the actor; on a texture it does not
    assert gradient_bright < 0.05 and texture_bright > 0.1, (gradient_bright, texture_bright)


@pytest.mark.parametrize("background", ["gradient", "texture"])
def test_pan_moves_every_background_pixel_and_a_still_camera_none(background: str) -> None:
    def moving_fraction(pan: float) -> float:
        clip = _render(SynthConfig(background=background, pan=pan, noise=0.0, num_distractors=0, frame_size=64))
        still = ~(clip.actor_masks[1:] | clip.actor_masks[:-1])  # (N-1, H, W): background in both frames
        changed = np.abs(np.diff(clip.frames.astype(float), axis=0)).max(axis=3) > 0
        return float(changed[still].mean())

    assert moving_fraction(0.0) == 0.0
    # a smooth gradient moved by a pixel or two changes by less than one grey level in much of the frame
    assert moving_fraction(2.0) > (0.2 if background == "gradient" else 0.9)


def test_pan_drift_is_smooth_and_bounded() -> None:
    rng = np.random.default_rng(0)
    for pan in (0.5, 1.5, 4.0):
        offsets = pan_offsets(rng, 48, pan)  # (N, 2)
        steps = np.diff(offsets, axis=0)
        speed = np.linalg.norm(steps, axis=1)
        assert speed.max() <= pan + 1e-9 and speed.min() >= 0.5 * pan - 1e-9
        assert np.abs(np.diff(steps, axis=0)).max() < 0.2 * pan  # no jerks: the direction swings slowly
        np.testing.assert_allclose(offsets.min(axis=0), -offsets.max(axis=0))  # centred


def test_lookalike_distractors_look_exactly_like_the_actor() -> None:
    config = SynthConfig(distractor_look="actor", num_distractors=1, clutter=0, background="flat", noise=0.0,
                         frame_size=64)
    idle, acting = actor_sprites(actor_size(64))
    poses = set()
    for index in range(4):
        clip = _render(config, index=index)
        assert clip.distractor_masks.any()
        colours = clip.frames[clip.distractor_masks]
        np.testing.assert_array_equal(colours, np.broadcast_to(np.rint(clip.actor_color), colours.shape))
        for t in range(config.num_frames):
            mask = clip.distractor_masks[t]
            ys, xs = np.nonzero(mask)
            if not len(ys) or (clip.actor_masks[t].any() and _near(clip.actor_masks[t], mask, idle.shape[0])):
                continue
            crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            if crop.shape == idle.shape:
                poses.add("acting" if np.array_equal(crop, acting) else "idle" if np.array_equal(crop, idle) else "?")
    assert poses == {"idle", "acting"}, poses


def _near(a: np.ndarray, b: np.ndarray, size: int) -> bool:
    ya, xa = np.nonzero(a)
    yb, xb = np.nonzero(b)
    return abs(ya.mean() - yb.mean()) < 2 * size and abs(xa.mean() - xb.mean()) < 2 * size


def test_wander_paths_move_all_clip_long_inside_the_frame_and_never_straight() -> None:
    for seed in range(20):
        path = wander_path(32, np.random.default_rng(seed), 64, 5)
        assert path.min() >= 5 and path.max() <= 64 - 1 - 5
        steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
        assert np.mean(steps > 0.5) > 0.9  # moving all clip long (a bounce off an edge shortens a step)
        heading = np.unwrap(np.arctan2(*np.diff(path, axis=0).T[::-1]))
        assert np.ptp(np.diff(heading)) > 0.05  # the heading weaves: no straight line


def test_actor_scale_sets_the_actor_size() -> None:
    for size, scale, side in ((128, 0.08, 11), (64, 0.3, 21), (32, 0.05, 3)):
        clip = _render(SynthConfig(frame_size=size, actor_scale=scale, noise=0.0))
        widths = clip.boxes[:, 2] - clip.boxes[:, 0]
        assert widths.max() == side == actor_size(size, scale)


def test_one_frame_does_not_reveal_the_class_under_the_new_options() -> None:
    config = SynthConfig(background="texture", pan=1.5, distractor_look="actor", noise=0.0, frame_size=64)
    centres = {}
    for class_name in CLASS_NAMES:
        boxes = np.concatenate([_render(config, class_name, i).boxes for i in range(16)])
        centres[class_name] = np.stack([boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]], axis=1) / 2
    overall = np.concatenate(list(centres.values())).mean(axis=0)
    for class_name, values in centres.items():
        assert np.abs(values.mean(axis=0) - overall).max() < 0.1 * config.frame_size, class_name


@pytest.mark.parametrize("values, message", [
    (dict(background="stripes"), r"background must be one of \('gradient', 'flat', 'texture'\), got 'stripes'"),
    (dict(pan=-1.0), r"pan must be in \[0, 8\] pixels per frame, got -1.0"),
    (dict(pan=9.0), r"pan must be in \[0, 8\] pixels per frame, got 9.0"),
    (dict(distractor_look="twin"), r"distractor_look must be one of \('other', 'actor'\), got 'twin'"),
    (dict(actor_scale=0.5), r"actor_scale must be in \[0.05, 0.35\] \(a fraction of the frame side\), got 0.5"),
    (dict(actor_scale=0.01), r"actor_scale must be in \[0.05, 0.35\]"),
    (dict(background="flat", clutter=3), r"clutter must be 0 with background 'flat' \(one colour\), got 3"),
    (dict(background="flat", pan=1.0), r"pan must be 0 with background 'flat'"),
])  # fmt: skip
def test_bad_values_are_rejected_with_the_field_and_range(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SynthConfig(**values)


def test_cli_flags_reach_the_config_and_synth_config_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    argv = ["--out", str(out), "--quiet", "--train", "8", "--val", "8", "--test", "0", "--frame-size", "128",
            "--num-frames", "48", "--background", "texture", "--pan", "1.5", "--distractor-look", "actor",
            "--actor-scale", "0.08"]
    assert main(argv) == 0
    written = json.loads((out / SYNTH_CONFIG_FILE).read_text())
    assert {k: written[k] for k in ("background", "pan", "distractor_look", "actor_scale", "frame_size",
                                    "num_frames")} == dict(background="texture", pan=1.5, distractor_look="actor",
                                                           actor_scale=0.08, frame_size=128, num_frames=48)
    config = SynthConfig.from_dict(written)
    dataset = load_dataset(out)
    record = dataset.split("val")[3]
    video = read_video(record.video)
    assert video.frames.shape == (48, 128, 128, 3)
    clip = render_clip(record.label, clip_rng(config, "val", 3), config)
    assert record.interval == clip.interval and record.boxes[40] == tuple(clip.boxes[40])
    assert main(["--out", str(tmp_path / "bad"), "--quiet", "--pan", "20"]) == 2
    assert "stanet data synth: error: invalid SynthConfig: pan must be in [0, 8]" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_small_frames_and_short_clips_still_work(tmp_path: Path) -> None:
    config = SynthConfig(train=8, val=0, test=0, frame_size=32, num_frames=16, background="texture", pan=1.0,
                         distractor_look="actor")
    dataset = load_dataset(generate_dataset(tmp_path / "data", config, progress=False))
    assert read_video(dataset.split("train")[0].video).frames.shape == (16, 32, 32, 3)
