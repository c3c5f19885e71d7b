"""Where things are in every frame: the action classes as trajectory shapes, their placement, and the actor's
idle-act-idle track (numpy only).

A class is the SHAPE of the path the actor traverses during the action: not its direction (each path is
traversed forwards or backwards at random) and not its place in the frame (the path's centre is uniform in
the region that keeps it inside the frame, so a single frame's position says nothing about the class).

Every shape function maps progress `u` in [0, 1] to offsets (x, y) in pixels from the centre of the shape's
bounding box; the randomness it takes (an orientation, a starting angle) is drawn once per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ShapeFn = Callable[[np.ndarray, np.random.Generator, int], np.ndarray]

WALK_LENGTH = 0.55  # straight walks, as a fraction of the frame side
DIAGONAL_HALF_EXTENT = 0.2  # per axis: a diagonal walk about as long as a straight one
CIRCLE_RADIUS = 0.2
OSCILLATION_AMPLITUDE = 0.15  # hop and shuffle: peak offset from the centre
OSCILLATION_CYCLES = 2
CORNER_HALF_EXTENT = 0.2  # each leg of the L is 2x this
SCALE_JITTER = 0.1  # every path is scaled by uniform(1 - j, 1 + j)

IDLE_MARGIN = 4  # pixels kept free around a path for the idle fidgeting
IDLE_DRIFT_LIMIT = 3  # fidget steps wander at most this far from the anchor, per axis
IDLE_FIDGET_PROBABILITY = 0.2  # chance per frame of a fidget step of up to 2 pixels per axis
ACTION_LENGTH = (0.35, 0.6)  # action interval length, as a fraction of the clip
WANDER_SPEED = (0.02, 0.045)  # look-alike distractors: fraction of the frame side per frame
WANDER_WEAVE = (0.6, 1.4)  # radians: amplitude of their heading's swing
WANDER_PERIOD = (8.0, 20.0)  # frames per swing


def _line(u: np.ndarray, start: tuple[float, float], end: tuple[float, float]) -> np.ndarray:
    start_xy, end_xy = np.asarray(start), np.asarray(end)
    return start_xy + u[:, None] * (end_xy - start_xy)  # (n, 2)


def walk_horizontal(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    half = WALK_LENGTH * frame_size / 2
    return _line(u, (-half, 0.0), (half, 0.0))


def walk_vertical(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    half = WALK_LENGTH * frame_size / 2
    return _line(u, (0.0, -half), (0.0, half))


def walk_diagonal_down(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    half = DIAGONAL_HALF_EXTENT * frame_size  # "\": y grows downwards, so top-left to bottom-right
    return _line(u, (-half, -half), (half, half))


def walk_diagonal_up(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    half = DIAGONAL_HALF_EXTENT * frame_size  # "/": bottom-left to top-right
    return _line(u, (-half, half), (half, -half))


def circle(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    radius = CIRCLE_RADIUS * frame_size
    angle = rng.uniform(0.0, 2 * np.pi) + 2 * np.pi * u  # one full loop from a random starting point
    return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def hop(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    y = OSCILLATION_AMPLITUDE * frame_size * np.sin(2 * np.pi * OSCILLATION_CYCLES * u)
    return np.stack([np.zeros_like(y), y], axis=1)


def shuffle(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    x = OSCILLATION_AMPLITUDE * frame_size * np.sin(2 * np.pi * OSCILLATION_CYCLES * u)
    return np.stack([x, np.zeros_like(x)], axis=1)


def corner(u: np.ndarray, rng: np.random.Generator, frame_size: int) -> np.ndarray:
    half = CORNER_HALF_EXTENT * frame_size
    # A horizontal leg then a vertical one; mirroring in x and y gives the L's four orientations (and
    # traversing it backwards, done by the caller, puts the vertical leg first).
    first = _line(np.clip(2 * u, 0, 1), (-half, -half), (half, -half))
    second = _line(np.clip(2 * u - 1, 0, 1), (half, -half), (half, half))
    path = np.where((u <= 0.5)[:, None], first, second)
    return path * rng.choice([-1.0, 1.0], size=2)


# The classes in label order: classes.txt is written from this.
SHAPES: dict[str, ShapeFn] = {
    "walk_horizontal": walk_horizontal,
    "walk_vertical": walk_vertical,
    "walk_diagonal_down": walk_diagonal_down,
    "walk_diagonal_up": walk_diagonal_up,
    "circle": circle,
    "hop": hop,
    "shuffle": shuffle,
    "corner": corner,
}
CLASS_NAMES: tuple[str, ...] = tuple(SHAPES)
CLOSED_SHAPES = frozenset({"circle", "hop", "shuffle"})  # start and end at the same point


def place_path(
    shape: str, num_steps: int, rng: np.random.Generator, frame_size: int, margin: float, *, cycles: float = 1.0
) -> np.ndarray:
    """Centres (x, y) of an object traversing `shape` over `num_steps` frames, somewhere in the frame.

    Args:
        shape: a name in SHAPES.
        num_steps: frames (>= 2).
        rng: the clip's generator.
        frame_size: frame side in pixels.
        margin: pixels every centre keeps from the frame's edges (the object's half size, plus room).
        cycles: traversals; beyond 1 the path is run back and forth (ping-pong), for distractors that
            move all clip long.

    Returns:
        (num_steps, 2) float centres in pixel coordinates (pixel k spans [k - 0.5, k + 0.5]).
    """
    progress = np.linspace(0.0, cycles, num_steps)
    progress = 1.0 - np.abs(np.mod(progress, 2.0) - 1.0)  # 0 -> 1 -> 0 -> ...
    if rng.random() < 0.5:
        progress = 1.0 - progress  # direction carries no information
    offsets = SHAPES[shape](progress, rng, frame_size) * rng.uniform(1 - SCALE_JITTER, 1 + SCALE_JITTER)
    extent = np.abs(offsets).max(axis=0)  # (2,): the shapes are centred, so the region is symmetric
    low = margin + extent
    high = frame_size - 1 - margin - extent
    centre = np.where(low <= high, rng.uniform(np.minimum(low, high), np.maximum(low, high)), (frame_size - 1) / 2)
    return offsets + centre


def idle_offsets(num_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Integer offsets (num_steps, 2) of an idling object from its anchor: +-1 pixel jitter every frame, plus
    occasional fidget steps that wander at most IDLE_DRIFT_LIMIT pixels, starting from the anchor."""
    fidget = rng.random(num_steps) < IDLE_FIDGET_PROBABILITY
    steps = rng.integers(-2, 3, size=(num_steps, 2))
    drift = np.zeros((num_steps, 2), dtype=np.int64)
    position = np.zeros(2, dtype=np.int64)
    for t in range(num_steps):
        if fidget[t]:
            position = np.clip(position + steps[t], -IDLE_DRIFT_LIMIT, IDLE_DRIFT_LIMIT)
        drift[t] = position
    return drift + rng.integers(-1, 2, size=(num_steps, 2))


@dataclass(frozen=True)
class ActorTrack:
    """Where the actor is and what it does in every frame.

    Attributes:
        centres: (N, 2) integer pixel centres (x, y).
        interval: (first, last) action frames, inclusive.
        acting: (N,) bool, True exactly on the interval's frames.
    """

    centres: np.ndarray
    interval: tuple[int, int]
    acting: np.ndarray


def idle_walk(anchor: np.ndarray, num_steps: int, rng: np.random.Generator, frame_size: int, half_size: int,
              wander: float) -> np.ndarray:
    """(num_steps, 2) centres walking in a straight line away from `anchor` (excluded), in a random direction,
    up to `wander` * frame_size long, kept inside the frame; all at `anchor` when wander is 0."""
    if num_steps == 0 or wander <= 0:
        return np.repeat(anchor[None], num_steps, axis=0)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    length = rng.uniform(0.5, 1.0) * wander * frame_size
    far = np.clip(anchor + length * np.array([np.cos(angle), np.sin(angle)]), half_size,
                  frame_size - 1 - half_size)
    u = np.arange(1, num_steps + 1)[:, None] / num_steps  # (num_steps, 1), ends at the far point
    return anchor + u * (far - anchor)


def action_interval(rng: np.random.Generator, num_frames: int) -> tuple[int, int]:
    """(first, last) frames, inclusive, of an action ACTION_LENGTH of the clip long, anywhere in the clip."""
    shortest = max(2, int(round(ACTION_LENGTH[0] * num_frames)))
    longest = max(shortest, int(round(ACTION_LENGTH[1] * num_frames)))
    length = int(rng.integers(shortest, longest + 1))
    first = int(rng.integers(0, num_frames - length + 1))
    return first, first + length - 1


def wander_path(num_steps: int, rng: np.random.Generator, frame_size: int, margin: float) -> np.ndarray:
    """(num_steps, 2) centres of a look-alike distractor: no class's shape. It travels at a constant speed
    while its heading weaves (a sine of random amplitude and period: a snaking line, never a closed loop or
    a straight there-and-back), and bounces off the frame's edges, kept `margin` pixels inside."""
    low, high = margin, max(margin, frame_size - 1 - margin)
    position = rng.uniform(low, high, size=2)
    speed = rng.uniform(*WANDER_SPEED) * frame_size
    heading = rng.uniform(0.0, 2 * np.pi)
    weave = rng.uniform(*WANDER_WEAVE)
    period = rng.uniform(*WANDER_PERIOD)
    phase = rng.uniform(0.0, 2 * np.pi)
    centres = np.empty((num_steps, 2))
    for t in range(num_steps):
        centres[t] = position
        heading += weave * np.sin(2 * np.pi * t / period + phase) * 2 * np.pi / period  # d(heading)/dt
        position = position + speed * np.array([np.cos(heading), np.sin(heading)])
        for axis in range(2):  # bounce: mirror the position and the heading's component
            if position[axis] < low or position[axis] > high:
                position[axis] = np.clip(2 * np.clip(position[axis], low, high) - position[axis], low, high)
                heading = np.pi - heading if axis == 0 else -heading
    return centres


def actor_track(
    class_name: str, rng: np.random.Generator, num_frames: int, frame_size: int, half_size: int,
    wander: float = 0.0,
) -> ActorTrack:
    """Idle (walking in from elsewhere when `wander` > 0), perform `class_name` along the path during a
    random interval, idle again (walking off); the interval may touch either end of the clip."""
    first, last = action_interval(rng, num_frames)
    length = last - first + 1

    # Every action ends where it started (open shapes are walked there and back), so the idle frames, which
    # stand or walk around that one point, say nothing about the class: with open paths the two idle
    # anchors were the path's two ends, and a model learned to classify from the idle frames alone.
    cycles = 1.0 if class_name in CLOSED_SHAPES else 2.0
    path = place_path(class_name, length, rng, frame_size, half_size + IDLE_MARGIN, cycles=cycles)  # (length, 2)
    # reversed: the walk-in and the fidgeting end at the start point
    before = idle_walk(path[0], first, rng, frame_size, half_size, wander)[::-1] + idle_offsets(first, rng)[::-1]
    after = (idle_walk(path[-1], num_frames - 1 - last, rng, frame_size, half_size, wander)
             + idle_offsets(num_frames - 1 - last, rng))
    centres = np.rint(np.concatenate([before, path, after])).astype(np.int64)  # (N, 2)
    centres = np.clip(centres, half_size, frame_size - 1 - half_size)  # only binds on tiny frames
    acting = np.zeros(num_frames, dtype=bool)
    acting[first : last + 1] = True
    return ActorTrack(centres=centres, interval=(first, last), acting=acting)
