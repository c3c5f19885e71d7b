"""Faithfulness figures (matplotlib on an explicit Agg canvas, imported only when drawing), one PNG per clip:

    +-------------------+--------------------+--------------------+---------------------+
    | spatial deletion  | spatial insertion  | temporal deletion  | temporal insertion  |  <- one line per
    | p(class) vs frac. |                    |                    |                     |     map / order
    +---------+---------+---------+----------+---------+----------+---------------------+
    | trained | stage 1 | stage 2 |   ...    <- the mask of the frame with the highest temporal weight,
    +---------+---------+---------+               after each cascading randomization stage (rho per stage)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stanet.atomic import atomic_path
from stanet.overlay import heatmap_overlay

DPI = 100
PANEL_INCHES = 2.2


def _normalized(values: np.ndarray) -> np.ndarray:
    low, spread = values.min(), np.ptp(values)
    return (values - low) / spread if spread > 0 else np.zeros_like(values)


def save_faithfulness_figure(path: str | Path, clip: np.ndarray, i: int, raw: dict[str, Any], title: str) -> Path:
    """Draw clip `i` of the raw results of `measure_faithfulness` (uint8 `clip` (T, H, W, 3)) to `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    randomization = raw["randomization"]
    stages = randomization["stages"]
    columns = max(4, len(stages) + 1)
    figure = Figure(figsize=(PANEL_INCHES * columns, 2 * PANEL_INCHES + 0.6), dpi=DPI)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, columns, hspace=0.45, wspace=0.3, left=0.05, right=0.98, top=0.86, bottom=0.08)
    curves = (("spatial", "deletion"), ("spatial", "insertion"), ("temporal", "deletion"), ("temporal", "insertion"))
    span = columns // 4
    for column, (section, kind) in enumerate(curves):
        axes = figure.add_subplot(grid[0, column * span:(column + 1) * span])
        for name, kinds in raw[section].items():
            curve = kinds[kind][i]
            axes.plot(np.linspace(0, 1, curve.size), curve, label=name, marker=".", markersize=3)
        axes.set_title(f"{section} {kind}", fontsize=9)
        axes.set_xlabel("fraction " + ("removed" if kind == "deletion" else "revealed"), fontsize=8)
        axes.set_ylim(-0.02, 1.02)
        axes.tick_params(labelsize=7)
        if column == 0:
            axes.set_ylabel("p(predicted class)", fontsize=8)
            axes.legend(fontsize=7)
    t = int(np.argmax(raw["prediction"].temporal[i]))
    masks = [raw["prediction"].spatial[i][t]] + [stage[i][t] for stage in randomization["spatial"]]
    names = ["trained"] + [f"{name}\nrho={rho:.2f}" if rho is not None else name
                           for name, rho in zip(stages, randomization["spatial_spearman"])]
    for column, (mask, name) in enumerate(zip(masks, names)):
        axes = figure.add_subplot(grid[1, column])
        axes.imshow(heatmap_overlay(clip[t], _normalized(mask.astype(np.float32))))
        axes.set_title(name, fontsize=7)
        axes.set_axis_off()
    figure.suptitle(f"{title} (frame {t}, masks min-max scaled; rho = mean over the scored clips)", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    return path
