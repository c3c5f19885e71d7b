"""Running the suite: each member's data generated once, one recipe trained and evaluated on each, resumable.

Every stage is a `python -m stanet ...` subprocess (`data synth`/`data puppets`, `train`, `evaluate`), so the
suite depends on those commands' arguments only. Layout::

    data/generalization/MEMBER/                  the member's dataset (skipped when present and unchanged)
    runs/generalization/RECIPE/MEMBER/           `stanet train --out`, then metrics.json (`stanet evaluate`)
    runs/generalization/RECIPE/logs/MEMBER.*     train and evaluate output, and MEMBER.json: the train command,
                                                 its wall time, and whether it finished

A member with metrics.json is done; one whose training finished is only evaluated; one with last.pt but no
finished training is resumed (`stanet train --resume`); deleting a member's folder runs it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from stanet.constants import ANNOTATIONS_FILE, BEST_CHECKPOINT, LAST_CHECKPOINT
from training.generalization.suite import Member

# The suite's rule: a member trains for at most this long (2 CPU cores), whatever the recipe says.
SUITE_MAX_MINUTES = 19.0
METRICS_FILE = "metrics.json"


class SuiteError(RuntimeError):
    """A stage failed or the data on disk is not the member's."""


def stanet(argv: list[str], log: Path | None = None) -> tuple[int, float]:
    """`python -m stanet ARGV` (output appended to `log`, else to this process's) -> (exit status, seconds)."""
    command = [sys.executable, "-m", "stanet", *argv]
    started = time.monotonic()
    if log is None:
        status = subprocess.run(command, check=False).returncode
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            out.write(f"$ stanet {' '.join(argv)}\n")
            out.flush()
            status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return status, time.monotonic() - started


def check_data(member: Member, data_dir: Path) -> None:
    """Raises SuiteError unless `data_dir` was written from this member's definition."""
    written = data_dir / member.config_file
    if not written.is_file() or json.loads(written.read_text()) != member.data.to_dict():
        raise SuiteError(f"{data_dir} was not generated from the current definition of member {member.name} "
                         f"({written.name} differs or is missing): delete it to generate it again")


def ensure_data(member: Member, data_root: Path) -> tuple[Path, float | None]:
    """The member's dataset directory, generated unless present; the generation's seconds (None: skipped)."""
    data_dir = data_root / member.name
    seconds = None
    if not (data_dir / ANNOTATIONS_FILE).is_file():
        print(f"== {member.name}: generating data in {data_dir}", flush=True)
        status, seconds = stanet(member.generate_argv(str(data_dir)))
        if status:
            raise SuiteError(f"generating {member.name} failed (exit status {status})")
        print(f"   {member.name}: generated in {seconds / 60:.1f} min", flush=True)
    check_data(member, data_dir)
    return data_dir, seconds


def recipe_argv(recipe: list[str], max_minutes: float) -> list[str]:
    """The train arguments of a recipe under the suite's time rule. An empty recipe stays empty: plain
    `stanet train`, the default recipe (DEFAULT_PRESET) as users run it, with the preset's own limit (checked
    after training by `check_limit`)."""
    return [*recipe, "--set", f"train.max_minutes={max_minutes:g}"] if recipe else []


def check_limit(run_dir: Path) -> str | None:
    """A warning when the run's recorded train.max_minutes breaks the suite's rule (0 < limit <=
    SUITE_MAX_MINUTES; `--max-minutes` may raise it, on a machine too busy for the rule), else None."""
    path = run_dir / "run_config.json"
    if not path.is_file():
        return None
    limit = json.loads(path.read_text()).get("train", {}).get("max_minutes")
    if limit is None or 0 < limit <= SUITE_MAX_MINUTES:
        return None
    return (f"warning: {run_dir} trained with train.max_minutes={limit} (the suite's rule is <= "
            f"{SUITE_MAX_MINUTES:g}: its numbers are not comparable to the rule's)")


def run_member(member: Member, data_dir: Path, recipe_dir: Path, recipe: list[str], max_minutes: float) -> str:
    """Train (or resume) and evaluate one member unless done; returns what happened, in a word."""
    run_dir, logs = recipe_dir / member.name, recipe_dir / "logs"
    if (run_dir / METRICS_FILE).is_file():
        return "done before"
    logs.mkdir(parents=True, exist_ok=True)
    record_path = logs / f"{member.name}.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if not (record.get("finished") and (run_dir / BEST_CHECKPOINT).is_file()):
        if (run_dir / LAST_CHECKPOINT).is_file():
            argv = ["train", "--data", str(data_dir), "--out", str(run_dir), "--resume"]
        else:
            argv, record = ["train", "--data", str(data_dir), "--out", str(run_dir), *recipe_argv(recipe, max_minutes)], {}
        print(f"== {member.name}: stanet {' '.join(argv)}", flush=True)
        status, seconds = stanet(argv, logs / f"{member.name}.train.log")
        record = {"train_argv": record.get("train_argv", argv), "train_wall_s": round(record.get("train_wall_s", 0)
                  + seconds, 1), "finished": status == 0}
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        if status:
            raise SuiteError(f"training {member.name} failed (exit status {status}): "
                             f"see {logs / (member.name + '.train.log')}")
        warning = check_limit(run_dir)
        if warning:
            print(warning, flush=True)
    argv = ["evaluate", "--checkpoint", str(run_dir / BEST_CHECKPOINT), "--data", str(data_dir), "--split", "test",
            "--output", str(run_dir / METRICS_FILE), "--quiet"]
    status, _ = stanet(argv, logs / f"{member.name}.evaluate.log")
    if status:
        raise SuiteError(f"evaluating {member.name} failed (exit status {status}): "
                         f"see {logs / (member.name + '.evaluate.log')}")
    return f"trained in {record['train_wall_s'] / 60:.1f} min (wall) and evaluated"
