"""Figures of what the model attends to: one PNG per clip with the spatial masks over a few frames and the
temporal weights of all frames (matplotlib, imported and bound to the Agg canvas only inside the drawing
function, so importing this module has no side effect and needs no display).

    +---------+---------+-----+---------+
    | frame 0 | frame 7 | ... | frame T | <- frame + jet heatmap of the mask, GT box in green,
    | t=0 .02 | t=7 .05 |     | t=T .01 |    caption "t=<index>  w=<temporal weight>"
    +---------+---------+-----+---------+
    | bar chart of all T weights, GT interval shaded, uniform 1/T dashed |
    +-----------------------------------+
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stanet.atomic import atomic_path
from stanet.overlay import heatmap_overlay

PANEL_INCHES = 2.0  # width of one frame panel
STRIP_INCHES = 1.6  # height of the temporal strip
DPI = 100


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of True in a 1-D bool array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(start), int(stop) - 1) for start, stop in zip(edges[::2], edges[1::2])]


def save_clip_figure(
    path: str | Path,
    frames: np.ndarray,
    spatial: np.ndarray,
    temporal: np.ndarray,
    *,
    boxes: Sequence[Sequence[float] | None] | None = None,
    inside: np.ndarray | None = None,
    title: str = "",
    max_frames: int = 8,
) -> Path:
    """Draw one clip's attention and write it as a PNG, atomically (temp file + os.replace).

    Args:
        path: where to write the PNG; missing parent folders are created.
        frames: (T, H, W, 3) uint8 RGB frames of the clip.
        spatial: (T, h, w) spatial attention masks in [0, 1], each covering its whole frame.
        temporal: (T,) temporal attention weights.
        boxes: per frame, the GT box (x1, y1, x2, y2) in pixels of `frames` (continuous coordinates, x2 and
            y2 exclusive), or None; None for the whole argument when the clip has no boxes.
        inside: (T,) bool, the frames inside the GT interval, shaded in the strip; None if unknown.
        title: figure title (e.g. true and predicted class).
        max_frames: frames shown in the top row, evenly spread over the clip.

    Returns:
        The path written.

    Figure width: PANEL_INCHES * max(min(T, max_frames), 3) inches at DPI; the height follows the frames' aspect.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} shape {tuple(frames.shape)}")
    num_frames, height, width, _ = frames.shape
    spatial = np.asarray(spatial, dtype=np.float32)
    if spatial.ndim != 3 or spatial.shape[0] != num_frames:
        raise ValueError(f"spatial must have shape ({num_frames}, h, w) to match frames, got shape "
                         f"{tuple(spatial.shape)}")
    temporal = np.asarray(temporal, dtype=np.float64)
    if temporal.shape != (num_frames,):
        raise ValueError(f"temporal must have shape ({num_frames},) to match frames, got shape "
                         f"{tuple(temporal.shape)}")
    if boxes is not None and len(boxes) != num_frames:
        raise ValueError(f"boxes must have one entry per frame ({num_frames}), got {len(boxes)}")
    if inside is not None:
        inside = np.asarray(inside)
        if inside.shape != (num_frames,) or inside.dtype != np.bool_:
            raise ValueError(f"inside must be bool with shape ({num_frames},), got {inside.dtype} shape "
                             f"{tuple(inside.shape)}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    shown = np.unique(np.round(np.linspace(0, num_frames - 1, min(max_frames, num_frames))).astype(int))
    columns = len(shown)
    fig_width = PANEL_INCHES * max(columns, 3)
    left, right, top, bottom, gap = 0.85, 0.1, 0.55, 0.45, 0.45  # margins in inches
    image_height = (fig_width - left - right) / columns * height / width
    fig_height = top + image_height + gap + STRIP_INCHES + bottom
    # Explicit Agg canvas: no pyplot, no global backend switch, no display needed.
    figure = Figure(figsize=(fig_width, fig_height), dpi=DPI)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(
        2, columns, height_ratios=[image_height, STRIP_INCHES], wspace=0.05,
        hspace=gap / ((image_height + STRIP_INCHES) / 2),  # a fraction of the mean row height
        left=left / fig_width, right=1 - right / fig_width, top=1 - top / fig_height, bottom=bottom / fig_height,
    )
    for column, t in enumerate(shown):
        axes = figure.add_subplot(grid[0, column])
        axes.imshow(heatmap_overlay(frames[t], spatial[t]))
        box = boxes[t] if boxes is not None else None
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            # imshow centres pixel i at i, so the pixel-edge coordinate x sits at x - 0.5.
            axes.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="lime",
                                     linewidth=1.5))
        axes.set_title(f"t={t}  w={temporal[t]:.3f}", fontsize=8)
        axes.set_axis_off()

    strip = figure.add_subplot(grid[1, :])
    if inside is not None:
        for first, last in _runs(inside):
            strip.axvspan(first - 0.5, last + 0.5, color="green", alpha=0.2, linewidth=0)
    colours = np.where(np.isin(np.arange(num_frames), shown), "tab:blue", "lightsteelblue")
    strip.bar(np.arange(num_frames), temporal, width=0.8, color=colours)
    strip.axhline(1.0 / num_frames, color="black", linestyle="--", linewidth=1.0, label="uniform 1/T")
    strip.set_xlim(-0.5, num_frames - 0.5)
    strip.xaxis.set_major_locator(MaxNLocator(integer=True))
    strip.set_xlabel("frame (dark bars are shown above; shaded = GT interval)", fontsize=8)
    strip.set_ylabel("temporal\nattention", fontsize=8)
    strip.tick_params(labelsize=7)
    strip.legend(fontsize=7, loc="upper right")
    if title:
        figure.suptitle(title, fontsize=10)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    return path
