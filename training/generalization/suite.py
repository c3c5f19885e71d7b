"""The generalization suite's members, defined here and nowhere else: each a seeded dataset that differs from
the reference benchmark (training/synth at 32x32, gradient background, still camera, other-look distractors)
in the ways real footage does. Every member keeps motion-defined classes, so a model must find the actor
(where) and its acting frames (when) to tell the class.

A member holds its generator's frozen config, so constructing the suite validates every member; the
generator's CLI reproduces it from `generate_argv` (checked against the written config after generation).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from training.puppets import CLASS_NAMES as PUPPET_CLASSES
from training.puppets import PUPPETS_CONFIG_FILE, PuppetsConfig
from training.synth import CLASS_NAMES as SYNTH_CLASSES
from training.synth import SynthConfig
from training.synth.generate import SYNTH_CONFIG_FILE

DEFINING_FIELDS = ("seed", "train", "val", "test")  # always on a member's data command, default or not
MIN_TEST_CLIPS = 160  # below this, a member's top-1 moves by several points between seeds


@dataclass(frozen=True)
class Targets:
    """What a recipe must reach on a member (fractions), beyond beating the baselines (pointing above CAM,
    attention mass inside the action above uniform weights, frame-AP above uniform)."""

    top1: float = 0.90
    pointing: float = 0.80
    iou_at_03: float = 0.40
    mass_inside: float = 0.70


STANDARD_TARGETS = Targets()
# Look-alike distractors and few clips per class: the hardest combination, with lower bars for top-1 and pointing.
RELAXED_TARGETS = Targets(top1=0.85, pointing=0.70)
RELAXED_MAX_CLIPS_PER_CLASS = 60


@dataclass(frozen=True)
class Member:
    """One suite member: a name (its data and run folder), why it is there, and its generator's config."""

    name: str
    why: str
    data: SynthConfig | PuppetsConfig

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum() or not self.name.islower():
            raise ValueError(f"member name must be lower-case letters, digits and '_', got {self.name!r}")
        if self.data.test < MIN_TEST_CLIPS:
            raise ValueError(f"member {self.name}: test must be >= {MIN_TEST_CLIPS} clips, got {self.data.test}")
        if self.data.val < self.num_classes:
            raise ValueError(f"member {self.name}: val must hold every class, got {self.data.val} clips")
        if self.data.train % self.num_classes:
            raise ValueError(f"member {self.name}: train must be a multiple of {self.num_classes} classes, "
                             f"got {self.data.train}")

    @property
    def generator(self) -> str:
        """The `stanet data` command that writes it: "synth" or "puppets"."""
        return "synth" if isinstance(self.data, SynthConfig) else "puppets"

    @property
    def config_file(self) -> str:
        return SYNTH_CONFIG_FILE if self.generator == "synth" else PUPPETS_CONFIG_FILE

    @property
    def num_classes(self) -> int:
        return len(SYNTH_CLASSES if self.generator == "synth" else PUPPET_CLASSES)

    @property
    def train_per_class(self) -> int:
        return self.data.train // self.num_classes

    @property
    def lookalike(self) -> bool:
        return getattr(self.data, "distractor_look", "other") == "actor"

    @property
    def targets(self) -> Targets:
        relaxed = self.lookalike and self.train_per_class <= RELAXED_MAX_CLIPS_PER_CLASS
        return RELAXED_TARGETS if relaxed else STANDARD_TARGETS

    def generate_argv(self, out_dir: str) -> list[str]:
        """`stanet` arguments that write this member's data into `out_dir`: the seed and split sizes, then the
        fields that differ from the generator's defaults, as flags."""
        default = type(self.data)()
        argv = ["data", self.generator, "--out", str(out_dir), "--quiet"]
        for f in fields(self.data):
            value = getattr(self.data, f.name)
            if f.name in DEFINING_FIELDS or value != getattr(default, f.name):
                argv += [f"--{f.name.replace('_', '-')}", str(value)]
        return argv


def _synth(per_class: int, **options) -> SynthConfig:
    return SynthConfig(train=per_class * len(SYNTH_CLASSES), val=160, test=240, **options)


def _puppets(per_class: int, **options) -> PuppetsConfig:
    return PuppetsConfig(train=per_class * len(PUPPET_CLASSES), val=120, test=240, **options)


SUITE: tuple[Member, ...] = (
    Member("texture_pan_other_64",
           "(a) a textured background seen by a panning camera: every pixel moves, so frame differences and "
           "contrast no longer point at the actor; distractors of another look",
           _synth(160, seed=101, frame_size=64, num_frames=32, background="texture", pan=1.5)),
    Member("texture_pan_lookalike_96",
           "(b) (a) at 96 px with look-alike distractors (the actor's sprite, colour and poses): only how the "
           "actor moves tells it apart",
           _synth(160, seed=102, frame_size=96, num_frames=32, background="texture", pan=1.5,
                  distractor_look="actor")),
    Member("lookalike_few_48",
           "(c) look-alike distractors with 60 training clips per class, on today's gradient background: "
           "the few-data end (relaxed targets)",
           _synth(60, seed=103, frame_size=48, num_frames=24, distractor_look="actor")),
    Member("small_actor_128",
           "(d) a small actor (8% of the side) in 128 px frames of 48-frame clips on a still texture: the "
           "actor covers a few feature cells, the action a third of the frames the model samples",
           _synth(120, seed=104, frame_size=128, num_frames=48, actor_scale=0.08, background="texture")),
    Member("flat_32",
           "(e) one flat colour, no clutter, 32 px, 16-frame clips, 240 clips per class: the easy end, where a "
           "mask has nothing but the objects to choose from",
           _synth(240, seed=105, frame_size=32, num_frames=16, background="flat")),
    Member("large_actor_pan_64",
           "a large actor (30% of the side) on a panning gradient, 40-frame clips: the mask must cover, not "
           "point",
           _synth(100, seed=106, frame_size=64, num_frames=40, actor_scale=0.3, pan=2.0)),
    Member("puppets_pan_80",
           "(f) the second generator: anti-aliased puppets on a natural-looking panning ground, other puppets "
           "and balls as distractors, classes that are path shapes in any orientation",
           _puppets(160, seed=107, frame_size=80, num_frames=32, pan=1.0)),
    Member("puppets_still_48",
           "the second generator small and still: 48 px, 24-frame clips, four distractors, 240 clips per class",
           _puppets(240, seed=108, frame_size=48, num_frames=24, num_distractors=4)),
)


def member_by_name(name: str) -> Member:
    for member in SUITE:
        if member.name == name:
            return member
    raise ValueError(f"unknown suite member {name!r}; members: {', '.join(m.name for m in SUITE)}")


def select(names: str | None) -> list[Member]:
    """The members named in a comma-separated list (in suite order), or the whole suite for None or ''."""
    if not names:
        return list(SUITE)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    chosen = {member_by_name(name).name for name in wanted}
    return [member for member in SUITE if member.name in chosen]
