"""A timeline as pictures (numpy, Pillow and PyAV; no torch): `timeline.png` (per-class score curves over
time, the segments found and, when known, the ground truth) and `annotated.mp4` (the whole video with the
spatial attention as a heatmap, the current label and score, and a cursor moving over the timeline strip).
The MP4 is decoded and encoded frame by frame, never held whole."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from serving.timeline import VideoTimeline
from stanet.timeline.clips import decoded_frames
from stanet.overlay import heatmap_overlay

PICTURE_WIDTH = 960
CURVE_HEIGHT = 160
LANE_HEIGHT = 18
MARGIN = 6
MIN_VIDEO_SIDE = 256  # small videos are enlarged so the mask cells stay visible
BACKGROUND, AXIS, CURSOR = (255, 255, 255), (160, 160, 160), (220, 40, 40)
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def _colour(k: int) -> tuple[int, int, int]:
    return PALETTE[k % len(PALETTE)]


def timeline_picture(answer: VideoTimeline, width: int = PICTURE_WIDTH,
                     ground_truth: list[tuple[str, float, float]] | None = None) -> Image.Image:
    """Score curves (one per class, background left out), then a lane of the segments found and, with
    `ground_truth` ((label, start s, end s), ...), a lane of the true ones."""
    timeline = answer.timeline
    scores = timeline.scores.weighted  # (N, K)
    N, K = scores.shape
    lanes = 1 + (ground_truth is not None)
    height = CURVE_HEIGHT + lanes * (LANE_HEIGHT + MARGIN) + 2 * MARGIN
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    duration = N / timeline.fps

    def x_of(seconds: float) -> float:
        return seconds / duration * (width - 1) if duration > 0 else 0.0

    draw.line([(0, CURVE_HEIGHT), (width, CURVE_HEIGHT)], fill=AXIS)
    step = next((s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if duration / s <= 12), 1200)
    for tick in np.arange(0.0, duration + 1e-9, step):
        draw.line([(x_of(tick), CURVE_HEIGHT - 4), (x_of(tick), CURVE_HEIGHT)], fill=AXIS)
        draw.text((x_of(tick) + 2, CURVE_HEIGHT - 14), f"{tick:g}s", fill=AXIS)
    legend_x = 4
    for k, name in enumerate(timeline.class_names):
        if k != timeline.background:
            draw.text((legend_x, 2), name, fill=_colour(k))
            legend_x += 7 * len(name) + 12
    columns = np.minimum((np.arange(width) / max(width - 1, 1) * N).astype(int), N - 1)  # frame per pixel column
    for k in range(K):
        if k == timeline.background:
            continue
        ys = CURVE_HEIGHT - 1 - scores[columns, k] * (CURVE_HEIGHT - 2)
        draw.line(list(zip(range(width), ys.tolist())), fill=_colour(k), width=1)
    top = CURVE_HEIGHT + MARGIN
    names = list(timeline.class_names)
    for s in answer.segments:
        draw.rectangle([x_of(s.start), top, max(x_of(s.end), x_of(s.start) + 1), top + LANE_HEIGHT],
                       fill=_colour(s.label_index))
        draw.text((x_of(s.start) + 2, top + 3), f"{s.label} {s.score:.2f}", fill=(0, 0, 0))
    if ground_truth is not None:
        top += LANE_HEIGHT + MARGIN
        for label, start, end in ground_truth:
            k = names.index(label) if label in names else 0
            draw.rectangle([x_of(start), top, max(x_of(end), x_of(start) + 1), top + LANE_HEIGHT], outline=_colour(k),
                           width=2)
            draw.text((x_of(start) + 2, top + 3), f"true {label}", fill=(0, 0, 0))
    return image


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def write_annotated_video(answer: VideoTimeline, path: Path, strip: Image.Image) -> None:
    """The whole video with heatmap, current label and score, and a cursor on `strip` (the timeline picture)."""
    timeline = answer.timeline
    h, w = timeline.frame_hw
    scale = max(1.0, MIN_VIDEO_SIDE / min(h, w))
    out_w, video_h = _even(w * scale), _even(h * scale)
    strip = strip.resize((out_w, _even(strip.height * out_w / strip.width)))
    out_h = video_h + strip.height
    masks = timeline.scores.masks
    current = {}  # frame -> segment, the best-scoring segment covering it
    for s in sorted(answer.segments, key=lambda s: s.score):
        for f in range(s.start_frame, s.end_frame + 1):
            current[f] = s
    rate = Fraction(timeline.fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = out_w, out_h, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for index, (frame, _) in enumerate(decoded_frames(answer.video, damage=[])):
            if index >= timeline.num_frames:
                break
            shown = heatmap_overlay(frame, masks[index].astype(np.float32)) if masks is not None else frame
            canvas = Image.new("RGB", (out_w, out_h), BACKGROUND)
            canvas.paste(Image.fromarray(shown).resize((out_w, video_h)), (0, 0))
            canvas.paste(strip, (0, video_h))
            draw = ImageDraw.Draw(canvas)
            segment = current.get(index)
            text = f"{segment.label} {segment.score:.2f}" if segment else "-"
            draw.rectangle([0, 0, 8 + 7 * len(text), 14], fill=(0, 0, 0))
            draw.text((4, 2), text, fill=(255, 255, 255))
            cursor = index / max(timeline.num_frames - 1, 1) * (out_w - 1)
            draw.line([(cursor, video_h), (cursor, out_h)], fill=CURSOR, width=2)
            picture = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_timeline_overlays(answer: VideoTimeline, out_dir: str | Path,
                            ground_truth: list[tuple[str, float, float]] | None = None) -> list[Path]:
    """OUT_DIR/timeline.png and OUT_DIR/annotated.mp4 for a timeline computed with keep_timeline=True."""
    if answer.timeline is None:
        raise ValueError(f"{answer.video}: the timeline was not kept (keep_timeline=True) or failed: {answer.error}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = timeline_picture(answer, ground_truth=ground_truth)
    picture.save(out_dir / "timeline.png")
    write_annotated_video(answer, out_dir / "annotated.mp4", picture)
    return [out_dir / "timeline.png", out_dir / "annotated.mp4"]
