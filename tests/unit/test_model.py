"""The recognizer: shapes, ranges, gradients, ablation switches and bad input."""

from __future__ import annotations

import pytest
import torch

from tiny import tiny_model_config
from stanet.config import ModelConfig
from stanet.model import build_model
from stanet.model.preprocess import normalize_clip


def tiny(**kw) -> ModelConfig:
    return tiny_model_config(**{"num_classes": 5, "clip_length": 6, **kw})


@pytest.mark.parametrize("T,H,W", [(1, 32, 32), (4, 32, 48), (9, 48, 40), (16, 64, 64)])
@pytest.mark.parametrize("temporal", ["recurrent", "convlstm_first", "none"])
def test_shapes_ranges_and_normalization(T, H, W, temporal):
    torch.manual_seed(0)
    model = build_model(tiny(clip_length=T, height=H, width=W, temporal_attention=temporal)).eval()
    out = model(torch.randn(3, T, 3, H, W))
    h, w = model.feature_map_size()
    assert (h, w) == (H // 4, W // 4)
    assert out.logits.shape == (3, 5)
    assert out.spatial_attention.shape == (3, T, h, w)
    assert out.temporal_attention.shape == (3, T)
    steps = 1 if temporal == "convlstm_first" else T
    assert out.temporal_attention_steps.shape == (3, steps, T)
    for tensor in (out.logits, out.spatial_attention, out.temporal_attention):
        assert torch.isfinite(tensor).all()
    assert out.spatial_attention.min() >= 0 and out.spatial_attention.max() <= 1
    torch.testing.assert_close(out.temporal_attention.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(out.temporal_attention_steps.sum(dim=2), torch.ones(3, steps))


def test_resnet18_backbone_shapes():
    model = build_model(ModelConfig(num_classes=4, clip_length=2, height=64, width=64, backbone="resnet18",
                                    hidden_channels=8, attention_dim=8, projection_channels=16)).eval()
    out = model(torch.randn(1, 2, 3, 64, 64))
    assert out.spatial_attention.shape == (1, 2, 2, 2)
    assert model.backbone.out_channels == 512


@pytest.mark.parametrize("temporal", ["recurrent", "convlstm_first", "none"])
@pytest.mark.parametrize("projection", [0, 6])
def test_every_parameter_gets_a_gradient(temporal, projection):
    torch.manual_seed(0)
    model = build_model(tiny(temporal_attention=temporal, projection_channels=projection, channel_dropout=0.0))
    model.train()
    out = model(torch.randn(2, 6, 3, 32, 32))
    # The classification loss alone must reach every parameter, the temporal scores included: the
    # official code cut them out of the graph.
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 3])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or p.grad.abs().sum() == 0]
    assert missing == []


def test_hidden_state_changes_the_attention():
    """With the tanh, H_{s-1} changes the scores, so the weights differ between steps (they would be
    identical in every step if the hidden term cancelled in the softmax, as in the official code)."""
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    for layer in (model.temporal.score_frame, model.temporal.score_hidden, model.temporal.score_out):
        torch.nn.init.normal_(layer.weight, std=2.0)  # trained-like score scale
    clip = torch.randn(2, 6, 3, 32, 32) * torch.linspace(0.2, 3.0, 6).view(1, 6, 1, 1, 1)  # frames differ
    steps = model(clip).temporal_attention_steps  # (B, S, T)
    assert (steps[:, 1:] - steps[:, :1]).abs().max() > 1e-3


def test_ablation_switches():
    torch.manual_seed(0)
    no_spatial = build_model(tiny(spatial_attention=False)).eval()
    out = no_spatial(torch.randn(2, 6, 3, 32, 32))
    assert torch.equal(out.spatial_attention, torch.ones_like(out.spatial_attention))
    no_temporal = build_model(tiny(temporal_attention="none")).eval()
    out = no_temporal(torch.randn(2, 6, 3, 32, 32))
    torch.testing.assert_close(out.temporal_attention, torch.full((2, 6), 1 / 6))


def test_frozen_backbone_keeps_weights_and_statistics():
    model = build_model(tiny(freeze_backbone=True)).train()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    assert not model.backbone.training
    model(torch.randn(2, 6, 3, 32, 32)).logits.sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_wrong_input_shape_is_named():
    model = build_model(tiny())
    with pytest.raises(ValueError, match=r"clip must be \(B, 6, 3, 32, 32\).*got shape \(2, 5, 3, 32, 32\)"):
        model(torch.randn(2, 5, 3, 32, 32))
    with pytest.raises(ValueError, match="got shape"):
        model(torch.randn(6, 3, 32, 32))


def test_invalid_config_is_named():
    with pytest.raises(ValueError, match="temporal_attention must be one of"):
        tiny(temporal_attention="lstm")
    with pytest.raises(ValueError, match="backbone must be one of"):
        tiny(backbone="vgg")
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_dict({"num_classes": 3, "hiden_channels": 4})


def test_normalize_clip_layout_and_values():
    clip = torch.zeros(1, 2, 4, 5, 3, dtype=torch.uint8)
    clip[..., 0] = 255
    x = normalize_clip(clip)
    assert x.shape == (1, 2, 3, 4, 5)
    torch.testing.assert_close(x[0, 0, 0, 0, 0], torch.tensor((1 - 0.485) / 0.229))
    torch.testing.assert_close(x[0, 0, 1, 0, 0], torch.tensor((0 - 0.456) / 0.224))


def test_pretrained_weights_load_from_a_local_file_and_mismatches_are_named(tmp_path):
    from torchvision.models import resnet18

    from stanet.model.backbone import load_backbone_weights

    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    config = ModelConfig(num_classes=3, clip_length=2, height=32, width=32, backbone="resnet18", hidden_channels=8,
                         attention_dim=8)
    model = build_model(config, backbone_weights=tmp_path / "resnet18.pth")
    assert torch.equal(model.backbone.stem[0].weight, reference.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model(config, backbone_weights=tmp_path / "missing.pth")
    wrong = build_model(ModelConfig(**{**config.to_dict(), "backbone": "resnet50"})).backbone
    with pytest.raises(ValueError, match="does not fit this architecture: .*of the wrong shape"):
        load_backbone_weights(wrong, tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match="only be loaded into the resnet18/resnet50"):
        build_model(tiny(), backbone_weights=tmp_path / "resnet18.pth")
