"""The puppets' backdrop (numpy only): a natural-looking ground of 1/f ("pink to brown") noise in earthy
colours, seen by a still or a panning camera.

The noise is synthesized in the Fourier domain, so it is periodic: panning is a phase ramp on its spectrum,
an exact sub-pixel shift with no canvas edge to run into. Two fields make the ground: a coarse one mixes
two ground colours (grass and earth), a finer one modulates the brightness (tufts and pebbles down to a
pixel).
"""

from __future__ import annotations

import numpy as np

GROUND_COLOURS = np.array([[70.0, 110.0, 45.0], [105.0, 85.0, 55.0], [120.0, 120.0, 105.0], [60.0, 90.0, 80.0],
                           [140.0, 125.0, 80.0]])  # grass, earth, rock, moss, sand
MIX_EXPONENT = 1.8  # amplitude ~ 1 / f^e: large patches of one ground or the other
DETAIL_EXPONENT = 1.0  # flatter: fine grain on top
DETAIL_CONTRAST = 0.35


def noise_spectrum(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """(size, size) complex spectrum of periodic noise with amplitude ~ 1 / f^exponent (no DC term)."""
    f = np.fft.fftfreq(size)
    radius = np.hypot(f[None, :], f[:, None])
    radius[0, 0] = np.inf  # zero mean
    return np.fft.fft2(rng.standard_normal((size, size))) / radius**exponent


def field(spectrum: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(size, size) real field of `spectrum` moved by `shift` (x, y) pixels, scaled to unit std."""
    f = np.fft.fftfreq(spectrum.shape[0])
    ramp = np.exp(-2j * np.pi * f[:, None] * shift[1]) * np.exp(-2j * np.pi * f[None, :] * shift[0])  # (S, S)
    values = np.fft.ifft2(spectrum * ramp).real
    return values / values.std()


def camera_path(rng: np.random.Generator, num_frames: int, pan: float) -> np.ndarray:
    """(N, 2) camera shifts (x, y) in pixels: one direction, a speed of up to `pan` pixels per frame that
    swells and ebbs smoothly."""
    direction = rng.uniform(0.0, 2 * np.pi)
    t = np.arange(num_frames - 1)
    speed = pan * (0.6 + 0.4 * np.sin(2 * np.pi * t / rng.uniform(10.0, 40.0) + rng.uniform(0.0, 2 * np.pi)))
    steps = speed[:, None] * np.array([np.cos(direction), np.sin(direction)])  # (N-1, 2)
    return np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def render_backdrop(rng: np.random.Generator, frame_size: int, num_frames: int, pan: float) -> np.ndarray:
    """(N, S, S, 3) float: the ground of every frame (a read-only broadcast of one when the camera is still)."""
    two = GROUND_COLOURS[rng.choice(len(GROUND_COLOURS), size=2, replace=False)] * rng.uniform(0.8, 1.2, (2, 1))
    mix_spectrum = noise_spectrum(rng, frame_size, MIX_EXPONENT)
    detail_spectrum = noise_spectrum(rng, frame_size, DETAIL_EXPONENT)

    def ground(shift: np.ndarray) -> np.ndarray:
        mix = 1 / (1 + np.exp(-2.5 * field(mix_spectrum, shift)))[..., None]  # (S, S, 1) in (0, 1)
        brightness = 1 + DETAIL_CONTRAST * np.tanh(field(detail_spectrum, shift))[..., None]
        return np.clip((two[0] * (1 - mix) + two[1] * mix) * brightness, 0.0, 255.0)  # (S, S, 3)

    if pan == 0:
        return np.broadcast_to(ground(np.zeros(2)), (num_frames, frame_size, frame_size, 3))
    return np.stack([ground(shift) for shift in camera_path(rng, num_frames, pan)])
