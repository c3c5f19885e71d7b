"""Drawing one synthetic clip (numpy only, no encoding): background and clutter (`background`), distractors,
the actor.

One frame shows WHETHER the actor acts (its pose: a filled square when idle, a plus when acting) and WHERE it
is, never WHICH action: only the path over the interval tells that. Look-alike distractors
(`distractor_look="actor"`) take the actor's colour and both its poses too, so then one frame shows neither
which object is the actor nor what it does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synth.background import render_background
from training.synth.config import SynthConfig
from training.synth.trajectories import CLASS_NAMES, action_interval, actor_track, place_path, wander_path

ACTOR_COLOR = np.array([255.0, 225.0, 60.0])  # bright yellow; every clip dims it by ACTOR_BRIGHTNESS
ACTOR_BRIGHTNESS = (0.9, 1.0)
# Saturated colours far from the actor's yellow; `distractor_similarity` mixes them towards it.
DISTRACTOR_COLORS = np.array(
    [[220.0, 40.0, 40.0], [40.0, 190.0, 70.0], [40.0, 90.0, 230.0], [200.0, 50.0, 200.0], [40.0, 200.0, 210.0]]
)
DISTRACTOR_KINDS = ("triangle", "ring", "bar")


@dataclass(frozen=True)
class RenderedClip:
    """One clip, with its ground truth.

    Attributes:
        frames: (N, H, W, 3) uint8 RGB.
        boxes: (N, 4) float (x1, y1, x2, y2): tight box of the actor's pixels, x2/y2 exclusive.
        interval: (first, last) action frames, inclusive.
        acting: (N,) bool pose per frame: True (plus) exactly inside the interval, False (square) outside.
        actor_masks: (N, H, W) bool, the actor's pixels (drawn last, so all of them are visible).
        distractor_masks: (N, H, W) bool, the visible distractor pixels.
        actor_color: (3,) float, the actor's colour in this clip before noise.
    """

    frames: np.ndarray
    boxes: np.ndarray
    interval: tuple[int, int]
    acting: np.ndarray
    actor_masks: np.ndarray
    distractor_masks: np.ndarray
    actor_color: np.ndarray


def actor_size(frame_size: int, scale: float = SynthConfig.actor_scale) -> int:
    """The actor's side in pixels: odd (a centre pixel for the plus), about `scale` * frame_size, >= 3."""
    return max(3, 2 * round(frame_size * scale / 2) + 1)


def actor_sprites(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(idle, acting) boolean sprites of shape (size, size): a filled square, and a plus ("arms out") with
    the same bounding box."""
    idle = np.ones((size, size), dtype=bool)
    arm = size // 3 + (size // 3 + size) % 2  # arm width with the side's parity, so the plus is centred
    lo = (size - arm) // 2
    acting = np.zeros((size, size), dtype=bool)
    acting[lo : lo + arm, :] = True
    acting[:, lo : lo + arm] = True
    return idle, acting


def distractor_sprite(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) boolean sprite unlike both actor poses: a triangle, a ring or a thin bar."""
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    if kind == "triangle":
        row = y + (size - 1) / 2  # 0 at the apex row
        sprite = np.abs(x) <= row / 2 + 0.5
        return np.rot90(sprite, k=int(rng.integers(4))).copy()
    if kind == "ring":
        radius = np.hypot(x, y)
        return (radius <= size / 2) & (radius > size / 2 - max(2, size // 5))
    if kind == "bar":
        sprite = np.abs(y) <= max(1, size // 8)
        return sprite.T.copy() if rng.random() < 0.5 else sprite
    raise ValueError(f"unknown distractor kind {kind!r}, expected one of {DISTRACTOR_KINDS}")


def place_sprite(sprite: np.ndarray, centre_x: int, centre_y: int, frame_size: int) -> np.ndarray:
    """A (frame_size, frame_size) mask with `sprite` centred on the pixel (centre_x, centre_y), clipped."""
    mask = np.zeros((frame_size, frame_size), dtype=bool)
    height, width = sprite.shape
    top, left = centre_y - height // 2, centre_x - width // 2
    y0, y1 = max(top, 0), min(top + height, frame_size)
    x0, x1 = max(left, 0), min(left + width, frame_size)
    if y0 < y1 and x0 < x1:
        mask[y0:y1, x0:x1] = sprite[y0 - top : y1 - top, x0 - left : x1 - left]
    return mask


def render_clip(class_name: str, rng: np.random.Generator, config: SynthConfig) -> RenderedClip:
    """Draw one clip of `class_name`: the actor idles, performs the action over a random interval, idles
    again, among `config.num_distractors` distractors that move all clip long over clutter and noise."""
    if class_name not in CLASS_NAMES:
        raise ValueError(f"unknown class {class_name!r}, expected one of {CLASS_NAMES}")
    N, S = config.num_frames, config.frame_size
    sprite_size = actor_size(S, config.actor_scale)
    half = sprite_size // 2

    track = actor_track(class_name, rng, N, S, half, wander=config.idle_wander)
    actor_color = ACTOR_COLOR * rng.uniform(*ACTOR_BRIGHTNESS)
    background = render_background(rng, config, np.vstack([actor_color, DISTRACTOR_COLORS]))  # (N, H, W, 3)

    idle_sprite, acting_sprite = actor_sprites(sprite_size)
    distractors = make_distractors(rng, config, (idle_sprite, acting_sprite), actor_color, N)
    frames, actor_masks, distractor_masks = draw_frames(rng, config, background, distractors, track.centres,
                                                        track.acting, (idle_sprite, acting_sprite), actor_color)
    return RenderedClip(
        frames=frames,
        boxes=tight_boxes(actor_masks),
        interval=track.interval,
        acting=track.acting,
        actor_masks=actor_masks,
        distractor_masks=distractor_masks,
        actor_color=actor_color,
    )


Distractor = tuple[list[np.ndarray], np.ndarray, np.ndarray]  # (sprite per frame, colour, (N, 2) centres)


def make_distractors(rng: np.random.Generator, config: SynthConfig, sprites: tuple[np.ndarray, np.ndarray],
                     actor_color: np.ndarray, num_frames: int, *, cycles_scale: float = 1.0) -> list[Distractor]:
    """`config.num_distractors` distractors over `num_frames` frames: class-like paths traversed 1 to 2.5
    times per `num_frames` / `cycles_scale` frames (a long video keeps a clip's speed), or look-alikes."""
    S = config.frame_size
    half = sprites[0].shape[0] // 2
    distractors = []
    for _ in range(config.num_distractors):
        if config.distractor_look == "actor":
            distractors.append(lookalike_distractor(rng, config, sprites, actor_color))
            continue
        sprite = distractor_sprite(DISTRACTOR_KINDS[rng.integers(len(DISTRACTOR_KINDS))], sprites[0].shape[0], rng)
        base = DISTRACTOR_COLORS[rng.integers(len(DISTRACTOR_COLORS))] * rng.uniform(0.85, 1.0)
        color = (1 - config.distractor_similarity) * base + config.distractor_similarity * actor_color
        shape = CLASS_NAMES[rng.integers(len(CLASS_NAMES))]  # class-like motion, all clip long
        cycles = rng.uniform(1.0, 2.5) * cycles_scale
        centres = np.rint(place_path(shape, num_frames, rng, S, half, cycles=cycles)).astype(np.int64)
        distractors.append(([sprite] * num_frames, color, centres))
    return distractors


def draw_frames(rng: np.random.Generator, config: SynthConfig, background: np.ndarray,
                distractors: list[Distractor], centres: np.ndarray, acting: np.ndarray,
                sprites: tuple[np.ndarray, np.ndarray], actor_color: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8 (N, H, W, 3), actor masks (N, H, W), visible distractor masks (N, H, W)): the background,
    the distractors, then the actor (idle or acting sprite) on top, then noise."""
    N, S = len(centres), config.frame_size
    idle_sprite, acting_sprite = sprites
    frames = np.empty((N, S, S, 3), dtype=np.float32)
    actor_masks = np.empty((N, S, S), dtype=bool)
    distractor_masks = np.zeros((N, S, S), dtype=bool)
    for t in range(N):
        frames[t] = background[t]
        for frame_sprites, color, path in distractors:
            mask = place_sprite(frame_sprites[t], *path[t], S)
            frames[t][mask] = color
            distractor_masks[t] |= mask
        actor = place_sprite(acting_sprite if acting[t] else idle_sprite, *centres[t], S)
        frames[t][actor] = actor_color  # last: the actor is never hidden
        actor_masks[t] = actor
    distractor_masks &= ~actor_masks

    if config.noise > 0:
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(config.noise)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), actor_masks, distractor_masks  # (N, H, W, 3)


def lookalike_distractor(rng: np.random.Generator, config: SynthConfig, sprites: tuple[np.ndarray, np.ndarray],
                         color: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A distractor that looks exactly like the actor: its colour, the square and, over an interval drawn as
    the actor's is, the plus; it wanders all clip long along a path that is no class's shape."""
    N, S = config.num_frames, config.frame_size
    idle, acting = sprites
    first, last = action_interval(rng, N)
    centres = np.rint(wander_path(N, rng, S, idle.shape[0] // 2)).astype(np.int64)
    return [acting if first <= t <= last else idle for t in range(N)], color, centres


def tight_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, 4) float boxes (x1, y1, x2, y2), x2/y2 exclusive, of non-empty (N, H, W) boolean masks."""
    N, H, W = masks.shape
    rows = masks.any(axis=2)  # (N, H)
    cols = masks.any(axis=1)  # (N, W)
    if not rows.any(axis=1).all():
        raise ValueError("a mask is empty: no box")
    y1 = rows.argmax(axis=1)
    y2 = H - rows[:, ::-1].argmax(axis=1)
    x1 = cols.argmax(axis=1)
    x2 = W - cols[:, ::-1].argmax(axis=1)
    return np.stack([x1, y1, x2, y2], axis=1).astype(np.float64)
