"""The settings of `stanet evaluate --faithfulness`: one frozen dataclass, checked on construction and written
into the report, so a number always travels with how it was measured."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

BASELINES = ("blur", "mean")  # what a removed pixel or frame becomes (training/faithfulness/curves.py)
DEFAULT_CLIPS = 64  # clips of the split scored by default: docs/benchmark.md, "Faithfulness", has the time


@dataclass(frozen=True)
class FaithfulnessConfig:
    """How faithfulness is measured.

    Attributes:
        steps: points of a spatial curve after the first: the fraction of each frame's pixels removed
            (deletion) or revealed (insertion) goes 0, 1/steps, ..., 1 (steps + 1 forward passes per curve).
            Temporal curves remove or reveal whole frames in as many steps (one frame per step when the clip
            has fewer frames than steps).
        baseline: what replaces a removed pixel: "blur" (the same pixel of the frame blurred by a Gaussian of
            sigma `blur_sigma` x the frame's shorter side: no sharp edge, no object) or "mean" (the dataset
            mean colour, stanet.constants.MEAN_RGB: exactly 0 after the model's normalization).
        blur_sigma: the blur's sigma as a fraction of the frame's shorter side.
        clips: how many clips of the split are scored, drawn with `seed` (None: all of them).
        seed: the subsample, the random maps and orders and the randomized weights all derive from it.
        batch_size: clips per forward pass.
    """

    steps: int = 10
    baseline: str = "blur"
    blur_sigma: float = 0.125
    clips: int | None = DEFAULT_CLIPS
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.steps, int) or self.steps < 2:
            problems.append(f"steps must be an integer >= 2 (points of a curve after the first), got {self.steps!r}")
        if self.baseline not in BASELINES:
            problems.append(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if not self.blur_sigma > 0:
            problems.append(f"blur_sigma must be > 0 (a fraction of the frame's shorter side), got {self.blur_sigma!r}")
        if self.clips is not None and (not isinstance(self.clips, int) or self.clips <= 0):
            problems.append(f"clips must be a positive number of clips (or None for the whole split), "
                            f"got {self.clips!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems.append(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if problems:
            raise ValueError("invalid faithfulness settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
