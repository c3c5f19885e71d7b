"""Drawing one synthetic untrimmed video (numpy only, no encoding): tens of seconds in which the actor idles,
performs 1 to several actions (each as long as a trimmed clip's action) with idle gaps between them, among
distractors that move all video long; the ground truth is every action's segment and the actor's box on
every frame.

It reuses the trimmed generator's look (training.synth.render: background, clutter, distractors, the
actor's two poses) and motion (training.synth.trajectories: class paths, idle fidgeting). Between two
actions the idle actor walks from where the last one ended to where the next one starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from training.synth.background import render_background
from training.synth.config import SynthConfig
from training.synth.render import (ACTOR_BRIGHTNESS, ACTOR_COLOR, DISTRACTOR_COLORS, actor_size, actor_sprites,
                                   draw_frames, make_distractors, tight_boxes)
from training.synth.trajectories import (ACTION_LENGTH, CLASS_NAMES, CLOSED_SHAPES, IDLE_MARGIN, idle_offsets,
                                         idle_walk, place_path)


@dataclass(frozen=True)
class RenderedVideo:
    """One untrimmed video, with its ground truth.

    Attributes:
        frames: (N, H, W, 3) uint8 RGB.
        boxes: (N, 4) float (x1, y1, x2, y2): tight box of the actor's pixels, x2/y2 exclusive.
        segments: (class name, first, last) of every action, frames inclusive, in time order.
        acting: (N,) bool, True exactly inside the segments.
    """

    frames: np.ndarray
    boxes: np.ndarray
    segments: tuple[tuple[str, int, int], ...]
    acting: np.ndarray


def action_lengths(config: SynthConfig) -> tuple[int, int]:
    """Shortest and longest action, in frames: the trimmed clips' (ACTION_LENGTH of `num_frames`)."""
    shortest = max(2, int(round(ACTION_LENGTH[0] * config.num_frames)))
    return shortest, max(shortest, int(round(ACTION_LENGTH[1] * config.num_frames)))


def untrimmed_frames(config: SynthConfig) -> int:
    """Frames of every untrimmed video: `untrimmed_seconds` at `fps`."""
    return int(round(config.untrimmed_seconds * config.fps))


def min_gap_frames(config: SynthConfig) -> int:
    """The shortest idle gap before, between and after actions: `untrimmed_min_gap` clip lengths."""
    return int(round(config.untrimmed_min_gap * config.num_frames))


def layout(rng: np.random.Generator, config: SynthConfig) -> list[tuple[int, int]]:
    """(first, last) of each action: 1 to `untrimmed_max_actions` of them, each as long as a trimmed clip's
    action, with idle gaps of at least `min_gap_frames` before, between and after them (the spare idle time
    spread at random)."""
    N, gap = untrimmed_frames(config), min_gap_frames(config)
    shortest, longest = action_lengths(config)
    count = int(rng.integers(config.untrimmed_min_actions, config.untrimmed_max_actions + 1))
    lengths = rng.integers(shortest, longest + 1, size=count)
    spare = N - int(lengths.sum()) - (count + 1) * gap
    extra = rng.multinomial(spare, rng.dirichlet(np.ones(count + 1)))  # (count + 1,) spare frames per gap
    segments, t = [], 0
    for k in range(count):
        t += gap + int(extra[k])
        segments.append((t, t + int(lengths[k]) - 1))
        t += int(lengths[k])
    return segments


def untrimmed_track(classes: list[str], segments: list[tuple[int, int]], rng: np.random.Generator,
                    config: SynthConfig, half: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres (N, 2) int, acting (N,) bool): the class paths over the segments, idle walks between them."""
    N, S = untrimmed_frames(config), config.frame_size
    pieces, previous_end, position = [], None, 0
    paths = []
    for name, (first, last) in zip(classes, segments):
        cycles = 1.0 if name in CLOSED_SHAPES else 2.0  # every action ends where it started (render.actor_track)
        paths.append(place_path(name, last - first + 1, rng, S, half + IDLE_MARGIN, cycles=cycles))
    for path, (first, last) in zip(paths, segments):
        idle = first - position
        if previous_end is None:  # walk in, as a trimmed clip's actor does
            walk = idle_walk(path[0], idle, rng, S, half, config.idle_wander)[::-1]
        else:  # from where the last action ended to where this one starts
            u = np.arange(1, idle + 1)[:, None] / (idle + 1)
            walk = previous_end + u * (path[0] - previous_end)
        pieces += [walk + idle_offsets(idle, rng)[::-1], path]
        previous_end, position = path[-1], last + 1
    tail = N - position
    pieces.append(idle_walk(previous_end, tail, rng, S, half, config.idle_wander) + idle_offsets(tail, rng))
    centres = np.clip(np.rint(np.concatenate(pieces)).astype(np.int64), half, S - 1 - half)  # (N, 2)
    acting = np.zeros(N, dtype=bool)
    for first, last in segments:
        acting[first:last + 1] = True
    return centres, acting


def render_untrimmed(rng: np.random.Generator, config: SynthConfig) -> RenderedVideo:
    """Draw one untrimmed video of `config.untrimmed_seconds`: actions of random classes (repeats allowed;
    segments never overlap) with idle gaps, distractors all video long at a trimmed clip's speed."""
    N, S = untrimmed_frames(config), config.frame_size
    # Background, pan and look-alikes over N frames (no untrimmed counts: nothing to check about them there).
    long_config = dataclasses.replace(config, num_frames=N, untrimmed_train=0, untrimmed_val=0, untrimmed_test=0)
    sprite_size = actor_size(S, config.actor_scale)
    half = sprite_size // 2
    segments = layout(rng, config)
    classes = [CLASS_NAMES[int(i)] for i in rng.integers(len(CLASS_NAMES), size=len(segments))]
    centres, acting = untrimmed_track(classes, segments, rng, config, half)
    actor_color = ACTOR_COLOR * rng.uniform(*ACTOR_BRIGHTNESS)
    background = render_background(rng, long_config, np.vstack([actor_color, DISTRACTOR_COLORS]))  # (N, H, W, 3)
    sprites = actor_sprites(sprite_size)
    distractors = make_distractors(rng, long_config, sprites, actor_color, N, cycles_scale=N / config.num_frames)
    frames, actor_masks, _ = draw_frames(rng, config, background, distractors, centres, acting, sprites,
                                         actor_color)
    return RenderedVideo(frames=frames, boxes=tight_boxes(actor_masks),
                         segments=tuple((name, first, last) for name, (first, last) in zip(classes, segments)),
                         acting=acting)
