"""What lies behind the objects, in every frame (numpy only): a gradient, one flat colour or a multi-scale
texture, under static clutter blobs, seen by a still or a panning camera.

A panning camera is a window sliding over a canvas larger than the frame, along a seeded smooth path of up to
`pan` pixels per frame (bilinear, so sub-pixel steps stay smooth); the clutter lies on the canvas and moves
with it. The objects are drawn in frame coordinates afterwards and keep their own motion.
"""

from __future__ import annotations

import math

import numpy as np

from training.synth.config import SynthConfig

BACKGROUND_RANGE = (20.0, 120.0)  # per channel, the gradient's two end colours: darker than any object
CLUTTER_GREY = (40.0, 150.0)  # muted: a grey level plus a little colour, never near the actor's yellow
CLUTTER_TINT = 30.0
CLUTTER_SIZE = (3, 10)  # pixels at a 64-pixel frame, scaled with the frame

# Texture: value-noise octaves (cell sides in pixels, whatever the frame size, so the finest detail is always
# about 2 pixels) with their weights, and an optional grating of this period range.
TEXTURE_OCTAVES = ((24.0, 1.0), (12.0, 0.8), (6.0, 0.7), (3.0, 0.6), (1.5, 0.5))
STRIPE_PERIOD = (3.0, 8.0)
STRIPE_PROBABILITY = 0.5
TEXTURE_CHANNEL_RANGE = (20.0, 235.0)  # the texture's random palette colours span the objects' range
PAN_SPEED = (0.5, 1.0)  # a clip's drift speed, as a fraction of `pan`
PAN_TURN = 0.8  # radians: how far the drift direction swings over the clip


def render_background(rng: np.random.Generator, config: SynthConfig, object_colors: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) float background of every frame (a read-only broadcast of one frame when nothing moves).

    `object_colors` (K, 3) are the colours the objects may take: the texture borrows one of them, so the
    actor's colour is no longer unique to the actor."""
    N, S = config.num_frames, config.frame_size
    if config.background == "flat":
        return np.broadcast_to(rng.uniform(*BACKGROUND_RANGE, size=3), (N, S, S, 3))
    offsets = pan_offsets(rng, N, config.pan) if config.pan > 0 else np.zeros((N, 2))
    margin = int(math.ceil(np.abs(offsets).max())) + 1 if config.pan > 0 else 0
    size = S + 2 * margin  # the canvas the camera window slides over
    if config.background == "gradient":
        canvas = gradient(rng, size)
    else:
        canvas = texture(rng, size, object_colors)
    add_clutter(canvas, rng, round(config.clutter * (size / S) ** 2), S)  # the frame's clutter density
    if config.pan == 0:
        return np.broadcast_to(canvas, (N, S, S, 3))
    return np.stack([window(canvas, margin + offsets[t], S) for t in range(N)])  # (N, S, S, 3)


def gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float: a smooth gradient between two dark-to-mid colours in a random direction."""
    start, end = rng.uniform(*BACKGROUND_RANGE, size=(2, 3))
    angle = rng.uniform(0.0, 2 * np.pi)
    y, x = np.mgrid[0:size, 0:size]
    along = x * np.cos(angle) + y * np.sin(angle)
    along = (along - along.min()) / (along.max() - along.min())  # (H, W) in [0, 1]
    return start + along[..., None] * (end - start)  # (H, W, 3)


def add_clutter(canvas: np.ndarray, rng: np.random.Generator, count: int, frame_size: int) -> None:
    """Paint `count` muted ellipses and rectangles, sized for `frame_size`, anywhere on `canvas` (in place)."""
    size = canvas.shape[0]
    y, x = np.mgrid[0:size, 0:size]
    scale = frame_size / 64
    for _ in range(count):
        width, height = rng.uniform(CLUTTER_SIZE[0] * scale, CLUTTER_SIZE[1] * scale, size=2)
        cx, cy = rng.uniform(0, size, size=2)
        if rng.random() < 0.5:
            blob = ((x - cx) / (width / 2)) ** 2 + ((y - cy) / (height / 2)) ** 2 <= 1.0  # ellipse
        else:
            blob = (np.abs(x - cx) <= width / 2) & (np.abs(y - cy) <= height / 2)  # rectangle
        color = rng.uniform(*CLUTTER_GREY) + rng.uniform(-CLUTTER_TINT, CLUTTER_TINT, size=3)
        canvas[blob] = np.clip(color, 0.0, 255.0)


def value_noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """(size, size) smooth noise in [-1, 1]: random values on a grid of `cell`-pixel cells, interpolated."""
    n = int(math.ceil(size / cell)) + 2
    grid = rng.uniform(-1.0, 1.0, size=(n, n))
    u = np.arange(size) / cell + rng.uniform(0.0, 1.0, size=(2, 1))  # (2, size): y and x in cells
    i = np.floor(u).astype(np.int64)
    f = u - i
    f = f * f * (3 - 2 * f)  # smoothstep: no creases at the cell borders
    rows = grid[i[0]] * (1 - f[0])[:, None] + grid[i[0] + 1] * f[0][:, None]  # (size, n)
    return rows[:, i[1]] * (1 - f[1]) + rows[:, i[1] + 1] * f[1]  # (size, size)


def texture(rng: np.random.Generator, size: int, object_colors: np.ndarray) -> np.ndarray:
    """(size, size, 3) float: multi-scale noise (sometimes with a patchy grating) mapped onto a three-colour
    palette: one of the objects' colours (dimmed at random) and two random colours of the same range."""
    field = sum(weight * value_noise(rng, size, cell) for cell, weight in TEXTURE_OCTAVES)
    if rng.random() < STRIPE_PROBABILITY:
        angle = rng.uniform(0.0, np.pi)
        y, x = np.mgrid[0:size, 0:size]
        phase = 2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / rng.uniform(*STRIPE_PERIOD)
        patches = value_noise(rng, size, 16.0) > 0  # stripes in some places only
        field = field + 1.5 * np.sin(phase + rng.uniform(0.0, 2 * np.pi)) * patches
    low, high = np.percentile(field, (2, 98))
    level = np.clip((field - low) / (high - low), 0.0, 1.0) * 2  # (H, W) in [0, 2]: along the palette
    borrowed = object_colors[rng.integers(len(object_colors))] * rng.uniform(0.7, 1.0)
    palette = np.stack([rng.uniform(*TEXTURE_CHANNEL_RANGE, size=3), borrowed,
                        rng.uniform(*TEXTURE_CHANNEL_RANGE, size=3)])[rng.permutation(3)]  # (3, 3)
    lower = np.minimum(level.astype(np.int64), 1)  # palette segment 0 or 1
    fraction = (level - lower)[..., None]
    return palette[lower] * (1 - fraction) + palette[lower + 1] * fraction  # (H, W, 3)


def pan_offsets(rng: np.random.Generator, num_frames: int, pan: float) -> np.ndarray:
    """(N, 2) camera offsets (x, y) in pixels, centred on 0: a drift at a constant speed of up to `pan` pixels
    per frame whose direction swings smoothly (one sine over a random period)."""
    speed = pan * rng.uniform(*PAN_SPEED)
    heading = rng.uniform(0.0, 2 * np.pi)
    swing = rng.uniform(0.0, PAN_TURN)
    period = rng.uniform(0.5, 2.0) * num_frames
    t = np.arange(num_frames - 1)
    angle = heading + swing * np.sin(2 * np.pi * t / period + rng.uniform(0.0, 2 * np.pi))
    steps = speed * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (N-1, 2), each of length `speed`
    offsets = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])  # (N, 2)
    return offsets - (offsets.min(axis=0) + offsets.max(axis=0)) / 2


def window(canvas: np.ndarray, origin: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3): the canvas seen from the sub-pixel top-left corner `origin` (x, y), bilinear."""
    corner = np.floor(origin).astype(np.int64)
    fx, fy = origin - corner
    x, y = corner
    top = canvas[y : y + size, x : x + size] * (1 - fx) + canvas[y : y + size, x + 1 : x + size + 1] * fx
    bottom = (canvas[y + 1 : y + size + 1, x : x + size] * (1 - fx)
              + canvas[y + 1 : y + size + 1, x + 1 : x + size + 1] * fx)
    return top * (1 - fy) + bottom * fy
