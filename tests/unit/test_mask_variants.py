"""The mask options (motion input, spatial softmax, mean fill, residual) and max cell pooling: shapes, ranges,
gradients, what each combination computes, and ONNX parity, since the exported graph must serve every variant."""

from __future__ import annotations

import itertools

import pytest
import torch

from export.clips import random_clips
from export.onnx_graph import export_onnx
from export.parity import check_parity
from tiny import tiny_model_config
from stanet.config import MASK_ACTIVATIONS, MASK_COMBINES, MASK_INPUTS, ModelConfig
from stanet.model import build_model
from stanet.model.spatial_attention import apply_mask
from stanet.model.temporal_attention import pool_cells
from training.config import resolve_run_config

VARIANTS = list(itertools.product(MASK_INPUTS, MASK_ACTIVATIONS, MASK_COMBINES))


def tiny(**kw) -> ModelConfig:
    return tiny_model_config(**{"num_classes": 4, "clip_length": 5, "channel_dropout": 0.0, **kw})


def with_trained_scale(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its convolutions' weights drawn at a trained-like scale, so that differences in what the
    mask reads show in its output."""
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.5)
    return model


def parameters_without_gradient(model: torch.nn.Module) -> list[str]:
    """Names of the parameters that a backward pass left without a finite, non-zero gradient."""
    return [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
            or p.grad.abs().sum() == 0]


@pytest.mark.parametrize("mask_input,activation,combine", VARIANTS)
def test_every_variant_gives_masks_in_range_and_gradients_everywhere(mask_input, activation, combine):
    torch.manual_seed(0)
    model = build_model(tiny(mask_input=mask_input, mask_activation=activation, mask_combine=combine)).train()
    out = model(torch.randn(2, 5, 3, 32, 32))
    assert out.spatial_attention.shape == (2, 5, 8, 8)
    assert out.spatial_attention.min() >= 0 and out.spatial_attention.max() <= 1
    if activation == "spatial_softmax":  # the strongest cell of every frame is 1
        torch.testing.assert_close(out.spatial_attention.flatten(2).amax(dim=2), torch.ones(2, 5))
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 3])).backward()
    assert parameters_without_gradient(model) == []


def test_the_combinations_compute_what_they_say():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 5)
    mask = torch.rand(3, 1, 5, 5)
    mean = x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(apply_mask(x, mask, "multiply"), mask * x)
    torch.testing.assert_close(apply_mask(x, mask, "residual"), x + mask * x)
    filled = apply_mask(x, torch.zeros_like(mask), "mean_fill")  # everything removed: the frame's mean
    torch.testing.assert_close(filled, mean.expand_as(x))
    torch.testing.assert_close(apply_mask(x, torch.ones_like(mask), "mean_fill"), x)  # nothing removed
    with pytest.raises(ValueError, match="unknown mask combine"):
        apply_mask(x, mask, "add")


def test_a_motion_mask_sees_change_and_a_frame_mask_does_not():
    """Two clips whose frames are the same set in another order: a per-frame mask gives each frame the same
    mask wherever it stands; a motion mask depends on the neighbours."""
    torch.manual_seed(0)
    features = torch.randn(1, 5, 16, 8, 8)
    order = torch.tensor([4, 0, 3, 1, 2])
    for mask_input, same in (("frame", True), ("motion", False), ("clip", False)):
        model = with_trained_scale(build_model(tiny(mask_input=mask_input)).eval())
        with torch.no_grad():
            base = model(features=features).spatial_attention
            shuffled = model(features=features[:, order]).spatial_attention
        assert torch.allclose(base[:, order], shuffled, atol=1e-6) == same


def test_invalid_mask_options_are_named():
    with pytest.raises(ValueError, match=r"mask_input must be one of \('frame', 'motion', 'clip'\), got 'flow'"):
        tiny(mask_input="flow")
    with pytest.raises(ValueError, match="mask_activation must be one of"):
        tiny(mask_activation="relu")
    with pytest.raises(ValueError, match="mask_combine must be one of"):
        tiny(mask_combine="add")
    with pytest.raises(ValueError, match=r"cell_pool must be one of \('average', 'max', 'max_average'\), got 'sum'"):
        tiny(cell_pool="sum")


@pytest.mark.parametrize("mask_input,activation,combine", [("motion", "sigmoid", "mean_fill"),
                                                            ("clip", "sigmoid", "multiply"),
                                                            ("frame", "spatial_softmax", "residual")])
def test_onnxruntime_serves_the_variants_as_pytorch_computes_them(mask_input, activation, combine):
    torch.manual_seed(0)
    config = tiny(mask_input=mask_input, mask_activation=activation, mask_combine=combine)
    model = build_model(config).eval()
    graph = export_onnx(model)
    report = check_parity(model, graph.onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4))
    assert report.passed, report.failures


@pytest.mark.parametrize("pool,temporal", [("max", "recurrent"), ("max", "convlstm_first"), ("max", "none"),
                                           ("max_average", "recurrent"), ("max_average", "convlstm_first")])
def test_max_cell_pooling_trains_and_exports(pool, temporal):
    torch.manual_seed(0)
    config = tiny(cell_pool=pool, temporal_attention=temporal)
    model = build_model(config).train()
    out = model(torch.randn(2, 5, 3, 32, 32))
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 3])).backward()
    assert parameters_without_gradient(model) == []
    model.eval()
    report = check_parity(model, export_onnx(model).onnx_bytes, random_clips(4, config).clips, batch_sizes=(1, 4))
    assert report.passed, report.failures


def test_max_cell_pooling_keeps_a_one_cell_signal_that_average_pooling_dilutes():
    x = torch.zeros(1, 2, 8, 8)
    x[0, 0, 3, 5] = 1.0  # one cell of 64 lights up
    torch.testing.assert_close(pool_cells(x, "max"), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(pool_cells(x, "average"), torch.tensor([[1.0 / 64, 0.0]]))
    torch.testing.assert_close(pool_cells(x, "max_average"), torch.tensor([[0.5 + 0.5 / 64, 0.0]]))


def test_max_average_pooling_gives_every_cell_the_mask_keeps_a_gradient():
    # Under max alone a cell that is not the channel's strongest gets no gradient, so cross-entropy has no
    # reason to close the mask there; the average half reaches every cell.
    x = torch.rand(1, 2, 8, 8, requires_grad=True)
    for mode, cells_reached in (("max", 2), ("max_average", 128)):
        x.grad = None
        pool_cells(x, mode).sum().backward()
        assert int((x.grad != 0).sum()) == cells_reached, mode


def test_early_pooling_blends_into_the_configured_pooling_and_a_rebuilt_model_has_none():
    """`set_early_pool` (train.early_cell_pool): weight 1 pools as the early mode, 0 as the configured one, in
    between a blend; a model built from the same config (a checkpoint's) pools by its own mode alone."""
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=3, clip_length=4)
    max_config = tiny_model_config(num_classes=3, clip_length=4, cell_pool="max")
    model = build_model(config).eval()
    max_model = build_model(max_config).eval()
    max_model.load_state_dict(model.state_dict())  # pooling has no parameters: the same weights fit both
    clips = torch.randn(2, 4, 3, 32, 32)  # (B, T, 3, H, W), normalized
    average_logits, max_logits = model(clips).logits, max_model(clips).logits
    model.set_early_pool("max", 1.0)
    torch.testing.assert_close(model(clips).logits, max_logits)
    model.set_early_pool("max", 0.5)
    halfway = model(clips).logits
    assert not torch.allclose(halfway, average_logits) and not torch.allclose(halfway, max_logits)
    rebuilt = build_model(config).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(clips).logits, average_logits)
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        model.set_early_pool("max", 1.5)
    with pytest.raises(ValueError, match="unknown cell pool 'median'"):
        model.set_early_pool("median", 0.5)


def test_an_open_mask_gives_the_unmasked_answer_trains_no_mask_net_and_a_rebuilt_model_uses_its_mask():
    """`set_open_mask` (train.early_open_mask): weight 1 answers as M = 1 would and leaves the mask net without
    gradient, 0.5 is a blend, and a model built from the same config (a checkpoint's) meets its own mask."""
    torch.manual_seed(0)
    config = tiny_model_config(num_classes=3, clip_length=4, channel_dropout=0.0)
    model = build_model(config).eval()
    unmasked = build_model(tiny_model_config(num_classes=3, clip_length=4, channel_dropout=0.0,
                                             spatial_attention=False)).eval()
    unmasked.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("spatial.")})
    clips = torch.randn(2, 4, 3, 32, 32)  # (B, T, 3, H, W), normalized
    masked_logits = model(clips).logits
    model.set_open_mask(1.0)
    out = model(clips)
    torch.testing.assert_close(out.logits, unmasked(clips).logits)
    out.logits.sum().backward()
    assert all(p.grad is None for p in model.spatial.parameters())
    assert out.spatial_attention.min() < 1.0  # the mask itself is still computed (the regularizers read it)
    model.set_open_mask(0.5)
    halfway = model(clips).logits
    assert not torch.allclose(halfway, masked_logits) and not torch.allclose(halfway, out.logits)
    rebuilt = build_model(config).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(clips).logits, masked_logits)
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        model.set_open_mask(1.5)


def test_clips_left_out_of_the_mask_gradient_answer_the_same_and_do_not_move_the_mask():
    """`set_mask_gradient_samples` (train.background_moves_mask=false): the answers are unchanged, a clip left
    out sends no gradient to the mask net through its answer, a kept clip does."""
    torch.manual_seed(0)
    model = build_model(tiny_model_config(num_classes=3, clip_length=4, channel_dropout=0.0)).eval()
    clips = torch.randn(2, 4, 3, 32, 32)  # (B, T, 3, H, W), normalized
    expected = model(clips).logits
    model.set_mask_gradient_samples(torch.tensor([True, False]))
    for sample, reaches_mask in ((0, True), (1, False)):
        model.zero_grad(set_to_none=True)
        out = model(clips)
        torch.testing.assert_close(out.logits, expected)
        out.logits[sample].sum().backward()
        grads = [p.grad for p in model.spatial.parameters()]
        assert any(g is not None and bool(g.abs().sum() > 0) for g in grads) == reaches_mask, sample
    model.zero_grad(set_to_none=True)
    model(clips).spatial_attention[1].mean().backward()  # a regularizer on the left-out clip's mask still acts
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.spatial.parameters())


def running_statistics(model) -> dict[str, torch.Tensor]:
    """A copy of every BatchNorm running mean and variance."""
    return {n: b.clone() for n, b in model.named_buffers() if "running" in n}


def restore_statistics(model, statistics: dict[str, torch.Tensor]) -> None:
    for n, b in model.named_buffers():
        if n in statistics:
            b.copy_(statistics[n])


def assert_statistics_equal(model, expected: dict[str, torch.Tensor]) -> None:
    for n, b in model.named_buffers():
        if n in expected:
            torch.testing.assert_close(b, expected[n], msg=n)


@pytest.mark.parametrize("combine", ["multiply", "mean_fill"])
def test_the_complement_answers_from_what_the_mask_removes_and_its_gradient_reaches_the_mask_alone(combine):
    """`set_complement` (train.loss.mask_complement): the layers after the mask, run on (1 - M) in place of M
    with their weights held fixed, so a loss on the complement can only move the mask (and, through the mask
    net's input, the trunk), never teach the classifier to ignore the complement."""
    torch.manual_seed(0)
    model = build_model(tiny(mask_combine=combine, projection_channels=6)).train()
    clips = torch.randn(2, 5, 3, 32, 32)  # (B, T, 3, H, W), normalized
    assert model(clips).complement_logits is None  # off unless asked for: a served model never computes it
    model.set_complement(True)
    statistics = running_statistics(model)
    out = model(clips)
    assert out.complement_logits.shape == out.logits.shape == (2, 4)
    out.complement_logits.logsumexp(dim=-1).sum().backward()
    reached = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached == {"backbone", "spatial"}, reached
    # The complement pass leaves the running statistics as the masked pass alone would leave them.
    model.set_complement(False)
    restore_statistics(model, statistics)
    model(clips)
    again = running_statistics(model)
    restore_statistics(model, statistics)
    model.set_complement(True)
    model(clips)
    assert_statistics_equal(model, again)


def test_the_complement_of_a_closed_mask_is_the_whole_frame():
    """M = 0 removes everything, so the complement sees every feature: with the mask net's output forced
    closed, complement_logits are the logits of the same model with the mask forced open."""
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    clips = torch.randn(2, 5, 3, 32, 32)
    last = model.spatial.net[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, 40.0)  # sigmoid(40) = 1: everything kept
    kept = model(clips).logits
    torch.nn.init.constant_(last.bias, -40.0)  # everything removed
    model.set_complement(True)
    torch.testing.assert_close(model(clips).complement_logits, kept)


def test_a_complement_without_a_removing_mask_is_refused_with_what_it_needs():
    for config in (tiny(spatial_attention=False), tiny(mask_combine="residual")):
        with pytest.raises(ValueError, match="mask_complement needs a spatial mask that removes"):
            build_model(config).set_complement(True)
    with pytest.raises(ValueError, match="train.loss.mask_complement needs a spatial mask"):
        resolve_run_config("synthetic", overrides=["train.loss.mask_complement=1", "model.mask_combine=residual"])


def test_the_open_answer_reads_whole_frames_trains_the_head_and_leaves_the_mask_and_statistics_alone():
    """`set_open_answer` (train.loss.open_classification): the answer with the mask held open, so the layers
    after the mask also learn to read evidence the mask leaves out; no gradient to the mask net, and BatchNorm's
    running statistics stay those of the masked pass."""
    torch.manual_seed(0)
    model = build_model(tiny(mask_activation="spatial_softmax", projection_channels=6)).train()
    clips = torch.randn(2, 5, 3, 32, 32)  # (B, T, 3, H, W), normalized
    assert model(clips).open_logits is None  # off unless asked for: a served model never computes it
    statistics = running_statistics(model)
    model.set_open_answer(True)
    out = model(clips)
    assert out.open_logits.shape == out.logits.shape == (2, 4)
    masked_only = running_statistics(model)
    restore_statistics(model, statistics)
    model.set_open_answer(False)
    model(clips)
    assert_statistics_equal(model, masked_only)
    model.set_open_answer(True)
    model.zero_grad(set_to_none=True)
    model(clips).open_logits.logsumexp(dim=-1).sum().backward()
    reached = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached == {"backbone", "projection", "temporal", "classifier"}, reached
    model.eval()  # the open answer is the model's answer with the mask forced open
    last = model.spatial.net[-1]
    torch.nn.init.zeros_(last.weight)  # equal scores: the spatial softmax is 1 everywhere
    out = model(clips)
    torch.testing.assert_close(out.open_logits, out.logits)


def test_an_open_answer_without_a_mask_is_refused_with_what_it_needs():
    with pytest.raises(ValueError, match="open_classification needs a spatial mask"):
        build_model(tiny(spatial_attention=False)).set_open_answer(True)
    with pytest.raises(ValueError, match="train.loss.open_classification needs a spatial mask"):
        resolve_run_config("synthetic", overrides=["train.loss.open_classification=1", "model.spatial_attention=false"])


def test_a_clip_mask_sees_what_the_rest_of_the_clip_holds():
    """Two clips that share their first three frames and differ after: the clip mask of those frames differs
    (the clip's mean reaches them), the motion mask of the first two does not (it sees one neighbour)."""
    torch.manual_seed(0)
    features = torch.randn(1, 6, 16, 8, 8)
    other = torch.cat([features[:, :3], torch.randn(1, 3, 16, 8, 8)], dim=1)
    for mask_input, same in (("motion", True), ("clip", False)):
        model = with_trained_scale(build_model(tiny(mask_input=mask_input, clip_length=6)).eval())
        with torch.no_grad():
            base = model(features=features).spatial_attention[:, :2]
            changed = model(features=other).spatial_attention[:, :2]
        assert torch.allclose(base, changed, atol=1e-6) == same
