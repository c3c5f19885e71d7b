"""Markdown tables of evaluated runs, one row per run from its `metrics.json` (written by `stanet evaluate
--output`) and `history.jsonl`, for docs/benchmark.md: `python -m training.report RUN_DIR...` prints the
ablation table; training.generalization prints its suite table with the same formatter and its own columns."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunResult:
    """One evaluated run: its name in the table, the evaluation report and the training history."""

    name: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]]

    @classmethod
    def load(cls, run: Path, name: str | None = None) -> "RunResult":
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
        return cls(name or run.name, json.loads((run / "metrics.json").read_text()), history)

    @property
    def model(self) -> dict[str, Any]:
        return self.metrics["spatial"]["model"]

    @property
    def cam(self) -> dict[str, Any]:
        return self.metrics["spatial"].get("cam_baseline", {})

    @property
    def temporal(self) -> dict[str, Any]:
        return self.metrics["temporal"]["model"]

    @property
    def uniform(self) -> dict[str, Any]:
        return self.metrics["temporal"]["uniform_baseline"]


# A column: its header and how a run's cell reads.
Column = tuple[str, Callable[[RunResult], str]]


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def markdown_table(columns: Sequence[Column], runs: Sequence[RunResult]) -> str:
    lines = ["| " + " | ".join(header for header, _ in columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(cell(run) for _, cell in columns) + " |" for run in runs]
    return "\n".join(lines)


def _iou(where: str, alpha: str) -> Callable[[RunResult], str]:
    return lambda r: pct(getattr(r, where).get("iou_at", {}).get(alpha))


def _offset(offset: dict[str, float | None] | None) -> str:
    """Mean peak offset from the box centre, "(dx, dy) |d|" in frame pixels (metrics written before it: n/a)."""
    if not offset or offset.get("distance") is None:
        return "n/a"
    return f"({offset['x']:+.1f}, {offset['y']:+.1f}) {offset['distance']:.1f}"


def _on_box(shares: dict[str, float | None] | None) -> str:
    return "n/a" if not shares else f"{pct(shares.get('mask'))} ({pct(shares.get('cells'))})"


NAME: Column = ("run", lambda r: r.name)
TOP1: Column = ("top-1", lambda r: pct(r.metrics["classification"]["top1"]))
POINTING: Column = ("pointing", lambda r: pct(r.model["pointing_game"]))
CAM_POINTING: Column = ("CAM pointing", lambda r: pct(r.cam.get("pointing_game")))
MASS_INSIDE: Column = ("mass inside (uniform)",
                       lambda r: f"{pct(r.temporal['mass_inside'])} ({pct(r.uniform['mass_inside'])})")
FRAME_AP: Column = ("frame-AP (uniform)", lambda r: f"{pct(r.temporal['frame_ap'])} ({pct(r.uniform['frame_ap'])})")
PEAK_OFFSET: Column = ("peak offset px", lambda r: _offset(r.model.get("peak_offset")))
MASS_ON_BOX: Column = ("mask mass on box (cells)", lambda r: _on_box(r.model.get("mass_on_box")))
EPOCHS: Column = ("epochs", lambda r: str(len(r.history)))
TRAIN_MINUTES: Column = ("train min", lambda r: f"{r.history[-1]['elapsed_s'] / 60:.1f}" if r.history else "n/a")

ABLATION_COLUMNS: tuple[Column, ...] = (
    NAME, TOP1, POINTING, ("IoU>=0.3", _iou("model", "0.3")), ("IoU>=0.05", _iou("model", "0.05")), CAM_POINTING,
    ("CAM IoU>=0.3", _iou("cam", "0.3")), MASS_INSIDE, FRAME_AP, EPOCHS, TRAIN_MINUTES,
)
# The generalization suite's: every IoU threshold of the mask, the CAM baseline's pointing beside the mask's, and
# where the mask's peak and mass lie against the actor's box (a mask that wanders, sits beside or inverts).
GENERALIZATION_COLUMNS: tuple[Column, ...] = (
    ("member", lambda r: r.name), TOP1, ("mask pointing", POINTING[1]), CAM_POINTING,
    *((f"IoU@{alpha}", _iou("model", alpha)) for alpha in ("0.05", "0.1", "0.2", "0.3")),
    PEAK_OFFSET, MASS_ON_BOX, MASS_INSIDE, FRAME_AP, EPOCHS, TRAIN_MINUTES,
)


def main(argv: list[str] | None = None) -> int:
    runs = [RunResult.load(Path(p)) for p in (sys.argv[1:] if argv is None else argv)]
    print(markdown_table(ABLATION_COLUMNS, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
