"""Pass or fail of one evaluated run against a member's targets, and the suite's table (training.report's
formatter, its generalization columns plus this verdict)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.generalization.suite import STANDARD_TARGETS, SUITE, Targets
from training.report import GENERALIZATION_COLUMNS, Column, RunResult, markdown_table


def failures(metrics: dict[str, Any], targets: Targets) -> list[str]:
    """The targets a run's metrics.json misses, in words (empty: it passes). A metric that is missing or None
    (nothing to count) misses its target."""
    model, cam = metrics["spatial"]["model"], metrics["spatial"].get("cam_baseline", {})
    temporal, uniform = metrics["temporal"]["model"], metrics["temporal"]["uniform_baseline"]
    pointing, cam_pointing = model.get("pointing_game"), cam.get("pointing_game")
    mass, ap = temporal.get("mass_inside"), temporal.get("frame_ap")
    checks = [
        (f"top-1 < {100 * targets.top1:g}", _at_least(metrics["classification"].get("top1"), targets.top1)),
        (f"pointing < {100 * targets.pointing:g}", _at_least(pointing, targets.pointing)),
        ("pointing not above CAM", _above(pointing, cam_pointing)),
        (f"IoU@0.3 < {100 * targets.iou_at_03:g}", _at_least(model.get("iou_at", {}).get("0.3"), targets.iou_at_03)),
        (f"mass inside < {100 * targets.mass_inside:g}", _at_least(mass, targets.mass_inside)),
        ("mass inside not above uniform", _above(mass, uniform.get("mass_inside"))),
        ("frame-AP not above uniform", _above(ap, uniform.get("frame_ap"))),
    ]
    return [what for what, met in checks if not met]


def _at_least(value: float | None, target: float) -> bool:
    return value is not None and value >= target


def _above(value: float | None, baseline: float | None) -> bool:
    return value is not None and baseline is not None and value > baseline


def targets_of(name: str) -> Targets:
    """The targets of the member called `name` (standard ones for a run that is no member)."""
    return next((member.targets for member in SUITE if member.name == name), STANDARD_TARGETS)


def verdict(run: RunResult) -> str:
    missed = failures(run.metrics, targets_of(run.name))
    return "pass" if not missed else "FAIL: " + ", ".join(missed)


VERDICT: Column = ("pass/fail", verdict)


@dataclass(frozen=True)
class SuiteRun(RunResult):
    """A member's run under one recipe (the folder runs/generalization/RECIPE/MEMBER)."""

    recipe: str = ""


def suite_table(recipe_dirs: Sequence[Path], member_names: Sequence[str]) -> tuple[str, list[str]]:
    """The markdown table of every member (in the given order) evaluated under each recipe folder, a member's
    recipes on adjacent rows (a recipe column when there is more than one), and the "recipe/member" pairs
    that have no metrics.json yet."""
    runs, missing = [], []
    for name in member_names:
        for recipe in recipe_dirs:
            if (recipe / name / "metrics.json").is_file() and (recipe / name / "history.jsonl").is_file():
                run = RunResult.load(recipe / name)
                runs.append(SuiteRun(run.name, run.metrics, run.history, recipe=recipe.name))
            else:
                missing.append(f"{recipe.name}/{name}")
    recipe_column: list[Column] = [("recipe", lambda r: r.recipe)] if len(recipe_dirs) > 1 else []
    columns = [GENERALIZATION_COLUMNS[0], *recipe_column, *GENERALIZATION_COLUMNS[1:], VERDICT]
    return markdown_table(columns, runs), missing
