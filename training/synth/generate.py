"""Write the synthetic actions benchmark as an annotated dataset directory, and its CLI
(`stanet data synth --out DIR`).

Layout of DIR::

    classes.txt, annotations.jsonl      # the dataset format (stanet.dataset_format), boxes for every frame
    synth_config.json                   # the SynthConfig that made it: same config, same bytes of annotations
    videos/<split>/<NNNNN>_<class>.mp4
    videos/<split>/untrimmed_<NNNNN>.mp4  # with --untrimmed: long videos, one record each with its segments

The directory is built beside DIR as DIR.tmp-<pid> and renamed into place, so DIR is either absent, the old
dataset, or the complete new one.
"""

from __future__ import annotations

import argparse
import json
import sys
import shutil
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from stanet.constants import SPLITS
from stanet.dataset_format import write_dataset
from stanet.video import write_video
from training.output_dir import OutputKind, check_target, move_into_place, staging_dir
from training.synth.config import (ACTOR_SCALE_RANGE, BACKGROUNDS, DIFFICULTY_PRESETS, DISTRACTOR_LOOKS, MAX_PAN,
                                   SynthConfig)
from training.synth.render import render_clip
from training.synth.trajectories import CLASS_NAMES
from training.synth.untrimmed import render_untrimmed

# What --untrimmed asks for when the counts are not given: untrimmed videos per split.
UNTRIMMED_DEFAULTS = {"train": 60, "val": 10, "test": 20}
UNTRIMMED_STREAM = 1  # untrimmed video i of split s draws from default_rng([seed, s, i, UNTRIMMED_STREAM])

SYNTH_CONFIG_FILE = "synth_config.json"
SYNTH_OUTPUT = OutputKind(marker=SYNTH_CONFIG_FILE, what="a synthetic dataset", command="stanet data synth")
T = TypeVar("T")


class GeneratorConfig(Protocol):
    """What `write_generated_dataset` needs of a generator's frozen config."""

    seed: int
    fps: int
    crf: int

    @property
    def clips_per_split(self) -> dict[str, int]: ...

    def to_dict(self) -> dict[str, Any]: ...


class RenderedGroundTruth(Protocol):
    """What `write_generated_dataset` needs of a rendered clip."""

    frames: np.ndarray  # (N, H, W, 3) uint8
    boxes: np.ndarray  # (N, 4) (x1, y1, x2, y2), whole pixels
    interval: tuple[int, int]


def clip_rng(config: GeneratorConfig, split: str, index: int) -> np.random.Generator:
    """The generator of clip `index` of `split`: every clip is reproducible on its own."""
    return np.random.default_rng([config.seed, SPLITS.index(split), index])


def clip_class(index: int, class_names: Sequence[str] = CLASS_NAMES) -> str:
    """Classes are assigned round-robin, so every split is balanced."""
    return class_names[index % len(class_names)]


def annotation(video: str, class_name: str, split: str, clip: RenderedGroundTruth) -> dict[str, Any]:
    """The annotations.jsonl record of one rendered clip (boxes are whole pixels, written as ints)."""
    return {
        "video": video,
        "label": class_name,
        "split": split,
        "interval": list(clip.interval),
        "boxes": {str(t): [int(v) for v in box] for t, box in enumerate(clip.boxes)},
    }


def generate_dataset(
    out_dir: str | Path, config: SynthConfig, *, progress: bool = True, overwrite: bool = False
) -> Path:
    """Render, encode and annotate every clip of `config` into `out_dir`.

    Args:
        out_dir: the dataset directory to create.
        config: what to generate.
        progress: show a progress bar on stderr.
        overwrite: replace `out_dir` if it exists and is not empty.

    Returns:
        `out_dir`.

    Raises:
        FileExistsError: `out_dir` is a file, or a non-empty directory and `overwrite` is not set.
    """
    return write_generated_dataset(out_dir, config, CLASS_NAMES, lambda name, rng: render_clip(name, rng, config),
                                   SYNTH_OUTPUT, progress=progress, overwrite=overwrite,
                                   extra_records=lambda staging: write_untrimmed(staging, config, progress))


def untrimmed_rng(config: SynthConfig, split: str, index: int) -> np.random.Generator:
    """The generator of untrimmed video `index` of `split` (a stream apart from the trimmed clips')."""
    return np.random.default_rng([config.seed, SPLITS.index(split), index, UNTRIMMED_STREAM])


def untrimmed_annotation(video: str, split: str, rendered) -> dict[str, Any]:
    """The annotations.jsonl record of one untrimmed video: its segments and the actor's box on every frame."""
    return {"video": video, "split": split,
            "segments": [{"label": name, "interval": [first, last]} for name, first, last in rendered.segments],
            "boxes": {str(t): [int(v) for v in box] for t, box in enumerate(rendered.boxes)}}


def write_untrimmed(staging: Path, config: SynthConfig, progress: bool) -> list[dict[str, Any]]:
    """Render and encode `config`'s untrimmed videos under `staging`; their records."""
    jobs = [(split, index) for split in SPLITS for index in range(config.untrimmed_per_split[split])]
    records = []
    for split, index in tqdm(jobs, desc="untrimmed", unit="video", disable=not progress or not jobs):
        rendered = render_untrimmed(untrimmed_rng(config, split, index), config)
        video = f"videos/{split}/untrimmed_{index:05d}.mp4"
        write_video(staging / video, rendered.frames, config.fps, crf=config.crf)
        records.append(untrimmed_annotation(video, split, rendered))
    return records


def write_generated_dataset(
    out_dir: str | Path, config: GeneratorConfig, class_names: Sequence[str],
    render: Callable[[str, np.random.Generator], RenderedGroundTruth], kind: OutputKind, *, progress: bool,
    overwrite: bool, extra_records: Callable[[Path], list[dict[str, Any]]] | None = None,
) -> Path:
    """The dataset directory of any seeded generator: clip i of split s is `render(class, clip_rng(config, s,
    i))` with classes round-robin, written as videos + classes.txt + annotations.jsonl + `kind.marker` (the
    config as JSON), staged beside `out_dir` and moved into place (see `generate_dataset`). `extra_records`
    writes more videos into the staging directory and returns their records (after the clips')."""
    out_dir = Path(out_dir)
    check_target(out_dir, overwrite, kind)
    staging = staging_dir(out_dir)
    jobs = [(split, index) for split in SPLITS for index in range(config.clips_per_split[split])]
    try:
        records = []
        for split, index in tqdm(jobs, desc=kind.command.split()[-1], unit="clip", disable=not progress):
            class_name = clip_class(index, class_names)
            clip = render(class_name, clip_rng(config, split, index))
            video = f"videos/{split}/{index:05d}_{class_name}.mp4"
            write_video(staging / video, clip.frames, config.fps, crf=config.crf)
            records.append(annotation(video, class_name, split, clip))
        if extra_records is not None:
            records += extra_records(staging)
        write_dataset(staging, class_names, records)
        (staging / kind.marker).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        move_into_place(staging, out_dir, overwrite, kind)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def config_from_args(args: argparse.Namespace, config_type: type[T]) -> T:
    """A generator's config from its CLI flags: the fields given (named as the flags), defaults for the rest."""
    return config_type(**{f.name: getattr(args, f.name) for f in fields(config_type)
                          if getattr(args, f.name, None) is not None})


def run_generator(prog: str, args: argparse.Namespace, config_type: type[T], write: Callable[..., Path],
                  summary: Callable[[T], str]) -> int:
    """A generator CLI's work: its config from `args`, `write(args.out, config, progress=, overwrite=)`, then
    "wrote N SUMMARY to OUT" (exit 0); exit 2 with `prog: error: ...` when the config is invalid or the target
    is taken."""
    try:
        config = config_from_args(args, config_type)
        out_dir = write(args.out, config, progress=not args.quiet, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {sum(config.clips_per_split.values())} {summary(config)} to {out_dir}")
    return 0


def generator_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A generator CLI's parser with the flags every generator has: --out, --overwrite, --quiet."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--out", type=Path, required=True, help="dataset directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists and is not empty")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


DESCRIPTION = (
    "Generate the synthetic actions benchmark: an actor idles, performs one of "
    f"{len(CLASS_NAMES)} motion-defined actions ({', '.join(CLASS_NAMES)}) during a random interval and "
    "idles again, among moving distractors and clutter; every frame has the actor's box."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default = SynthConfig()
    parser = generator_parser("stanet data synth", DESCRIPTION)
    parser.add_argument("--seed", type=int, help=f"random seed (default {default.seed})")
    for split in SPLITS:
        parser.add_argument(f"--{split}", type=int, help=f"{split} clips (default {getattr(default, split)})")
    parser.add_argument("--frame-size", type=int, help=f"square frame side, even (default {default.frame_size})")
    parser.add_argument("--num-frames", type=int, help=f"frames per clip (default {default.num_frames})")
    parser.add_argument("--fps", type=int, help=f"frame rate of the videos (default {default.fps})")
    presets = "; ".join(f"{name}: {values}" for name, values in DIFFICULTY_PRESETS.items())
    parser.add_argument(
        "--difficulty", choices=tuple(DIFFICULTY_PRESETS), help=f"preset (default {default.difficulty}); {presets}"
    )
    parser.add_argument("--num-distractors", type=int, help="moving non-actor objects (default: the preset's)")
    parser.add_argument("--clutter", type=int, help="static background blobs (default: the preset's)")
    parser.add_argument(
        "--distractor-similarity",
        type=float,
        help="in [0, 1): mix the distractors' colours towards the actor's (default: the preset's)",
    )
    parser.add_argument("--idle-wander", type=float,
                        help="idle walk length before/after the action, as a fraction of the frame (default: the preset's)")
    parser.add_argument("--noise", type=float, help=f"per-pixel noise std on 0..255 (default {default.noise})")
    parser.add_argument("--crf", type=int, help=f"H.264 quality, lower is better (default {default.crf})")
    parser.add_argument("--background", choices=BACKGROUNDS,
                        help=f"gradient (+ clutter), flat (one colour, no clutter) or texture (multi-scale, "
                             f"coloured like the objects; + clutter) (default {default.background})")
    parser.add_argument("--pan", type=float,
                        help=f"panning camera: the background drifts smoothly at up to this many pixels per frame, "
                             f"in [0, {MAX_PAN:g}] (default {default.pan:g}: still)")
    parser.add_argument("--distractor-look", choices=DISTRACTOR_LOOKS,
                        help="other (shapes in other colours on class paths) or actor (look-alikes: the actor's "
                             f"sprites and colour, wandering on no class's path) (default {default.distractor_look})")
    parser.add_argument("--actor-scale", type=float,
                        help=f"the actor's side as a fraction of the frame, in [{ACTOR_SCALE_RANGE[0]}, "
                             f"{ACTOR_SCALE_RANGE[1]}] (default {default.actor_scale:.3f})")
    untrimmed = parser.add_argument_group(
        "untrimmed videos", "long videos holding several actions with idle gaps, written beside the trimmed "
        "clips (records with 'segments'; docs/datasets.md, 'Untrimmed videos')")
    untrimmed.add_argument("--untrimmed", action="store_true",
                           help="also write untrimmed videos (default counts per split: "
                                f"{', '.join(f'{k} {v}' for k, v in UNTRIMMED_DEFAULTS.items())})")
    for split in SPLITS:
        untrimmed.add_argument(f"--untrimmed-{split}", type=int, help=f"untrimmed {split} videos")
    untrimmed.add_argument("--untrimmed-seconds", type=float,
                           help=f"length of each untrimmed video (default {default.untrimmed_seconds:g})")
    untrimmed.add_argument("--untrimmed-min-actions", type=int,
                           help=f"fewest actions per video (default {default.untrimmed_min_actions})")
    untrimmed.add_argument("--untrimmed-max-actions", type=int,
                           help=f"most actions per video (default {default.untrimmed_max_actions})")
    untrimmed.add_argument("--untrimmed-min-gap", type=float,
                           help=f"shortest idle gap around each action, in clip lengths (--num-frames) "
                                f"(default {default.untrimmed_min_gap:g})")
    args = parser.parse_args(argv)
    if args.untrimmed:
        for split, count in UNTRIMMED_DEFAULTS.items():
            if getattr(args, f"untrimmed_{split}") is None:
                setattr(args, f"untrimmed_{split}", count)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_generator(SYNTH_OUTPUT.command, parse_args(argv), SynthConfig, generate_dataset, _summary)


def _summary(config: SynthConfig) -> str:
    untrimmed = sum(config.untrimmed_per_split.values())
    return (f"clips ({len(CLASS_NAMES)} classes, difficulty {config.difficulty})"
            + (f" and {untrimmed} untrimmed videos of {config.untrimmed_seconds:g} s" if untrimmed else ""))
