"""`python -m training.report RUN_DIR...`: one markdown table row per run from its `metrics.json`
(written by `stanet evaluate --output`) and `history.jsonl`, for docs/benchmark.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADER = ("| run | top-1 | pointing | IoU>=0.3 | IoU>=0.05 | CAM pointing | CAM IoU>=0.3 | mass inside "
          "(uniform) | frame-AP (uniform) | epochs | train min |")


def row(run: Path) -> str:
    report = json.loads((run / "metrics.json").read_text())
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    spatial, temporal = report["spatial"], report["temporal"]

    def pct(value) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}"

    cam = spatial.get("cam_baseline", {})
    model_t, uniform_t = temporal["model"], temporal["uniform_baseline"]
    return (f"| {run.name} | {pct(report['classification']['top1'])} | {pct(spatial['model']['pointing_game'])} "
            f"| {pct(spatial['model']['iou_at']['0.3'])} | {pct(spatial['model']['iou_at']['0.05'])} "
            f"| {pct(cam.get('pointing_game'))} | {pct(cam.get('iou_at', {}).get('0.3'))} "
            f"| {pct(model_t['mass_inside'])} ({pct(uniform_t['mass_inside'])}) "
            f"| {pct(model_t['frame_ap'])} ({pct(uniform_t['frame_ap'])}) | {len(history)} "
            f"| {history[-1]['elapsed_s'] / 60:.1f} |")


def main(argv: list[str] | None = None) -> int:
    runs = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    print(HEADER)
    print("|---" * (HEADER.count("|") - 1) + "|")
    for run in runs:
        print(row(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
