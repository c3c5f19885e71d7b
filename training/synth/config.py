"""The synthetic benchmark's one configuration, with its difficulty presets and the options that change
its look (background, camera pan, distractor look, actor scale) for the generalization suite."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Self

from stanet.config import from_known_fields
from stanet.constants import SPLITS
from training.synth.trajectories import ACTION_LENGTH

# Values a difficulty fills in for the fields left as None; an explicit value always wins.
DIFFICULTY_PRESETS: dict[str, dict[str, Any]] = {
    "easy": {"num_distractors": 0, "clutter": 4, "distractor_similarity": 0.0, "idle_wander": 0.0},
    "normal": {"num_distractors": 2, "clutter": 12, "distractor_similarity": 0.0, "idle_wander": 0.4},
    "hard": {"num_distractors": 4, "clutter": 24, "distractor_similarity": 0.5, "idle_wander": 0.5},
}
BACKGROUNDS = ("gradient", "flat", "texture")
DISTRACTOR_LOOKS = ("other", "actor")
ACTOR_SCALE_RANGE = (0.05, 0.35)
MAX_PAN = 8.0  # pixels per frame: beyond this the background blurs into noise between frames


class GeneratedDatasetConfig:
    """What the generators' frozen configs share (training.synth, training.puppets): clips per split (fields
    named as SPLITS) and the JSON round trip of their marker file."""

    def shared_problems(self, nonnegative: tuple[str, ...] = ()) -> list[str]:
        """What is wrong with the fields every generator has (seed, splits, frame_size, num_frames, fps, noise,
        crf) and with the `nonnegative` counts, in words."""
        problems = [f"{name} must be >= 0, got {getattr(self, name)}" for name in ("seed", *SPLITS, *nonnegative)
                    if getattr(self, name) < 0]
        if self.frame_size < 32 or self.frame_size % 2:
            problems.append(f"frame_size must be even and >= 32, got {self.frame_size}")
        if self.num_frames < 8:
            problems.append(f"num_frames must be >= 8, got {self.num_frames}")
        if self.fps <= 0:
            problems.append(f"fps must be > 0, got {self.fps}")
        if self.noise < 0:
            problems.append(f"noise must be >= 0, got {self.noise}")
        if not 0 <= self.crf <= 51:
            problems.append(f"crf must be in [0, 51], got {self.crf}")
        return problems

    @property
    def clips_per_split(self) -> dict[str, int]:
        return {split: getattr(self, split) for split in SPLITS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        return from_known_fields(cls, values)


@dataclass(frozen=True)
class SynthConfig(GeneratedDatasetConfig):
    """How many clips, how big, and how hard.

    Attributes:
        seed: clip i of split s is drawn from `np.random.default_rng([seed, s, i])`.
        train, val, test: clips per split (the field names are the SPLITS names); classes are assigned
            round-robin, so balanced.
        frame_size: square frame side in pixels (even, for H.264).
        num_frames: frames per clip.
        fps: frame rate written into the videos.
        difficulty: "easy", "normal" or "hard"; fills `num_distractors`, `clutter` and
            `distractor_similarity` when they are left as None.
        num_distractors: moving objects that are not the actor, performing class-like motion all clip long.
        clutter: static background blobs per clip.
        distractor_similarity: 0 = distractors keep their saturated colours; towards 1 their colours are
            mixed towards the actor's (kept below 1 so they never take the actor's colour).
        idle_wander: before and after the action the idle actor walks a straight line of up to this
            fraction of the frame (random direction) into and out of the action's start and end points, so
            a clip's frames taken together show the action's shape *plus* other motion: only the frames
            inside the interval give the class (what makes *when* matter); 0 = it only stands and fidgets.
        noise: std of the per-pixel, per-frame gaussian noise, on the 0..255 scale.
        crf: H.264 quality (low keeps the colours through yuv420).
        background: "gradient" (a smooth two-colour gradient under `clutter` blobs), "flat" (one colour, no
            clutter) or "texture" (multi-scale value noise and stripes down to 2-pixel detail, coloured from the
            objects' own range, under the clutter): on a texture, contrast alone does not find the actor.
        pan: a panning camera: the background (and its clutter) drifts along a seeded smooth path at up to
            this many pixels per frame, so frame differences are not zero outside the objects, which keep
            their own motion; 0 = a still camera.
        distractor_look: "other" (triangles, rings and bars in other colours, moving along class paths) or
            "actor" (look-alikes: the actor's sprites and colour, with a pose interval of their own, wandering
            along smooth paths that are no class's shape): with "actor" only how the actor moves tells it
            apart, and gives the class. `distractor_similarity` is ignored then.
        actor_scale: the actor's side as a fraction of the frame side (rounded to an odd number of pixels,
            at least 3); distractors take the same size.
        untrimmed_train, untrimmed_val, untrimmed_test: untrimmed videos per split (`--untrimmed`;
            training.synth.untrimmed), written beside the trimmed clips; 0 = none.
        untrimmed_seconds: length of every untrimmed video, in seconds at `fps`.
        untrimmed_min_actions, untrimmed_max_actions: actions per untrimmed video, drawn uniformly; each is
            as long as a trimmed clip's action.
        untrimmed_min_gap: the shortest idle gap before, between and after the actions, in trimmed clip
            lengths (`num_frames`): 1.0 leaves room for a whole background window in every gap.
    """

    seed: int = 0
    train: int = 960
    val: int = 160
    test: int = 320
    frame_size: int = 32
    num_frames: int = 32
    fps: int = 10
    difficulty: str = "normal"
    num_distractors: int | None = None
    clutter: int | None = None
    distractor_similarity: float | None = None
    idle_wander: float | None = None
    noise: float = 6.0
    crf: int = 12
    background: str = "gradient"
    pan: float = 0.0
    distractor_look: str = "other"
    actor_scale: float = 1 / 6  # 2 * round(frame_size / 12) + 1 pixels, the size before this option
    untrimmed_train: int = 0
    untrimmed_val: int = 0
    untrimmed_test: int = 0
    untrimmed_seconds: float = 30.0
    untrimmed_min_actions: int = 1
    untrimmed_max_actions: int = 4
    untrimmed_min_gap: float = 1.0

    def __post_init__(self) -> None:
        if self.difficulty not in DIFFICULTY_PRESETS:
            raise ValueError(f"difficulty must be one of {tuple(DIFFICULTY_PRESETS)}, got {self.difficulty!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.background == "flat" and self.clutter is None:
            object.__setattr__(self, "clutter", 0)  # flat means one colour: no clutter
        for name, value in DIFFICULTY_PRESETS[self.difficulty].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: resolve the preset once, here

        problems = self.shared_problems(nonnegative=("num_distractors", "clutter"))
        if not 0.0 <= self.idle_wander <= 1.0:
            problems.append(f"idle_wander must be in [0, 1], got {self.idle_wander}")
        if not 0.0 <= self.distractor_similarity < 1.0:
            problems.append(f"distractor_similarity must be in [0, 1), got {self.distractor_similarity}")
        if self.background == "flat" and self.clutter:
            problems.append(f"clutter must be 0 with background 'flat' (one colour), got {self.clutter}")
        if not 0.0 <= self.pan <= MAX_PAN:
            problems.append(f"pan must be in [0, {MAX_PAN:g}] pixels per frame, got {self.pan}")
        if self.background == "flat" and self.pan:
            problems.append(f"pan must be 0 with background 'flat' (nothing there to move), got {self.pan}")
        if self.distractor_look not in DISTRACTOR_LOOKS:
            problems.append(f"distractor_look must be one of {DISTRACTOR_LOOKS}, got {self.distractor_look!r}")
        if not ACTOR_SCALE_RANGE[0] <= self.actor_scale <= ACTOR_SCALE_RANGE[1]:
            problems.append(f"actor_scale must be in [{ACTOR_SCALE_RANGE[0]}, {ACTOR_SCALE_RANGE[1]}] (a fraction "
                            f"of the frame side), got {self.actor_scale}")
        problems += self._untrimmed_problems()
        if problems:
            raise ValueError("invalid SynthConfig: " + "; ".join(problems))

    @property
    def untrimmed_per_split(self) -> dict[str, int]:
        return {split: getattr(self, f"untrimmed_{split}") for split in SPLITS}

    def _untrimmed_problems(self) -> list[str]:
        problems = [f"untrimmed_{split} must be >= 0, got {count}"
                    for split, count in self.untrimmed_per_split.items() if count < 0]
        if not 1 <= self.untrimmed_min_actions <= self.untrimmed_max_actions:
            problems.append(f"untrimmed actions must satisfy 1 <= min <= max, got min {self.untrimmed_min_actions}, "
                            f"max {self.untrimmed_max_actions}")
        if self.untrimmed_min_gap < 0:
            problems.append(f"untrimmed_min_gap must be >= 0, got {self.untrimmed_min_gap}")
        if problems or not any(self.untrimmed_per_split.values()):
            return problems
        frames = int(round(self.untrimmed_seconds * self.fps))
        longest = max(2, int(round(ACTION_LENGTH[1] * self.num_frames)))
        gap = int(round(self.untrimmed_min_gap * self.num_frames))
        needed = self.untrimmed_max_actions * longest + (self.untrimmed_max_actions + 1) * gap
        if frames < needed:
            problems.append(f"untrimmed_seconds={self.untrimmed_seconds:g} gives {frames} frames at {self.fps} fps, "
                            f"expected at least {needed} ({self.untrimmed_max_actions} actions of up to {longest} "
                            f"frames and gaps of {gap}): make the videos longer, or lower untrimmed_max_actions "
                            f"or untrimmed_min_gap")
        return problems
