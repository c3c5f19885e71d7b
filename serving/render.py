"""An answer as pictures (numpy + Pillow): every sampled frame with its spatial attention as a heatmap
(upsampled to the frame) above a strip chart of the temporal weights with the current frame marked; written
as PNG frames, an animated GIF and one contact sheet of all frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from serving.results import VideoPrediction
from stanet.overlay import heatmap_overlay

MIN_DISPLAY_SIDE = 256  # small videos are enlarged so the mask cells stay visible
STRIP_HEIGHT = 56
HEADER_HEIGHT = 18
BACKGROUND = (255, 255, 255)
BAR, BAR_CURRENT, UNIFORM_LINE = (120, 144, 200), (220, 60, 40), (90, 90, 90)
GIF_FRAME_MS = 250
SHEET_COLUMNS = 8


def _display_size(frame_hw: tuple[int, int]) -> tuple[int, int]:
    h, w = frame_hw
    scale = max(1.0, MIN_DISPLAY_SIDE / min(h, w))
    return int(round(h * scale)), int(round(w * scale))


def _strip(weights: np.ndarray, current: int, width: int) -> Image.Image:
    """Bars of the temporal weights (one per clip frame), `current` in red; the dashed line is 1/T, what a
    model that does not choose would give every frame."""
    image = Image.new("RGB", (width, STRIP_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    t_count = len(weights)
    top = float(max(weights.max(), 1.0 / t_count)) or 1.0
    slot = width / t_count
    for t, weight in enumerate(weights):
        height = (STRIP_HEIGHT - 4) * float(weight) / top
        x0, x1 = t * slot + 1, (t + 1) * slot - 1
        draw.rectangle([x0, STRIP_HEIGHT - 2 - height, max(x1, x0), STRIP_HEIGHT - 2],
                       fill=BAR_CURRENT if t == current else BAR)
    uniform_y = STRIP_HEIGHT - 2 - (STRIP_HEIGHT - 4) / (t_count * top)
    for x in range(0, width, 6):
        draw.line([x, uniform_y, x + 3, uniform_y], fill=UNIFORM_LINE)
    return image


def render_frames(answer: VideoPrediction) -> list[np.ndarray]:
    """One RGB image (uint8) per sampled frame; `answer` must carry its frames (infer_video keep_frames)."""
    if answer.prediction is None or answer.frames is None:
        raise ValueError(f"{answer.video}: an answer with its frames is needed to render overlays")
    prediction = answer.prediction
    height, width = _display_size(answer.frame_hw)
    images = []
    for t, frame in enumerate(answer.frames):
        shown = np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))
        heat = heatmap_overlay(shown, prediction.spatial_attention[t])  # mask upsampled to the frame
        canvas = Image.new("RGB", (width, HEADER_HEIGHT + height + STRIP_HEIGHT), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        draw.text((3, 3), f"{prediction.label} {prediction.score:.2f} | frame {int(answer.frame_indices[t])} "
                          f"w={float(prediction.temporal_attention[t]):.3f}", fill=(0, 0, 0))
        canvas.paste(Image.fromarray(heat), (0, HEADER_HEIGHT))
        canvas.paste(_strip(prediction.temporal_attention, t, width), (0, HEADER_HEIGHT + height))
        images.append(np.asarray(canvas))
    return images


def contact_sheet(images: list[np.ndarray], columns: int = SHEET_COLUMNS) -> np.ndarray:
    rows = -(-len(images) // columns)
    h, w, _ = images[0].shape
    sheet = np.full((rows * h, min(columns, len(images)) * w, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
    return sheet


def write_overlays(answer: VideoPrediction, out_dir: str | Path) -> dict[str, Path]:
    """Write `out_dir/frame_XX.png`, `out_dir/attention.gif` and `out_dir/sheet.png`; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = render_frames(answer)
    for t, image in enumerate(images):
        Image.fromarray(image).save(out_dir / f"frame_{t:02d}.png")
    gif = out_dir / "attention.gif"
    first, *rest = (Image.fromarray(image) for image in images)
    first.save(gif, save_all=True, append_images=rest, duration=GIF_FRAME_MS, loop=0)
    sheet = out_dir / "sheet.png"
    Image.fromarray(contact_sheet(images)).save(sheet)
    return {"frames": out_dir, "gif": gif, "sheet": sheet}
