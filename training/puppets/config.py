"""The puppets benchmark's one configuration."""

from __future__ import annotations

from dataclasses import dataclass

from training.synth.config import MAX_PAN, GeneratedDatasetConfig

FIGURE_SCALE_RANGE = (0.15, 0.45)
MAX_DISTRACTORS = 8


@dataclass(frozen=True)
class PuppetsConfig(GeneratedDatasetConfig):
    """How many clips, how big, how busy.

    Attributes:
        seed: clip i of split s is drawn from `np.random.default_rng([seed, s, i])`.
        train, val, test: clips per split; classes are assigned round-robin, so balanced.
        frame_size: square frame side in pixels (even, for H.264).
        num_frames: frames per clip.
        fps: frame rate written into the videos.
        figure_scale: the actor's height as a fraction of the frame side (other figures take 0.8-1.1 of it).
        num_distractors: moving things that are not the actor: figures in other clothes that trace the
            classes' paths with poses of their own, and shaded balls that bounce; half of each, at random.
        idle_stroll: before and after the action the actor strolls (legs stepping, arms down) along a straight
            line of up to this fraction of the frame into and out of the path's start point; 0 = it stands.
        pan: a panning camera: the backdrop drifts at up to this many pixels per frame (sub-pixel, exact: the
            backdrop is periodic and shifted in the Fourier domain); 0 = a still camera.
        noise: std of the per-pixel, per-frame gaussian noise, on the 0..255 scale.
        crf: H.264 quality.
    """

    seed: int = 0
    train: int = 720
    val: int = 120
    test: int = 240
    frame_size: int = 64
    num_frames: int = 32
    fps: int = 10
    figure_scale: float = 0.3
    num_distractors: int = 3
    idle_stroll: float = 0.3
    pan: float = 0.0
    noise: float = 4.0
    crf: int = 12

    def __post_init__(self) -> None:
        problems = self.shared_problems()
        if not FIGURE_SCALE_RANGE[0] <= self.figure_scale <= FIGURE_SCALE_RANGE[1]:
            problems.append(f"figure_scale must be in [{FIGURE_SCALE_RANGE[0]}, {FIGURE_SCALE_RANGE[1]}] (a fraction "
                            f"of the frame side), got {self.figure_scale}")
        if not 0 <= self.num_distractors <= MAX_DISTRACTORS:
            problems.append(f"num_distractors must be in [0, {MAX_DISTRACTORS}], got {self.num_distractors}")
        if not 0.0 <= self.idle_stroll <= 1.0:
            problems.append(f"idle_stroll must be in [0, 1], got {self.idle_stroll}")
        if not 0.0 <= self.pan <= MAX_PAN:
            problems.append(f"pan must be in [0, {MAX_PAN:g}] pixels per frame, got {self.pan}")
        if problems:
            raise ValueError("invalid PuppetsConfig: " + "; ".join(problems))
