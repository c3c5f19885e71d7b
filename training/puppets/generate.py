"""Write the puppets benchmark as an annotated dataset directory, and its CLI (`stanet data puppets --out DIR`).

The layout is the synthetic benchmark's (training.synth.generate): classes.txt, annotations.jsonl (boxes on
every frame, the action interval), videos/<split>/<NNNNN>_<class>.mp4, with puppets_config.json as the marker.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from training.output_dir import OutputKind
from training.puppets.config import FIGURE_SCALE_RANGE, MAX_DISTRACTORS, PuppetsConfig
from training.puppets.motions import CLASS_NAMES
from training.puppets.scene import render_puppet_clip
from training.synth.config import MAX_PAN
from training.synth.generate import generator_parser, run_generator, write_generated_dataset

PUPPETS_CONFIG_FILE = "puppets_config.json"
PUPPETS_OUTPUT = OutputKind(marker=PUPPETS_CONFIG_FILE, what="a puppets dataset", command="stanet data puppets")


def generate_puppets(out_dir: str | Path, config: PuppetsConfig, *, progress: bool = True,
                     overwrite: bool = False) -> Path:
    """Render, encode and annotate every clip of `config` into `out_dir` (see
    training.synth.generate_dataset: the same staging, refusal to overwrite and return value)."""
    return write_generated_dataset(out_dir, config, CLASS_NAMES,
                                   lambda name, rng: render_puppet_clip(name, rng, config), PUPPETS_OUTPUT,
                                   progress=progress, overwrite=overwrite)


DESCRIPTION = (
    "Generate the puppets benchmark: an anti-aliased puppet stands, traces one of "
    f"{len(CLASS_NAMES)} paths ({', '.join(CLASS_NAMES)}) in any orientation with its arms raised during a "
    "random interval and stands again, on a natural-looking ground among other puppets and bouncing balls; "
    "every frame has the actor's box."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default = PuppetsConfig()
    parser = generator_parser("stanet data puppets", DESCRIPTION)
    helps = {
        "seed": "random seed",
        "train": "train clips", "val": "val clips", "test": "test clips",
        "frame_size": "square frame side, even",
        "num_frames": "frames per clip",
        "fps": "frame rate of the videos",
        "figure_scale": f"the actor's height as a fraction of the frame, in {list(FIGURE_SCALE_RANGE)}",
        "num_distractors": f"other puppets and balls, in [0, {MAX_DISTRACTORS}]",
        "idle_stroll": "stroll length before/after the action, as a fraction of the frame, in [0, 1]",
        "pan": f"panning camera: backdrop drift in pixels per frame, in [0, {MAX_PAN:g}]",
        "noise": "per-pixel noise std on 0..255",
        "crf": "H.264 quality, lower is better",
    }  # fmt: skip
    for f in fields(PuppetsConfig):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(default, f.name)),
                            help=f"{helps[f.name]} (default {getattr(default, f.name)})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_generator(PUPPETS_OUTPUT.command, parse_args(argv), PuppetsConfig, generate_puppets,
                         lambda c: f"puppet clips ({len(CLASS_NAMES)} classes)")
