"""`python -m training.generalization`: the generalization suite (`make generalization`).

    list                               the members, why each, and the command that writes its data
    generate [--members a,b]           every (chosen) member's data, timed; present data is kept
    run [--members a,b] [--recipe-name NAME --recipe "ARGS"]
                                       data, then train + evaluate each member under one recipe, then the table
    table RECIPE_DIR [RECIPE_DIR...]   the table of recipe folders (several: side by side, for ablations)
    oracle [--members a,b] [--clip-length T]
                                       top-1 from the actor's ground-truth path alone (track_oracle.py)
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from stanet.dataset_format import load_dataset
from training.config import DEFAULT_PRESET, resolve_run_config
from training.generalization.run import SUITE_MAX_MINUTES, SuiteError, ensure_data, run_member
from training.generalization.suite import SUITE, select
from training.generalization.track_oracle import track_oracle
from training.generalization.verdict import suite_table

DATA_ROOT = Path("data/generalization")
RUNS_ROOT = Path("runs/generalization")
DEFAULT_RECIPE_NAME = "default"  # plain `stanet train`
ORACLE_CLIP_LENGTH = resolve_run_config(DEFAULT_PRESET).model["clip_length"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.generalization", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the members and their data commands")
    members_help = f"comma-separated member names (default: all {len(SUITE)})"
    for name in ("generate", "run", "oracle"):
        sub = commands.add_parser(name)
        sub.add_argument("--members", help=members_help)
        sub.add_argument("--data-root", type=Path, default=DATA_ROOT, help=f"default {DATA_ROOT}")
    run = commands.choices["run"]
    run.add_argument("--recipe-name", default=DEFAULT_RECIPE_NAME,
                     help=f"the recipe's folder under --runs-root (default {DEFAULT_RECIPE_NAME}: plain stanet train)")
    run.add_argument("--recipe", default="", help='stanet train arguments, one string, e.g. "--preset synthetic"')
    run.add_argument("--runs-root", type=Path, default=RUNS_ROOT, help=f"default {RUNS_ROOT}")
    run.add_argument("--max-minutes", type=float, default=SUITE_MAX_MINUTES,
                     help=f"train.max_minutes added to a non-empty recipe (default {SUITE_MAX_MINUTES:g})")
    commands.choices["oracle"].add_argument("--clip-length", type=int, default=ORACLE_CLIP_LENGTH,
                                            help=f"frames sampled per clip (default {ORACLE_CLIP_LENGTH}, the "
                                                 "default recipe's)")
    table = commands.add_parser("table")
    table.add_argument("recipe_dirs", nargs="+", type=Path, help="runs/generalization/RECIPE folders")
    table.add_argument("--members", help=members_help)
    return parser.parse_args(argv)


def list_members() -> None:
    for member in SUITE:
        print(f"{member.name}: {member.why}\n    stanet {' '.join(member.generate_argv(str(DATA_ROOT / member.name)))}")


def generate(members, data_root: Path) -> None:
    started = time.monotonic()
    for member in members:
        ensure_data(member, data_root)
    print(f"data of {len(members)} member(s) ready in {(time.monotonic() - started) / 60:.1f} min")


def run(args: argparse.Namespace, members) -> int:
    recipe = shlex.split(args.recipe)
    if recipe and args.recipe_name == DEFAULT_RECIPE_NAME:
        raise SuiteError(f"--recipe needs a --recipe-name of its own ({DEFAULT_RECIPE_NAME!r} is plain stanet train)")
    recipe_dir = args.runs_root / args.recipe_name
    failed = []
    for member in members:  # one at a time: training takes the machine's cores
        try:
            data_dir, _ = ensure_data(member, args.data_root)
            print(f"== {member.name}: {run_member(member, data_dir, recipe_dir, recipe, args.max_minutes)}", flush=True)
        except SuiteError as exc:
            print(f"== {member.name}: error: {exc}", file=sys.stderr, flush=True)
            failed.append(member.name)
    print_table([recipe_dir], members)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def print_table(recipe_dirs: list[Path], members) -> None:
    table, missing = suite_table(recipe_dirs, [member.name for member in members])
    print(table)
    if missing:
        print(f"\nnot evaluated yet: {', '.join(missing)}")


def oracle(members, data_root: Path, clip_length: int) -> None:
    print("| member | track oracle top-1, test (train) | chance | train / test clips with boxes |")
    print("|---|---|---|---|")
    for member in members:
        data_dir, _ = ensure_data(member, data_root)
        dataset = load_dataset(data_dir)
        result = track_oracle(dataset.records, len(dataset.class_names), clip_length)
        print(f"| {member.name} | {100 * result.test_top1:.1f} ({100 * result.train_top1:.1f}) | "
              f"{100 * result.chance:.1f} | {result.train_clips} / {result.test_clips} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "list":
            list_members()
            return 0
        members = select(args.members)
        if args.command == "generate":
            generate(members, args.data_root)
            return 0
        if args.command == "oracle":
            oracle(members, args.data_root, args.clip_length)
            return 0
        if args.command == "table":
            print_table(args.recipe_dirs, members)
            return 0
        return run(args, members)
    except (SuiteError, ValueError) as exc:
        print(f"training.generalization: error: {exc}", file=sys.stderr)
        return 2
