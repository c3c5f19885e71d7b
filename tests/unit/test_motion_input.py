"""trunk_input=motion|difference: what moves in each frame, the camera cancelled (stanet/model/motion.py).
The camera's translation is recovered to sub-pixel, a panning texture drops out while an object moving on its
own stays, where it is now, a flat frame keeps the camera still, and the model trains and exports with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from export.clips import random_clips
from export.onnx_graph import export_onnx
from export.parity import check_parity
from tiny import tiny_model_config
from stanet.model import build_model
from stanet.model.motion import StabilizedDifference, estimate_translation, translate


def panning_clip(shift: tuple[float, float], frames: int = 6, size: int = 48, seed: int = 0) -> torch.Tensor:
    """(1, T, 3, size, size): a fine random texture seen through a window that moves by `shift` per frame."""
    generator = torch.Generator().manual_seed(seed)
    texture = F.avg_pool2d(torch.randn(1, 3, size + 32, size + 32, generator=generator), 3, 1, 1)  # 3-px grain
    views = [translate(texture, torch.tensor([[shift[0] * t, shift[1] * t]]))[..., 16:16 + size, 16:16 + size]
             for t in range(frames)]
    return torch.stack(views, dim=1)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.75, -1.25), (-2.4, 0.5), (1.5, 1.5)])
def test_the_camera_translation_is_recovered_to_a_fraction_of_a_pixel(shift):
    clip = panning_clip(shift)
    estimated = StabilizedDifference(3).camera_shifts(clip)  # (1, T-1, 2)
    assert (estimated - torch.tensor(shift)).abs().max() < 0.2, estimated


def test_a_panning_texture_drops_out_and_an_object_moving_on_its_own_stays():
    clip = panning_clip((0.75, -1.25)).clone()
    for t in range(clip.shape[1]):  # a bright square moving right by 2 px a frame, against the pan
        clip[0, t, :, 20:28, 8 + 2 * t:16 + 2 * t] = 3.0
    out = StabilizedDifference(3)(clip)  # (1, T, 6, H, W)
    assert out.shape == (1, 6, 6, 48, 48)
    torch.testing.assert_close(out[:, :, :3], clip)  # the frames themselves pass through
    difference = out[0, 1:, 3:].abs().mean(dim=1)  # (T-1, H, W)
    plain = (clip[0, 1:] - clip[0, :-1]).abs().mean(dim=1)
    background = torch.ones(48, 48, dtype=torch.bool)
    background[16:32, 4:32] = False  # away from the square's path
    for edge in (np.s_[:8], np.s_[-8:]):  # the strips a pan uncovers
        background[edge], background[:, edge] = False, False
    assert difference[:, background].mean() < 0.3 * plain[:, background].mean()
    assert difference[:, 20:28, 18:24].mean() > 4 * difference[:, background].mean()


def test_a_flat_frame_keeps_the_camera_still():
    """On a flat frame the only thing a shift can align is the moving object: the camera stays (integer shift 0;
    the sub-pixel refinement may lean by up to half a pixel), so the object's motion is not aligned away."""
    clip = torch.zeros(1, 4, 3, 32, 32)
    for t in range(4):
        clip[0, t, :, 10:18, 4 + 3 * t:12 + 3 * t] = 2.0  # one object, 3 px a frame
    shifts = StabilizedDifference(3).camera_shifts(clip)
    assert shifts.abs().max() <= 0.5, shifts
    difference = StabilizedDifference(3)(clip)[0, 1:, 3:].abs().mean(dim=(0, 1))  # (H, W)
    assert difference[10:18].sum() > 0.95 * difference.sum()  # the object's rows, nowhere else


def test_radius_zero_is_the_plain_frame_difference_and_the_first_frame_takes_the_second_ones():
    clip = torch.randn(2, 5, 3, 20, 20)
    out = StabilizedDifference(0, background=False)(clip)
    plain = clip[:, 1:] - clip[:, :-1]
    torch.testing.assert_close(out[:, 1:, 3:], plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 0, 3:], out[:, 1, 3:])


def test_motion_stays_inside_the_object_where_a_two_frame_difference_trails_it():
    """Each pixel is covered in fewer than half the frames, so the clip's median is the background."""
    clip = torch.zeros(1, 7, 3, 40, 40)
    inside = torch.zeros(7, 40, 40, dtype=torch.bool)
    for t in range(7):  # a 6x6 square moving right by 4 px a frame on a flat frame
        clip[0, t, :, 12:18, 4 + 4 * t:10 + 4 * t] = 2.0
        inside[t, 12:18, 4 + 4 * t:10 + 4 * t] = True
    motion = StabilizedDifference(3)(clip)[0, :, 3:].abs().sum(dim=1)  # (T, H, W)
    two = StabilizedDifference(3, background=False)(clip)[0, :, 3:].abs().sum(dim=1)
    assert motion[~inside].max() < 1e-5 and (motion[inside] > 1).all()
    assert two[1:][~inside[1:]].sum() > 0.4 * two[1:].sum()  # the trailing strip, outside the box


def test_the_translation_estimate_refuses_frames_smaller_than_its_search():
    with pytest.raises(ValueError, match=r"frames of 6x6 pixels are too small for a motion search of \+-3"):
        estimate_translation(torch.zeros(1, 6, 6), torch.zeros(1, 6, 6), 3)
    with pytest.raises(ValueError, match="motion_radius 9 needs frames larger than 18 pixels"):
        tiny_model_config(num_classes=4, trunk_input="motion", motion_radius=9, height=16, width=16)
    with pytest.raises(ValueError, match=r"trunk_input must be one of \('frame', 'motion', 'difference'\), got 'flow'"):
        tiny_model_config(num_classes=4, trunk_input="flow")


@pytest.mark.parametrize("backbone,trunk_input,channels", [("compact", "motion", 6), ("resnet18", "motion", 6),
                                                            ("compact", "difference", 6)])
def test_a_motion_trunk_trains_and_exports_with_the_same_served_tensors(backbone, trunk_input, channels):
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=4, clip_length=5, channel_dropout=0.0, trunk_input=trunk_input,
                               backbone=backbone)
    model = build_model(config).train()
    first = model.backbone.layers[0][0] if backbone == "compact" else model.backbone.stem[0]
    assert first.in_channels == channels
    out = model(torch.randn(2, 5, 3, 32, 32))
    F.cross_entropy(out.logits, torch.tensor([1, 3])).backward()
    assert first.weight.grad[:, channels - 3:].abs().sum() > 0  # the motion channels learn
    model.eval()
    graph = export_onnx(model)
    frame_graph = export_onnx(build_model(tiny_model_config(num_classes=4, clip_length=5, backbone=backbone)).eval())
    assert graph.signature == frame_graph.signature
    report = check_parity(model, graph.onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4))
    assert report.passed, report.failures


@pytest.mark.parametrize("clip_length", [5, 16])
def test_openvino_computes_the_motion_trunk_as_pytorch_does(clip_length):
    """GridSample, ArgMin and GatherElements convert to OpenVINO: its fp32 graph passes the same parity gate.
    An even clip length makes the median's index (count - 1) / 2 fractional before its floor, where an integer
    division in the graph came out off by one in OpenVINO."""
    from export.openvino_ir import OpenVinoSession, convert_to_ir

    torch.manual_seed(0)
    config = tiny_model_config(num_classes=4, clip_length=clip_length, trunk_input="motion", cell_pool="max",
                               mask_input="motion")
    model = build_model(config).eval()
    graph = export_onnx(model)
    session = OpenVinoSession(convert_to_ir(graph.onnx_bytes), "fp32", threads=1)
    report = check_parity(model, graph.onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4),
                          session=session)
    assert report.passed, report.failures


def test_imagenet_weights_fill_the_colour_channels_of_a_motion_resnet_and_the_motion_channels_start_at_zero(tmp_path):
    from torchvision import models

    from stanet.model.backbone import load_backbone_weights

    torch.manual_seed(0)
    path = tmp_path / "resnet18.pth"
    torch.save(models.resnet18(weights=None).state_dict(), path)  # stands in for a downloaded ImageNet file
    model = build_model(tiny_model_config(num_classes=4, trunk_input="motion", backbone="resnet18"))
    load_backbone_weights(model.backbone, path)
    stem = model.backbone.stem[0].weight
    torch.testing.assert_close(stem[:, :3], torch.load(path)["conv1.weight"])
    assert stem[:, 3:].abs().sum() == 0


def test_the_motion_prior_puts_an_undecided_mask_on_what_moves_and_exports():
    """model.mask_prior=motion: the mask's scores plus log(how much moves in each cell). With the learned scores
    equal everywhere the spatial-softmax mask is the motion energy itself: its peak is on the moving square's cell
    in every frame, never on a still neighbour. The prior rides in the features as one more channel, so a
    feature cache carries it, and the exported graph serves the same tensors."""
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=4, clip_length=6, channel_dropout=0.0, trunk_input="motion",
                               mask_activation="spatial_softmax", mask_prior="motion")
    model = build_model(config).eval()
    torch.nn.init.zeros_(model.spatial.net[-1].weight)
    torch.nn.init.zeros_(model.spatial.net[-1].bias)
    clip = torch.zeros(1, 6, 3, 32, 32)
    for t in range(6):  # a 4x4 square on the cell grid (4-px cells), one cell right per frame
        clip[0, t, :, 12:16, 4 * t:4 * t + 4] = 2.0
    features = model.forward_features(clip)
    assert features.shape[2] == model.feature_channels == model.backbone.out_channels + 1
    trunk, prior = model.split_prior(features)  # what the CAM baseline reads: the trunk's channels alone
    assert trunk.shape[2] == model.backbone.out_channels and torch.equal(prior, features[:, :, -1])
    mask = model(clip).spatial_attention[0]  # (T, 8, 8)
    peaks = [divmod(int(m.argmax()), 8) for m in mask]
    assert peaks == [(3, t) for t in range(6)], peaks
    torch.testing.assert_close(model.forward_head(features).logits, model(clip).logits)
    model.train()
    out = model(torch.randn(2, 6, 3, 32, 32))
    F.cross_entropy(out.logits, torch.tensor([1, 3])).backward()
    assert model.spatial.net[-1].weight.grad.abs().sum() > 0  # the learned scores still learn
    model.eval()
    graph = export_onnx(model)
    assert graph.signature == export_onnx(build_model(tiny_model_config(num_classes=4, clip_length=6)).eval()).signature
    report = check_parity(model, graph.onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4))
    assert report.passed, report.failures


def test_a_motion_prior_without_motion_channels_is_refused():
    with pytest.raises(ValueError, match="mask_prior=motion needs a spatial mask and a trunk input with motion"):
        tiny_model_config(mask_prior="motion")


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_with_equal_scores_the_prior_mask_is_the_motion_energy_to_the_prior_weight(weight):
    """mask = exp(z + w log(e + floor) - max): with the learned scores z equal everywhere, ((e + floor) / max)^w,
    so a weight below 1 lifts the cells the actor only partly covers towards the one it fills."""
    from stanet.model.spatial_attention import PRIOR_FLOOR
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=4, clip_length=6, channel_dropout=0.0, trunk_input="motion",
                               mask_activation="spatial_softmax", mask_prior="motion", mask_prior_weight=weight)
    model = build_model(config).eval()
    torch.nn.init.zeros_(model.spatial.net[-1].weight)
    torch.nn.init.zeros_(model.spatial.net[-1].bias)
    clip = torch.zeros(1, 6, 3, 32, 32)
    for t in range(6):  # a 6x6 square straddling cells
        clip[0, t, :, 10:16, 3 * t + 2:3 * t + 8] = 2.0
    with torch.no_grad():
        energy = model.forward_features(clip)[0, :, -1] + PRIOR_FLOOR  # (T, 8, 8)
        mask = model(clip).spatial_attention[0]
    expected = (energy / energy.flatten(1).amax(1)[:, None, None]) ** weight
    torch.testing.assert_close(mask, expected, rtol=1e-4, atol=1e-5)


def test_a_prior_weight_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="mask_prior_weight must be > 0, got 0"):
        tiny_model_config(trunk_input="motion", mask_prior="motion", mask_prior_weight=0)


@pytest.mark.parametrize("bound", [0.0, 1.5])
def test_bounded_learned_scores_cannot_take_the_mask_off_what_moves_and_export(bound):
    """model.mask_score_bound: learned scores that insist on a still cell (a large bias on the top-left cell, as
    the puppets' model learned for the frame's border) win unbounded; squashed to 1.5 tanh(z / 1.5) they move
    a cell by less than 3 against log(floor) = -4.6 for a still one, so the mask's peak stays on the moving
    square. The graph serves the same tensors."""
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=4, clip_length=6, channel_dropout=0.0, trunk_input="motion",
                               mask_prior="motion", mask_score_bound=bound)
    model = build_model(config).eval()
    last = model.spatial.net[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    clip = torch.zeros(1, 6, 3, 32, 32)
    for t in range(6):  # a 4x4 square on the cell grid, one cell right per frame
        clip[0, t, :, 12:16, 4 * t + 4:4 * t + 8] = 2.0
    insist = torch.zeros(8, 8)
    insist[0, 0] = 50.0  # the learned scores' own choice: a still cell in the corner

    def peaks(scores):
        model.spatial.net.register_forward_hook(lambda module, inputs, output: output + scores)
        with torch.no_grad():
            mask = model(clip).spatial_attention[0]  # (T, 8, 8)
        model.spatial.net._forward_hooks.clear()
        return [divmod(int(m.argmax()), 8) for m in mask]

    assert peaks(torch.zeros(8, 8)) == [(3, t + 1) for t in range(6)]
    assert peaks(insist) == ([(0, 0)] * 6 if bound == 0 else [(3, t + 1) for t in range(6)])
    graph = export_onnx(model)
    report = check_parity(model, graph.onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4))
    assert report.passed, report.failures


def test_a_negative_score_bound_is_refused():
    with pytest.raises(ValueError, match="mask_score_bound must be >= 0"):
        tiny_model_config(trunk_input="motion", mask_prior="motion", mask_score_bound=-1.0)


def test_the_temporal_prior_leans_on_the_frames_where_the_masked_object_moves_and_exports():
    """model.temporal_prior=motion: the temporal scores plus log(how much the masked cells' motion energy changes
    from the previous frame). With the learned scores equal, the weights follow that change alone: a square that
    stands for three frames and then walks gets its weight on the walking frames, although it is as visible
    (and as far from the clip's median background) in the standing ones. The served tensors are unchanged."""
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=4, clip_length=6, channel_dropout=0.0, trunk_input="motion",
                               mask_prior="motion", temporal_prior="motion")
    model = build_model(config).eval()
    torch.nn.init.zeros_(model.temporal.score_out.weight)
    clip = torch.zeros(1, 6, 3, 32, 32)
    for t in range(6):  # stands at column 4 for frames 0-2, then one cell right per frame
        x = 4 + 4 * max(0, t - 2)
        clip[0, t, :, 12:16, x:x + 4] = 2.0
    with torch.no_grad():
        weights = model(clip).temporal_attention[0]  # (T,)
    assert float(weights[3:].min()) > 5 * float(weights[:3].max()), weights
    model.train()
    out = model(torch.randn(2, 6, 3, 32, 32))
    F.cross_entropy(out.logits, torch.tensor([1, 3])).backward()
    assert model.temporal.score_out.weight.grad.abs().sum() > 0  # the learned scores still learn
    model.eval()
    graph = export_onnx(model)
    assert graph.signature == export_onnx(build_model(tiny_model_config(num_classes=4, clip_length=6)).eval()).signature
    report = check_parity(model, graph.onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4))
    assert report.passed, report.failures


def test_the_prior_read_at_the_peak_ignores_a_distractor_the_mask_keeps_at_half():
    """model.temporal_prior_read=peak: the motion change is read under the mask's top cell and its neighbours.
    An actor (mask 0.9) stands for three frames, then moves; a distractor two cells away from the border of
    that neighbourhood (mask 0.45, as a bounded mask keeps it) moves in the first three and then stands. Read
    under the whole mask, the distractor's motion makes the standing frames look as busy as the moving ones;
    read at the peak, only the actor's frames are, and the export still matches PyTorch."""
    T, h, w = 6, 8, 8
    mask = torch.full((T, 1, h, w), 0.02)
    mask[:, 0, 1, 1] = 0.9  # the actor's cell
    mask[:, 0, 5, 5] = 0.45  # the distractor's
    energy = torch.zeros(1, T, h, w)
    for t in range(T):
        energy[0, t, 1, 1] = 1.0 if t >= 3 and t % 2 else 0.0  # the actor moves from frame 3: its energy flickers
        energy[0, t, 5, 5] = 1.0 if t < 3 and t % 2 else 0.0  # the distractor moves until frame 2
    read = {}
    for where in ("mask", "peak"):
        config = tiny_model_config(num_classes=4, clip_length=T, trunk_input="motion", mask_prior="motion",
                                   temporal_prior="motion", temporal_prior_read=where)
        read[where] = build_model(config).eval().frame_prior(mask, energy)[0]  # (T,)
    assert float(read["mask"][1:3].min()) > float(read["mask"][3:].max()) - 1.5, read["mask"]  # about as busy
    assert float(read["peak"][3:].min()) > float(read["peak"][1:3].max()) + 3.0, read["peak"]  # only the actor
    config = tiny_model_config(num_classes=4, clip_length=6, channel_dropout=0.0, trunk_input="motion",
                               mask_prior="motion", temporal_prior="motion", temporal_prior_read="peak")
    model = build_model(config).eval()
    report = check_parity(model, export_onnx(model).onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4))
    assert report.passed, report.failures


@pytest.mark.parametrize("fields,problem", [
    ({"trunk_input": "motion"}, "temporal_prior=motion needs mask_prior=motion"),
    ({"trunk_input": "motion", "mask_prior": "motion", "temporal_attention": "none"},
     "temporal_prior=motion needs mask_prior=motion"),
    ({"trunk_input": "motion", "mask_prior": "motion", "temporal_prior": "none", "temporal_prior_read": "peak"},
     "temporal_prior_read='peak' needs temporal_prior=motion"),
    ({"trunk_input": "motion", "mask_prior": "motion", "temporal_prior_weight": -1.0},
     "temporal_prior_weight must be > 0, got -1.0"),
])
def test_a_temporal_prior_without_its_energy_or_attention_is_refused(fields, problem):
    with pytest.raises(ValueError, match=problem):
        tiny_model_config(**{"temporal_prior": "motion", **fields})
