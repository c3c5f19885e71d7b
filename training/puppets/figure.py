"""Soft, anti-aliased puppets and balls (numpy only): shapes as signed distance fields, coverage = the
distance clipped to one pixel of edge, composited over the frame.

A puppet is a head and five capsules (torso, two arms, two legs) in units of its height, y down:

         O          head: disc at HEAD, radius HEAD_RADIUS
      \\  |  /       arms from the neck: down at the sides when idle, raised and waving while acting
         |          torso: NECK -> HIP
        / \\         legs from the hip: together when standing, stepping when walking

So one frame shows whether the actor acts (its arms), never which action: that is the path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEAD, HEAD_RADIUS = (0.0, -0.36), 0.12
NECK, HIP = (0.0, -0.22), (0.0, 0.1)
TORSO_RADIUS, ARM_LENGTH, ARM_RADIUS, LEG_LENGTH, LEG_RADIUS = 0.1, 0.34, 0.045, 0.36, 0.055
ARMS_DOWN = 0.25  # radians from straight down
ARMS_UP, ARM_WAVE = 2.75, 0.3  # raised above the head: radians from straight down, waving by this much
LEG_SPREAD, LEG_STEP = 0.12, 0.4
STEP_PERIOD = 6.0  # frames per step and per wave, for every class alike


@dataclass(frozen=True)
class Outfit:
    """A puppet's colours (RGB, 0..255)."""

    skin: np.ndarray
    shirt: np.ndarray
    trousers: np.ndarray


def capsule_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Signed distances (K, h, w) from the points (px, py) (h, w) to K capsules: `radius` (K,) around the
    segments a-b (a, b: (K, 2)); a == b is a disc."""
    ax, ay = a[:, 0, None, None], a[:, 1, None, None]  # (K, 1, 1)
    abx, aby = (b - a)[:, 0, None, None], (b - a)[:, 1, None, None]
    length2 = np.maximum(abx * abx + aby * aby, 1e-12)
    t = np.minimum(np.maximum(((px - ax) * abx + (py - ay) * aby) / length2, 0.0), 1.0)  # (K, h, w)
    return np.hypot(px - ax - t * abx, py - ay - t * aby) - radius[:, None, None]


def coverage(distance: np.ndarray) -> np.ndarray:
    """Pixel coverage in [0, 1] from a signed distance in pixels: a one-pixel anti-aliased edge."""
    return np.minimum(np.maximum(0.5 - distance, 0.0), 1.0)


def puppet_parts(centre: np.ndarray, height: float, acting: bool, walking: bool, phase: float
                 ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The puppet's capsules back to front: colour names (K,), ends a and b (K, 2) and radii (K,) in pixels;
    the head is a disc (a == b)."""
    def point(xy) -> np.ndarray:
        return centre + height * np.asarray(xy, dtype=float)

    def limb(root, angle: float, length: float) -> np.ndarray:  # angle from straight down, positive = right
        return point(root) + height * length * np.array([np.sin(angle), np.cos(angle)])

    step = LEG_STEP * np.sin(phase) if walking else 0.0
    arm = ARMS_UP + ARM_WAVE * np.sin(phase) if acting else ARMS_DOWN
    neck, hip, head = point(NECK), point(HIP), point(HEAD)
    colours = ["trousers", "trousers", "shirt", "shirt", "shirt", "skin"]
    a = np.stack([hip, hip, neck, neck, neck, head])
    b = np.stack([limb(HIP, LEG_SPREAD + step, LEG_LENGTH), limb(HIP, -LEG_SPREAD - step, LEG_LENGTH), hip,
                  limb(NECK, arm, ARM_LENGTH), limb(NECK, -arm, ARM_LENGTH), head])
    radii = height * np.array([LEG_RADIUS, LEG_RADIUS, TORSO_RADIUS, ARM_RADIUS, ARM_RADIUS, HEAD_RADIUS])
    return colours, a, b, radii


def _window(shape: tuple[int, ...], centre: np.ndarray, reach: int) -> tuple[slice, slice] | None:
    """The rows and columns of the frame within `reach` pixels of `centre`, or None when none are."""
    H, W = shape[:2]
    x0, y0 = max(int(centre[0]) - reach, 0), max(int(centre[1]) - reach, 0)
    x1, y1 = min(int(centre[0]) + reach + 1, W), min(int(centre[1]) + reach + 1, H)
    return (slice(y0, y1), slice(x0, x1)) if x0 < x1 and y0 < y1 else None


def _pixel_coordinates(rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """(1, w) x and (h, 1) y pixel coordinates of a window, broadcasting to (h, w)."""
    return np.arange(cols.start, cols.stop, dtype=float)[None, :], np.arange(rows.start, rows.stop, dtype=float)[:, None]


def composite(region: np.ndarray, alphas: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Paint K layers back to front over `region` (h, w, 3) in place, each `colours[k]` (K, 3) at coverage
    `alphas[k]` (K, h, w): the "over" operator K times, in closed form. Returns the total coverage (h, w)."""
    clear = np.cumprod((1 - alphas)[::-1], axis=0)[::-1]  # (K, h, w): [k] = prod over layers k.. of (1 - a)
    seen = alphas * np.concatenate([clear[1:], np.ones_like(clear[:1])])  # each layer times what lies above it
    region *= clear[0][..., None]
    region += np.einsum("khw,kc->hwc", seen, colours)
    return 1 - clear[0]


def draw_puppet(frame: np.ndarray, centre: np.ndarray, height: float, outfit: Outfit, *, acting: bool,
                walking: bool, phase: float) -> np.ndarray:
    """Composite one puppet onto `frame` (H, W, 3) float in place; returns its coverage (H, W) in [0, 1]."""
    total = np.zeros(frame.shape[:2])
    window = _window(frame.shape, centre, int(np.ceil(0.7 * height)) + 2)  # every part lies within it
    if window is None:
        return total
    px, py = _pixel_coordinates(*window)
    names, a, b, radii = puppet_parts(centre, height, acting, walking, phase)
    alphas = coverage(capsule_distance(px, py, a, b, radii))  # (K, h, w)
    colours = np.stack([getattr(outfit, name) for name in names])  # (K, 3)
    total[window] = composite(frame[window], alphas, colours)  # frame[window] is a view: drawing writes through
    return total


def draw_ball(frame: np.ndarray, centre: np.ndarray, radius: float, colour: np.ndarray) -> np.ndarray:
    """Composite a shaded ball (lit from the top left) onto `frame` in place; returns its coverage (H, W)."""
    total = np.zeros(frame.shape[:2])
    window = _window(frame.shape, centre, int(np.ceil(radius)) + 2)
    if window is None:
        return total
    px, py = _pixel_coordinates(*window)
    alpha = coverage(np.hypot(px - centre[0], py - centre[1]) - radius)  # (h, w)
    light = np.hypot(px - centre[0] + 0.4 * radius, py - centre[1] + 0.4 * radius) / (1.6 * radius)
    shade = np.clip(1.15 - 0.6 * light, 0.45, 1.15)[..., None]  # (h, w, 1)
    region = frame[window]
    region *= 1 - alpha[..., None]
    region += np.minimum(colour * shade, 255.0) * alpha[..., None]
    total[window] = alpha
    return total
