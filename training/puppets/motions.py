"""Where the puppets are in every frame (numpy only): the classes as closed paths of any orientation, the
actor's stand/stroll - act - stand/stroll track, and the distractors' motion.

A class is the SHAPE the actor traces during the action, whatever its orientation (a right angle at random,
plus up to ROTATION_JITTER), its direction of travel (forwards or backwards) or its place (uniform over the
region that keeps it inside the frame). Every path ends where it started (open ones, `pace` and `zigzag`,
are walked there and back), so the frames before and after the action, which all stay near that point, say
nothing about the class. Centres are continuous: the puppets are drawn anti-aliased at sub-pixel positions.

Every path function maps progress `u` in [0, 1] to offsets (x, y) in units of the frame side, centred on the
shape's bounding box; `start` in [0, 1) is where on a loop the traversal begins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PathFn = Callable[[np.ndarray, float], np.ndarray]

PACE_LENGTH = 0.5
ZIGZAG_LENGTH, ZIGZAG_AMPLITUDE, ZIGZAG_TEETH = 0.5, 0.07, 3
ORBIT_RADIUS = 0.18
EIGHT_WIDTH, EIGHT_HEIGHT = 0.5, 0.22
SQUARE_SIDE = 0.34
TRIANGLE_SIDE = 0.42
ROTATION_JITTER = 0.2  # radians
SIZE_JITTER = 0.1
ACTION_SHARE = (0.4, 0.6)  # of the clip
STAND_SWAY = 0.6  # pixels: the standing puppet's sway amplitude


def _there_and_back(u: np.ndarray) -> np.ndarray:
    return 1.0 - np.abs(2.0 * u - 1.0)  # 0 -> 1 -> 0


def _polygon(u: np.ndarray, start: float, corners: np.ndarray) -> np.ndarray:
    """A closed polygon's perimeter at constant speed, from `start` (a fraction of the perimeter)."""
    closed = np.vstack([corners, corners[:1]])  # (k + 1, 2)
    lengths = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    along = np.mod(u + start, 1.0) * lengths.sum()
    edge = np.minimum(np.searchsorted(np.cumsum(lengths), along, side="right"), len(corners) - 1)
    into = (along - np.concatenate([[0.0], np.cumsum(lengths)])[edge]) / lengths[edge]
    return closed[edge] + into[:, None] * (closed[edge + 1] - closed[edge])


def pace(u: np.ndarray, start: float) -> np.ndarray:
    x = (_there_and_back(u) - 0.5) * PACE_LENGTH
    return np.stack([x, np.zeros_like(x)], axis=1)


def zigzag(u: np.ndarray, start: float) -> np.ndarray:
    along = _there_and_back(u)  # in [0, 1]
    teeth = 2 / np.pi * np.arcsin(np.sin(2 * np.pi * ZIGZAG_TEETH * along))  # triangle wave in [-1, 1]
    return np.stack([(along - 0.5) * ZIGZAG_LENGTH, ZIGZAG_AMPLITUDE * teeth], axis=1)


def orbit(u: np.ndarray, start: float) -> np.ndarray:
    angle = 2 * np.pi * (u + start)
    return ORBIT_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def figure_eight(u: np.ndarray, start: float) -> np.ndarray:
    angle = 2 * np.pi * (u + start)
    return np.stack([EIGHT_WIDTH / 2 * np.sin(angle), EIGHT_HEIGHT / 2 * np.sin(2 * angle)], axis=1)


def square(u: np.ndarray, start: float) -> np.ndarray:
    half = SQUARE_SIDE / 2
    return _polygon(u, start, np.array([[-half, -half], [half, -half], [half, half], [-half, half]]))


def triangle(u: np.ndarray, start: float) -> np.ndarray:
    height = TRIANGLE_SIDE * np.sqrt(3) / 2
    corners = np.array([[-TRIANGLE_SIDE / 2, height / 2], [TRIANGLE_SIDE / 2, height / 2], [0.0, -height / 2]])
    return _polygon(u, start, corners)


# The classes in label order: classes.txt is written from this.
PATHS: dict[str, PathFn] = {
    "pace": pace,
    "zigzag": zigzag,
    "orbit": orbit,
    "figure_eight": figure_eight,
    "square": square,
    "triangle": triangle,
}
CLASS_NAMES: tuple[str, ...] = tuple(PATHS)


def traced_path(name: str, num_steps: int, rng: np.random.Generator, frame_size: int, margin: float,
                loops: float = 1.0) -> np.ndarray:
    """(num_steps, 2) centres (x, y) in pixels of a puppet tracing `name` `loops` times (whole loops end where
    they started), rotated, scaled and placed at random, its centres `margin` pixels inside the frame."""
    u = np.linspace(0.0, loops, num_steps)
    if rng.random() < 0.5:
        u = loops - u  # direction carries no information
    offsets = PATHS[name](np.mod(u, 1.0), rng.uniform(0.0, 1.0))  # (n, 2), frame sides
    angle = rng.integers(4) * np.pi / 2 + rng.uniform(-ROTATION_JITTER, ROTATION_JITTER)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offsets = offsets @ rotation.T * frame_size * rng.uniform(1 - SIZE_JITTER, 1 + SIZE_JITTER)
    offsets -= (offsets.min(axis=0) + offsets.max(axis=0)) / 2  # centred on the rotated bounding box
    extent = np.abs(offsets).max(axis=0)
    low, high = margin + extent, frame_size - 1 - margin - extent
    centre = np.where(low <= high, rng.uniform(np.minimum(low, high), np.maximum(low, high)), (frame_size - 1) / 2)
    return offsets + centre


def stand(anchor: np.ndarray, num_steps: int, rng: np.random.Generator) -> np.ndarray:
    """(num_steps, 2): standing at `anchor`, swaying smoothly by up to STAND_SWAY pixels."""
    t = np.arange(num_steps)[:, None]
    period, phase = rng.uniform(6.0, 14.0, size=2), rng.uniform(0.0, 2 * np.pi, size=2)
    return anchor + STAND_SWAY * np.sin(2 * np.pi * t / period + phase)


def stroll(anchor: np.ndarray, num_steps: int, rng: np.random.Generator, frame_size: int, margin: float,
           length: float) -> np.ndarray:
    """(num_steps, 2): walking from `anchor` (excluded) along a straight line of up to `length` frame sides in
    a random direction, kept inside the frame; standing at the anchor when `length` is 0."""
    if num_steps == 0 or length <= 0:
        return stand(anchor, num_steps, rng)
    angle = rng.uniform(0.0, 2 * np.pi)
    far = anchor + rng.uniform(0.5, 1.0) * length * frame_size * np.array([np.cos(angle), np.sin(angle)])
    far = np.clip(far, margin, frame_size - 1 - margin)
    u = np.arange(1, num_steps + 1)[:, None] / num_steps
    return anchor + u * (far - anchor)


@dataclass(frozen=True)
class PuppetTrack:
    """The actor in every frame.

    Attributes:
        centres: (N, 2) float pixel centres (x, y) of the puppet's box.
        interval: (first, last) action frames, inclusive.
        acting: (N,) bool, True exactly on the interval's frames (arms raised, waving).
        walking: (N,) bool, legs stepping: while acting, and while strolling.
    """

    centres: np.ndarray
    interval: tuple[int, int]
    acting: np.ndarray
    walking: np.ndarray


def actor_track(name: str, rng: np.random.Generator, num_frames: int, frame_size: int, margin: float,
                stroll_length: float) -> PuppetTrack:
    """Stand or stroll in, trace `name` over a random interval, stand or stroll off."""
    length = int(rng.integers(max(2, round(ACTION_SHARE[0] * num_frames)), round(ACTION_SHARE[1] * num_frames) + 1))
    first = int(rng.integers(0, num_frames - length + 1))
    last = first + length - 1
    path = traced_path(name, length, rng, frame_size, margin)
    strolls = rng.random(2) < 0.5  # each idle part strolls or stands
    before = (stroll(path[0], first, rng, frame_size, margin, stroll_length) if strolls[0]
              else stand(path[0], first, rng))[::-1]
    after = (stroll(path[-1], num_frames - 1 - last, rng, frame_size, margin, stroll_length) if strolls[1]
             else stand(path[-1], num_frames - 1 - last, rng))
    acting = np.zeros(num_frames, dtype=bool)
    acting[first : last + 1] = True
    walking = acting.copy()
    walking[:first] = strolls[0] and stroll_length > 0
    walking[last + 1:] = strolls[1] and stroll_length > 0
    centres = np.clip(np.concatenate([before, path, after]), margin, frame_size - 1 - margin)
    return PuppetTrack(centres=centres, interval=(first, last), acting=acting, walking=walking)


def bounce(num_steps: int, rng: np.random.Generator, frame_size: int, margin: float) -> np.ndarray:
    """(num_steps, 2): a ball at constant velocity, reflected off the frame's edges (a billiard path)."""
    low, high = margin, max(margin, frame_size - 1 - margin)
    speed = rng.uniform(0.02, 0.05) * frame_size
    angle = rng.uniform(0.0, 2 * np.pi)
    raw = rng.uniform(low, high, size=2) + np.arange(num_steps)[:, None] * speed * np.array([np.cos(angle),
                                                                                             np.sin(angle)])
    span = high - low
    if span <= 0:
        return np.full((num_steps, 2), low)
    folded = np.mod(raw - low, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)  # reflect: a triangle wave per axis
