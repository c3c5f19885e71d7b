"""`python -m training.synth.colour_clips`: a folder-per-class set of short videos whose class is the moving actor's
colour, for `stanet data import --format folders`.

Why it exists: the INT8 gate (top-1 agreement >= 99% with FP32) is only meaningful on a model whose predictions
have real margins. Without ImageNet weights on the machine, the ResNet-18 benchmark model has a random frozen
trunk, and a head trained on its features does not learn the motion-defined synthetic actions (validation
accuracy at chance, docs/benchmark.md); colour survives random convolutions, so a head learns this task in a
few epochs and the INT8 variant of the paper-like ResNet-18 model can be gated and served. It is a benchmark
fixture, not an action-recognition task.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from stanet.video import write_video

COLOURS = {  # class name -> actor RGB
    "red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 70, 230), "yellow": (230, 220, 40),
    "magenta": (210, 50, 210), "cyan": (40, 210, 220), "orange": (240, 140, 30), "white": (240, 240, 240),
}


def clip(colour: tuple[int, int, int], rng: np.random.Generator, *, frames: int, size: int) -> np.ndarray:
    """(frames, size, size, 3) uint8: a grey noisy background with grey clutter, a square of `colour` (jittered)
    walking at a random constant velocity, bouncing off the borders."""
    background = np.full((size, size, 3), 110, np.float32)
    for _ in range(4):  # static grey clutter
        x, y, side = rng.integers(0, size - 8), rng.integers(0, size - 8), rng.integers(4, 10)
        background[y:y + side, x:x + side] = rng.integers(60, 170)
    side = size // 6
    position = rng.uniform(0, size - side, 2)
    velocity = rng.uniform(-size / 12, size / 12, 2)
    tint = np.clip(np.asarray(colour, np.float32) + rng.normal(0, 12, 3), 0, 255)
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        frame = background.copy()
        x, y = position.astype(int)
        frame[y:y + side, x:x + side] = tint
        out[t] = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
        position += velocity
        for axis in range(2):  # bounce
            if not 0 <= position[axis] <= size - side:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], 0, size - side)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.synth.colour_clips", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to create: OUT/<colour>/<n>.mp4")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="square frame side, even")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.per_class < 1 or args.frames < 1 or args.size < 16 or args.size % 2:
        parser.error(f"--per-class {args.per_class} --frames {args.frames} --size {args.size}: expected at least "
                     "1 clip per class, 1 frame, and an even size of at least 16")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} exists and is not empty")
    rng = np.random.default_rng(args.seed)
    for name, colour in COLOURS.items():
        for n in range(args.per_class):
            write_video(args.out / name / f"{n:04d}.mp4", clip(colour, rng, frames=args.frames, size=args.size),
                        fps=10, crf=12)
    print(f"wrote {args.per_class * len(COLOURS)} videos ({len(COLOURS)} classes) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
