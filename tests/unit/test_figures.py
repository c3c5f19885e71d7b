"""The attention overlay (numpy + Pillow) and the per-clip PNG figure."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stanet.overlay import heatmap_overlay, jet_colormap, upsample_mask
from training.figures import DPI, PANEL_INCHES, save_clip_figure


def test_jet_colormap_ends_dark_blue_and_dark_red():
    table = jet_colormap()
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert tuple(table[0]) == (0, 0, 128)
    assert tuple(table[-1]) == (128, 0, 0)


def test_upsample_mask_samples_pixel_centres():
    # align_corners=False: output pixels of a 1x2 -> 1x4 resize sample at -0.25, 0.25, 0.75, 1.25 (clamped).
    np.testing.assert_allclose(upsample_mask(np.array([[0.0, 1.0]]), (1, 4)), [[0.0, 0.25, 0.75, 1.0]])


def test_heatmap_overlay_is_redder_where_the_mask_is_hot():
    frame = np.full((20, 30, 3), 128, dtype=np.uint8)
    mask = np.zeros((2, 3))
    mask[0, 0] = 1.0  # hot top-left cell, the rest cold
    overlay = heatmap_overlay(frame, mask)
    assert overlay.shape == (20, 30, 3) and overlay.dtype == np.uint8
    hot, cold = overlay[2, 2].astype(int), overlay[17, 27].astype(int)
    assert hot[0] > cold[0] + 40  # jet(1) = (128, 0, 0) vs jet(0) = (0, 0, 128), 45% opaque
    assert hot[2] < cold[2] - 40
    np.testing.assert_array_equal(heatmap_overlay(frame, mask, alpha=0.0), frame)


def test_heatmap_overlay_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"frame must be uint8 \(H, W, 3\), got float64 \(20, 30, 3\)"):
        heatmap_overlay(np.zeros((20, 30, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"mask must be \(h, w\), got shape \(1, 2, 3\)"):
        heatmap_overlay(np.zeros((20, 30, 3), np.uint8), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        heatmap_overlay(np.zeros((20, 30, 3), np.uint8), np.zeros((2, 3)), alpha=1.5)


def _clip(num_frames: int = 10, height: int = 32, width: int = 48):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    spatial = rng.random((num_frames, 4, 6)).astype(np.float32)
    logits = rng.normal(size=num_frames)
    temporal = np.exp(logits) / np.exp(logits).sum()
    return frames, spatial, temporal


def test_save_clip_figure_writes_a_png_of_the_expected_size(tmp_path):
    frames, spatial, temporal = _clip()
    boxes = [None] * 3 + [(10, 8, 30, 24)] * 5 + [None] * 2
    inside = np.array([box is not None for box in boxes])
    path = save_clip_figure(tmp_path / "figs" / "clip.png", frames, spatial, temporal, boxes=boxes, inside=inside,
                            title="true: a  predicted: a", max_frames=4)
    assert path == tmp_path / "figs" / "clip.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    # 4 panels of PANEL_INCHES; height = panels (aspect 32:48) + the temporal strip + margins.
    assert width == round(4 * PANEL_INCHES * DPI)
    assert 300 <= height <= 450
    assert [p.name for p in path.parent.iterdir()] == ["clip.png"]  # no temporary file left behind


def test_save_clip_figure_short_clip_without_annotations_overwrites(tmp_path):
    frames, spatial, temporal = _clip(num_frames=2)
    path = tmp_path / "clip.png"
    path.write_bytes(b"stale")
    save_clip_figure(path, frames, spatial, temporal, title="no boxes")
    with Image.open(path) as image:
        assert image.size[0] == round(3 * PANEL_INCHES * DPI)  # fewer frames than max_frames: min width


def test_save_clip_figure_rejects_bad_shapes(tmp_path):
    frames, spatial, temporal = _clip()
    with pytest.raises(ValueError, match=r"spatial must have shape \(10, h, w\) to match frames, got shape \(9,"):
        save_clip_figure(tmp_path / "x.png", frames, spatial[:9], temporal)
    with pytest.raises(ValueError, match=r"temporal must have shape \(10,\)"):
        save_clip_figure(tmp_path / "x.png", frames, spatial, temporal[:5])
    with pytest.raises(ValueError, match=r"inside must be bool with shape \(10,\)"):
        save_clip_figure(tmp_path / "x.png", frames, spatial, temporal, inside=np.ones(10))
    with pytest.raises(ValueError, match=r"boxes must have one entry per frame \(10\), got 3"):
        save_clip_figure(tmp_path / "x.png", frames, spatial, temporal, boxes=[None] * 3)
    with pytest.raises(ValueError, match=r"frames must be uint8 \(T, H, W, 3\)"):
        save_clip_figure(tmp_path / "x.png", frames.astype(float), spatial, temporal)
    assert not list(tmp_path.iterdir())
