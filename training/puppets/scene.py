"""Drawing one puppets clip (numpy only, no encoding): the backdrop, the distractors, the actor last.

The actor wears the one ACTOR_OUTFIT (dimmed per clip); other puppets wear other clothes and trace the
classes' paths all clip long with arm-raising intervals of their own; balls bounce. Ground truth: the
actor's coverage per pixel, and its box: the tight box of the pixels it covers at least half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.puppets.backdrop import render_backdrop
from training.puppets.config import PuppetsConfig
from training.puppets.figure import STEP_PERIOD, Outfit, draw_ball, draw_puppet
from training.puppets.motions import ACTION_SHARE, CLASS_NAMES, actor_track, bounce, traced_path
from training.synth.render import tight_boxes

ACTOR_OUTFIT = Outfit(skin=np.array([240.0, 200.0, 165.0]), shirt=np.array([235.0, 95.0, 35.0]),
                      trousers=np.array([35.0, 45.0, 120.0]))
ACTOR_BRIGHTNESS = (0.9, 1.0)
OTHER_SHIRTS = np.array([[60.0, 170.0, 225.0], [150.0, 80.0, 200.0], [230.0, 230.0, 230.0], [60.0, 190.0, 90.0],
                         [240.0, 225.0, 70.0]])  # none near the actor's orange
OTHER_SKINS = np.array([[240.0, 200.0, 165.0], [200.0, 150.0, 110.0], [140.0, 95.0, 65.0], [90.0, 60.0, 45.0]])
BALL_COLOURS = np.array([[220.0, 40.0, 130.0], [60.0, 120.0, 230.0], [240.0, 240.0, 240.0], [250.0, 205.0, 40.0],
                         [90.0, 200.0, 200.0]])
BALL_RADIUS = (0.05, 0.08)  # of the frame side
OTHER_HEIGHT = (0.8, 1.1)  # other puppets' height, relative to the actor's


@dataclass(frozen=True)
class PuppetClip:
    """One clip, with its ground truth.

    Attributes:
        frames: (N, H, W, 3) uint8 RGB.
        boxes: (N, 4) float (x1, y1, x2, y2), x2/y2 exclusive: the tight box of actor_coverage >= 0.5.
        interval: (first, last) action frames, inclusive.
        acting: (N,) bool, arms raised: True exactly inside the interval.
        actor_coverage: (N, H, W) float in [0, 1], how much of each pixel the actor covers (drawn last).
        distractor_coverage: (N, H, W) float in [0, 1], the same for everything else that moves.
        outfit: the actor's colours in this clip.
    """

    frames: np.ndarray
    boxes: np.ndarray
    interval: tuple[int, int]
    acting: np.ndarray
    actor_coverage: np.ndarray
    distractor_coverage: np.ndarray
    outfit: Outfit


def _phases(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    return rng.uniform(0.0, 2 * np.pi) + 2 * np.pi * np.arange(num_frames) / STEP_PERIOD


def render_puppet_clip(class_name: str, rng: np.random.Generator, config: PuppetsConfig) -> PuppetClip:
    """Draw one clip of `class_name`: the actor stands or strolls, traces the class's path over a random
    interval with its arms raised, stands or strolls again, among `config.num_distractors` moving things."""
    if class_name not in CLASS_NAMES:
        raise ValueError(f"unknown class {class_name!r}, expected one of {CLASS_NAMES}")
    N, S = config.num_frames, config.frame_size
    height = config.figure_scale * S
    margin = 0.55 * height  # the centre's distance from the frame's edges that keeps the puppet inside
    track = actor_track(class_name, rng, N, S, margin, config.idle_stroll)
    dim = rng.uniform(*ACTOR_BRIGHTNESS)
    outfit = Outfit(ACTOR_OUTFIT.skin * dim, ACTOR_OUTFIT.shirt * dim, ACTOR_OUTFIT.trousers * dim)
    actor_phases = _phases(rng, N)
    frames = np.array(render_backdrop(rng, S, N, config.pan), dtype=np.float64)  # (N, S, S, 3), writable

    distractor_coverage = np.zeros((N, S, S))
    for _ in range(config.num_distractors):
        if rng.random() < 0.5:
            radius = rng.uniform(*BALL_RADIUS) * S
            colour = BALL_COLOURS[rng.integers(len(BALL_COLOURS))] * rng.uniform(0.85, 1.0)
            for t, centre in enumerate(bounce(N, rng, S, radius)):
                distractor_coverage[t] = np.maximum(distractor_coverage[t], draw_ball(frames[t], centre, radius, colour))
            continue
        other_height = height * rng.uniform(*OTHER_HEIGHT)
        other = Outfit(skin=OTHER_SKINS[rng.integers(len(OTHER_SKINS))],
                       shirt=OTHER_SHIRTS[rng.integers(len(OTHER_SHIRTS))] * rng.uniform(0.85, 1.0),
                       trousers=rng.uniform(20.0, 90.0, size=3))
        path = CLASS_NAMES[rng.integers(len(CLASS_NAMES))]  # class-like motion, all clip long
        centres = traced_path(path, N, rng, S, 0.55 * other_height, loops=rng.uniform(1.0, 2.0))
        length = int(round(rng.uniform(*ACTION_SHARE) * N))
        first = int(rng.integers(0, N - length + 1))
        for t, (centre, phase) in enumerate(zip(centres, _phases(rng, N))):
            covered = draw_puppet(frames[t], centre, other_height, other, acting=first <= t < first + length,
                                  walking=True, phase=phase)
            distractor_coverage[t] = np.maximum(distractor_coverage[t], covered)

    actor_coverage = np.zeros((N, S, S))
    for t in range(N):
        actor_coverage[t] = draw_puppet(frames[t], track.centres[t], height, outfit, acting=bool(track.acting[t]),
                                        walking=bool(track.walking[t]), phase=actor_phases[t])
    distractor_coverage *= 1 - actor_coverage  # the actor is drawn last: what it covers is its own

    if config.noise > 0:
        frames += rng.standard_normal(frames.shape) * config.noise
    return PuppetClip(
        frames=np.clip(np.rint(frames), 0, 255).astype(np.uint8),
        boxes=tight_boxes(actor_coverage >= 0.5),
        interval=track.interval,
        acting=track.acting,
        actor_coverage=actor_coverage,
        distractor_coverage=distractor_coverage,
        outfit=outfit,
    )
