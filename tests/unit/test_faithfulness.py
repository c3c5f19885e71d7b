"""Faithfulness metrics on hand-made models whose answer is known to depend on one pixel region or one frame:
the right map must give the lowest deletion and the highest insertion area, the cascading randomization must
change the maps it should, and bad settings are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tiny import tiny_model_config
from stanet.model import build_model
from training.faithfulness.config import FaithfulnessConfig
from training.faithfulness.curves import (Prediction, auc, baseline_clip, follow, frame_curve_clips, pixel_curve_clips,
                                          pixel_ranks)
from training.faithfulness.maps import grad_cam_maps, last_trunk_layer, trunk_blocks
from training.faithfulness.measure import areas, choose_clips, measure_faithfulness, model_curves
from training.faithfulness.randomization import cascade_stages, cascading_randomization, rank_correlation
from training.faithfulness.spatial import spatial_curves
from training.faithfulness.temporal import temporal_curves

T, H, W, h, w = 4, 16, 16, 4, 4
REGION = (slice(4, 8), slice(8, 12))  # the pixels the region model looks at: feature cell (1, 2)
FRAME = 2  # the frame the frame model looks at


class RegionModel(nn.Module):
    """p(class 1) rises with the brightness of REGION in every frame; nothing else matters."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # (N, T, H, W, 3) uint8 -> (N, 2) logits
        brightness = clips[:, :, REGION[0], REGION[1]].float().mean(dim=(1, 2, 3, 4)) / 255.0  # (N,)
        return torch.stack([torch.zeros_like(brightness), 12.0 * (brightness - 0.6)], dim=1)


class FrameModel(nn.Module):
    """p(class 1) rises with the brightness of frame FRAME; the other frames do not matter."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        brightness = clips[:, FRAME].float().mean(dim=(1, 2, 3)) / 255.0  # (N,)
        return torch.stack([torch.zeros_like(brightness), 12.0 * (brightness - 0.6)], dim=1)


def predictor(model: nn.Module, calls: list[int] | None = None):
    """A Predictor over a hand-made model: its probabilities, flat maps (the curves get the maps explicitly)."""

    def predict(clips: np.ndarray) -> Prediction:
        if calls is not None:
            calls.append(len(clips))
        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(clips)), dim=1).numpy()
        return Prediction(probs, np.ones((len(clips), T, h, w)), np.full((len(clips), T), 1.0 / T))

    return predict


def bright_clip() -> np.ndarray:
    """Everything bright (the region and every frame too): the models answer class 1."""
    return np.full((T, H, W, 3), 250, dtype=np.uint8)


def region_map() -> np.ndarray:
    values = np.zeros((T, h, w))
    values[:, 1, 2] = 1.0  # the cell over REGION
    return values


def test_area_is_the_mean_along_the_curve():
    assert auc(np.ones(11)) == pytest.approx(1.0)
    assert auc(np.linspace(1, 0, 5)) == pytest.approx(0.5)
    assert auc(np.array([0.0, 1.0, 1.0])) == pytest.approx(0.75)  # trapezoid, not the left sum
    with pytest.raises(ValueError, match="at least 2 points"):
        auc(np.ones(1))


def test_curve_clips_remove_and_reveal_the_ranked_pixels():
    clip = bright_clip()
    baseline = baseline_clip(clip, "mean")
    ranks = pixel_ranks(region_map(), (H, W), np.random.default_rng(0))
    deletion = pixel_curve_clips(clip, baseline, ranks, 4, insertion=False)
    insertion = pixel_curve_clips(clip, baseline, ranks, 4, insertion=True)
    assert deletion.shape == (5, T, H, W, 3) and deletion.dtype == np.uint8
    assert (deletion[0] == clip).all() and (deletion[-1] == baseline).all()
    assert (insertion[0] == baseline).all() and (insertion[-1] == clip).all()
    removed = (deletion[1] != clip).any(axis=-1)  # (T, H, W)
    assert removed.sum(axis=(1, 2)).tolist() == [64] * T  # a quarter of each frame's 256 pixels
    # The map's single bright cell is upsampled bilinearly: the 4x4 pixels under it rank first.
    assert removed[:, REGION[0], REGION[1]].all()
    frames = frame_curve_clips(clip, baseline, np.array([2, 0, 1, 3]), 8, insertion=False)
    assert len(frames) == T + 1  # fewer frames than steps: one frame per step
    assert (frames[1][1] == baseline[1]).all() and (frames[1][0] == clip[0]).all()


def test_blur_baseline_keeps_the_mean_colour_and_loses_the_detail():
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)
    blurred = baseline_clip(clip, "blur")
    assert blurred.std() < 0.25 * clip.std()
    assert abs(blurred.astype(float).mean() - clip.astype(float).mean()) < 2.0
    with pytest.raises(ValueError, match="unknown baseline 'zeros'"):
        baseline_clip(clip, "zeros")


@pytest.mark.parametrize("kind", ["blur", "mean"])
def test_the_region_map_beats_random_and_inverted_maps(kind):
    clip = bright_clip()
    clip[:, :, :8] = 120  # half the frame darker: a blurred baseline is not uniform
    clip[:, REGION[0], REGION[1]] = 255
    predict = predictor(RegionModel())
    assert predict(clip[None]).probabilities[0].argmax() == 1
    maps = {"correct": region_map(), "inverted": 1.0 - region_map(),
            "random": np.random.default_rng(3).random((T, h, w))}
    curves = spatial_curves(predict, clip, baseline_clip(clip, kind), maps, 1, 8)
    deletion = {name: auc(c["deletion"]) for name, c in curves.items()}
    insertion = {name: auc(c["insertion"]) for name, c in curves.items()}
    assert deletion["correct"] < deletion["random"] < deletion["inverted"]
    assert insertion["correct"] > insertion["random"] > insertion["inverted"]


def test_the_frame_order_beats_random_and_inverted_orders():
    clip = bright_clip()
    predict = predictor(FrameModel())
    right = np.eye(T)[FRAME]
    orders = {"correct": right, "inverted": 1.0 - right, "random": np.array([0.1, 0.4, 0.3, 0.2])}
    curves = temporal_curves(predict, clip, baseline_clip(clip, "mean"), orders, 1, 10)
    deletion = {name: auc(c["deletion"]) for name, c in curves.items()}
    insertion = {name: auc(c["insertion"]) for name, c in curves.items()}
    assert deletion["correct"] < deletion["random"] < deletion["inverted"]
    assert insertion["correct"] > insertion["random"] > insertion["inverted"]


def test_each_distinct_clip_runs_once():
    calls: list[int] = []
    clip = bright_clip()
    baseline = baseline_clip(clip, "mean")
    ranks = pixel_ranks(region_map(), (H, W), np.random.default_rng(0))
    curves = [pixel_curve_clips(clip, baseline, ranks, 4, insertion=flag) for flag in (False, True)]
    out = follow(predictor(RegionModel(), calls), curves, 1)
    assert calls == [8]  # 10 clips, the intact clip and the baseline shared by both curves
    assert out[0][0] == out[1][-1] and out[0][-1] == out[1][0]


def test_model_curves_report_every_map_and_order():
    clip = bright_clip()
    clip[:, REGION[0], REGION[1]] = 255
    clips = np.stack([clip, clip])
    config = FaithfulnessConfig(steps=4, baseline="mean")
    raw = model_curves(predictor(RegionModel()), clips, np.array([0, 5]), config,
                       {"correct": np.stack([region_map()] * 2)})
    spatial = areas(raw["spatial"], ("model", "random", "correct", "cam"))
    assert spatial["deletion_auc"]["cam"] is None  # not computed
    assert spatial["deletion_auc"]["correct"] < spatial["deletion_auc"]["random"]
    assert set(raw["temporal"]) == {"model", "random"} and raw["temporal"]["model"]["deletion"].shape == (2, T + 1)


def test_randomization_stages_change_the_maps_they_should():
    torch.manual_seed(0)
    model = build_model(tiny_model_config(clip_length=T)).eval()
    for module in model.modules():  # trained-looking BatchNorm statistics, so resetting them changes something
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    clips = np.random.default_rng(0).integers(0, 256, (3, T, 32, 32, 3), dtype=np.uint8)
    from training.faithfulness.predict import TorchPredictor

    trained = TorchPredictor(model)(clips)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = cascading_randomization(model, clips, trained, seed=0)
    assert result["stages"] == ["classifier", "temporal_attention", "spatial_attention", "backbone.layers.4",
                                "backbone.layers.2", "backbone.layers.0"]
    spatial, temporal = result["spatial_spearman"], result["temporal_spearman"]
    assert spatial[0] == pytest.approx(1.0) and temporal[0] == pytest.approx(1.0)  # the classifier: no map moves
    assert spatial[1] == pytest.approx(1.0)  # the mask is computed before the temporal attention
    assert temporal[1] < 0.9  # the temporal weights are the temporal attention's
    assert spatial[2] < 0.9  # the mask is the spatial attention's
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # a copy was randomized


def test_stages_and_grad_cam_layer_follow_the_trunk():
    resnet = build_model(tiny_model_config(backbone="resnet18", height=32, width=32))
    assert [name for name, _ in trunk_blocks(resnet)] == ["backbone.stem", "backbone.layer1", "backbone.layer2",
                                                          "backbone.layer3", "backbone.layer4"]
    assert last_trunk_layer(resnet) is resnet.backbone.layer4
    names = [name for name, _ in cascade_stages(build_model(tiny_model_config(projection_channels=4,
                                                                               spatial_attention=False)))]
    assert names[:3] == ["classifier", "temporal_attention", "projection"] and "spatial_attention" not in names


def test_grad_cam_maps_are_per_frame_and_non_negative():
    torch.manual_seed(0)
    model = build_model(tiny_model_config(clip_length=T)).eval()
    clips = np.random.default_rng(0).integers(0, 256, (2, T, 32, 32, 3), dtype=np.uint8)
    maps = grad_cam_maps(model, clips, [0, 3])
    assert maps.shape == (2, T, 8, 8) and (maps >= 0).all() and maps.max() > 0
    assert not np.allclose(maps, grad_cam_maps(model, clips, [1, 2]))  # class-specific


def test_measure_on_a_recognizer_has_every_key():
    torch.manual_seed(0)
    model = build_model(tiny_model_config(clip_length=T)).eval()
    clips = np.random.default_rng(0).integers(0, 256, (2, T, 32, 32, 3), dtype=np.uint8)
    report, _ = measure_faithfulness(model, clips, np.arange(2), FaithfulnessConfig(steps=2),
                                     cam_weight=np.random.default_rng(0).normal(size=(4, 16)))
    assert set(report["spatial"]["deletion_auc"]) == {"model", "random", "cam", "grad_cam"}
    assert set(report["temporal"]["insertion_auc"]) == {"model", "random"}
    assert all(0.0 <= v <= 1.0 for part in ("spatial", "temporal") for kind in report[part].values()
               for v in kind.values())
    assert len(report["randomization"]["stages"]) == len(report["randomization"]["spatial_spearman"])
    assert all(target["passed"] in (True, False) for target in report["targets"].values())


def test_rank_correlation():
    assert rank_correlation(np.arange(5), np.arange(5) ** 2) == pytest.approx(1.0)
    assert rank_correlation(np.arange(5), -np.arange(5)) == pytest.approx(-1.0)
    assert rank_correlation(np.ones(5), np.arange(5)) is None  # a constant map has no ranking


def test_subsample_is_seeded_and_sorted():
    config = FaithfulnessConfig(clips=5, seed=3)
    chosen = choose_clips(40, config)
    assert len(chosen) == 5 and list(chosen) == sorted(chosen) and (chosen == choose_clips(40, config)).all()
    assert not (chosen == choose_clips(40, FaithfulnessConfig(clips=5, seed=4))).all()
    assert list(choose_clips(3, config)) == [0, 1, 2]
    assert len(choose_clips(40, FaithfulnessConfig(clips=None))) == 40


@pytest.mark.parametrize("fields, message", [
    ({"steps": 1}, "steps must be an integer >= 2"),
    ({"baseline": "zeros"}, "baseline must be one of ('blur', 'mean'), got 'zeros'"),
    ({"clips": 0}, "clips must be a positive number of clips"),
    ({"clips": -3}, "clips must be a positive number of clips"),
    ({"blur_sigma": 0.0}, "blur_sigma must be > 0"),
])
def test_bad_settings_are_named(fields, message):
    with pytest.raises(ValueError, match="invalid faithfulness settings") as error:
        FaithfulnessConfig(**fields)
    assert message in str(error.value)
