"""The synthetic actions benchmark: a seeded generator of annotated clips (numpy + PyAV, no torch).

An actor with one fixed appearance idles, performs one of the classes during a random interval, and idles
again; the class is the SHAPE of its path during the interval (see `trajectories`), its pose shows whether
it acts, and distractors perform class-like motion all clip long. So a model must find the actor (where)
and its acting frames (when) to tell the class.

    trajectories.py   class shapes, placement, the actor's idle-act-idle track, look-alikes' wandering
    background.py     gradient, flat or texture background, clutter, the panning camera
    render.py         render_clip: one clip's frames and ground truth, no encoding
    untrimmed.py      render_untrimmed: a long video with several actions and idle gaps (`--untrimmed`)
    generate.py       generate_dataset and the CLI: `stanet data synth --out DIR` (or `python -m training.synth`);
                      write_generated_dataset, the writer every generator shares (training.puppets too)
    colour_clips.py   another set, whose class is the actor's colour: the INT8 benchmark's fixture
                      (`python -m training.synth.colour_clips`)

The options `background`, `pan`, `distractor_look` and `actor_scale` (SynthConfig) change its look for the
generalization suite (training.generalization); their defaults give the benchmark as it always was.
"""

from training.synth.config import DIFFICULTY_PRESETS, SynthConfig
from training.synth.generate import generate_dataset, main, parse_args
from training.synth.render import RenderedClip, render_clip
from training.synth.trajectories import CLASS_NAMES

__all__ = [
    "CLASS_NAMES",
    "DIFFICULTY_PRESETS",
    "RenderedClip",
    "SynthConfig",
    "generate_dataset",
    "main",
    "parse_args",
    "render_clip",
]
