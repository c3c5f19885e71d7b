"""Write the synthetic actions benchmark as an annotated dataset directory, and its CLI
(`stanet data synth --out DIR`).

Layout of DIR::

    classes.txt, annotations.jsonl      # the dataset format (stanet.dataset_format), boxes for every frame
    synth_config.json                   # the SynthConfig that made it: same config, same bytes of annotations
    videos/<split>/<NNNNN>_<class>.mp4

The directory is built beside DIR as DIR.tmp-<pid> and renamed into place, so DIR is either absent, the old
dataset, or the complete new one.
"""

from __future__ import annotations

import argparse
import json
import sys
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from stanet.constants import SPLITS
from stanet.dataset_format import write_dataset
from stanet.video import write_video
from training.output_dir import OutputKind, check_target, move_into_place, staging_dir
from training.synth.config import DIFFICULTY_PRESETS, SynthConfig
from training.synth.render import RenderedClip, render_clip
from training.synth.trajectories import CLASS_NAMES

SYNTH_CONFIG_FILE = "synth_config.json"
SYNTH_OUTPUT = OutputKind(marker=SYNTH_CONFIG_FILE, what="a synthetic dataset", command="stanet data synth")


def clip_rng(config: SynthConfig, split: str, index: int) -> np.random.Generator:
    """The generator of clip `index` of `split`: every clip is reproducible on its own."""
    return np.random.default_rng([config.seed, SPLITS.index(split), index])


def clip_class(index: int) -> str:
    """Classes are assigned round-robin, so every split is balanced."""
    return CLASS_NAMES[index % len(CLASS_NAMES)]


def annotation(video: str, class_name: str, split: str, clip: RenderedClip) -> dict[str, Any]:
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
    out_dir = Path(out_dir)
    check_target(out_dir, overwrite, SYNTH_OUTPUT)
    staging = staging_dir(out_dir)
    jobs = [(split, index) for split in SPLITS for index in range(config.clips_per_split[split])]
    try:
        records = []
        for split, index in tqdm(jobs, desc="synth", unit="clip", disable=not progress):
            class_name = clip_class(index)
            clip = render_clip(class_name, clip_rng(config, split, index), config)
            video = f"videos/{split}/{index:05d}_{class_name}.mp4"
            write_video(staging / video, clip.frames, config.fps, crf=config.crf)
            records.append(annotation(video, class_name, split, clip))
        write_dataset(staging, CLASS_NAMES, records)
        (staging / SYNTH_CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        move_into_place(staging, out_dir, overwrite, SYNTH_OUTPUT)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default = SynthConfig()
    parser = argparse.ArgumentParser(
        prog="stanet data synth",
        description="Generate the synthetic actions benchmark: an actor idles, performs one of "
        f"{len(CLASS_NAMES)} motion-defined actions ({', '.join(CLASS_NAMES)}) during a random interval and "
        "idles again, among moving distractors and clutter; every frame has the actor's box.",
    )
    parser.add_argument("--out", type=Path, required=True, help="dataset directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists and is not empty")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in fields(SynthConfig) if getattr(args, f.name) is not None}
    try:
        config = SynthConfig(**given)
    except ValueError as exc:
        print(f"stanet data synth: error: {exc}", file=sys.stderr)
        return 2
    try:
        out_dir = generate_dataset(args.out, config, progress=not args.quiet, overwrite=args.overwrite)
    except FileExistsError as exc:
        print(f"stanet data synth: error: {exc}", file=sys.stderr)
        return 2
    total = sum(config.clips_per_split.values())
    print(f"wrote {total} clips ({len(CLASS_NAMES)} classes, difficulty {config.difficulty}) to {out_dir}")
    return 0
