"""A trunk written under torchvision's names (bench/trunk_file.py) is the trunk: torchvision's ResNet reads it and
computes the same maps, and `train.backbone_weights` (load_backbone_weights) puts back every tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import models

from bench.trunk_file import main as trunk_file_main
from stanet.checkpoint import save_checkpoint
from stanet.config import ModelConfig
from stanet.dataset_format import write_dataset
from stanet.model import build_model
from stanet.model.backbone import ResNetTrunk, load_backbone_weights, torchvision_state_dict
from stanet.video import write_video


def _resnet_model(seed: int):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(num_classes=3, clip_length=2, height=64, width=64, backbone="resnet18",
                                    hidden_channels=8, attention_dim=8))
    for module in model.backbone.modules():  # statistics of a trunk that trained, not the initial 0 / 1
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_torchvision_reads_the_trunk_and_computes_the_same_map(tmp_path):
    model = _resnet_model(0)
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(checkpoint, model, ["a", "b", "c"])
    out = tmp_path / "runs" / "new" / "trunk.pth"  # a folder that does not exist yet is made
    assert trunk_file_main(["--checkpoint", str(checkpoint), "--out", str(out)]) == 0

    state = torch.load(out, weights_only=True)
    assert "conv1.weight" in state and "bn1.running_var" in state and not any(k.startswith("stem.") for k in state)
    net = models.resnet18(weights=None)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert set(missing) == {"fc.weight", "fc.bias"} and not unexpected
    net.eval()
    frames = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = model.backbone(frames)
        theirs = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(frames))))))))
    assert torch.equal(ours, theirs)

    other = _resnet_model(1)
    assert not torch.equal(other.backbone.stem[0].weight, model.backbone.stem[0].weight)
    load_backbone_weights(other.backbone, out)
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(other.backbone.state_dict()[key], value), key


def test_a_compact_trunk_or_a_missing_checkpoint_is_refused(tmp_path, capsys):
    compact = build_model(ModelConfig(num_classes=3, clip_length=2, height=32, width=32, backbone_width=8,
                                      hidden_channels=8, attention_dim=8))
    with pytest.raises(ValueError, match="resnet18/resnet50"):
        torchvision_state_dict(compact.backbone)
    checkpoint = tmp_path / "compact.pt"
    save_checkpoint(checkpoint, compact, ["a", "b", "c"])
    assert trunk_file_main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "t.pth")]) == 2
    assert "resnet18/resnet50" in capsys.readouterr().err
    assert not (tmp_path / "t.pth").exists()
    assert trunk_file_main(["--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "t.pth")]) == 2
    assert "none.pt" in capsys.readouterr().err


def _two_colour_dataset(root, *, train_per_class: int = 3):
    """Clips of a red or a blue square on grey, as encoded videos in the dataset layout."""
    records = []
    for label, colour in (("red", (220, 40, 40)), ("blue", (40, 60, 230))):
        for n in range(train_per_class + 1):
            frames = np.full((4, 32, 32, 3), 110, np.uint8)
            for t in range(4):
                frames[t, 8 + t:18 + t, 6 + 2 * t:16 + 2 * t] = colour
            video = f"videos/{label}/{n}.mp4"
            write_video(root / video, frames, fps=10, crf=12)
            records.append({"video": video, "label": label, "split": "val" if n == train_per_class else "train"})
    write_dataset(root, ["red", "blue"], records)


def test_a_pretrained_trunk_is_written_under_torchvision_names_and_loads(tmp_path, capsys):
    _two_colour_dataset(tmp_path / "data")
    out = tmp_path / "trunk.pth"
    assert trunk_file_main(["--pretrain", str(tmp_path / "data"), "--size", "32", "--epochs", "2",
                            "--frame-stride", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch 2/2: 24 frames" in printed and "val frame accuracy" in printed
    state = torch.load(out, weights_only=True)
    assert "fc.weight" not in state and "conv1.weight" in state
    model = _resnet_model(0)
    before = model.backbone.stem[0].weight.clone()
    load_backbone_weights(model.backbone, out)
    assert torch.equal(model.backbone.stem[0].weight, state["conv1.weight"])
    assert not torch.equal(before, state["conv1.weight"])
    torch.manual_seed(0)  # the trunk the tool starts from (--seed 0): training moved every conv away from it
    initial = torchvision_state_dict(ResNetTrunk("resnet18"))
    assert set(initial) == set(state)
    assert not torch.equal(initial["conv1.weight"], state["conv1.weight"])
    assert not torch.equal(initial["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])


def test_pretraining_refuses_a_dataset_without_train_clips(tmp_path, capsys):
    write_dataset(tmp_path / "empty", ["a"], [])
    assert trunk_file_main(["--pretrain", str(tmp_path / "empty"), "--out", str(tmp_path / "t.pth")]) == 2
    assert "train split has no labelled clips" in capsys.readouterr().err
    assert not (tmp_path / "t.pth").exists()
    assert trunk_file_main(["--pretrain", str(tmp_path / "none"), "--out", str(tmp_path / "t.pth")]) == 2
    assert "none" in capsys.readouterr().err
