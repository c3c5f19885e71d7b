"""Per-frame 2D CNN trunks: (N, 3, H, W) normalized frames -> (N, C, h, w) feature maps."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from stanet.config import ModelConfig
from stanet.model.state_dict import compare_state_dicts


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CompactTrunk(nn.Module):
    """Three 3x3 conv-BN-ReLU layers and two 2x2 max-pools: output stride 4, 2*width channels, small enough
    to train end to end on 2 CPU cores (32x32 frames -> 8x8 maps).

    Stride-1 convs with symmetric padding and 2x2 pooling keep feature cell i centred on pixel 4i + 2 (in
    continuous coordinates), exactly where bilinear upsampling of the mask puts it; stride-2 3x3 convs would
    centre it 1.5 pixels up-left. The receptive field is kept to 18 pixels: with a field as wide as the
    frame, a cell next to the actor encodes it as well as the actor's own cell, and the mask drifted a cell
    off the actor."""

    def __init__(self, width: int, in_channels: int = 3):
        super().__init__()
        self.out_channels = 2 * width
        self.layers = nn.Sequential(
            conv_bn_relu(in_channels, width),
            nn.MaxPool2d(2),
            conv_bn_relu(width, 2 * width),
            nn.MaxPool2d(2),
            conv_bn_relu(2 * width, 2 * width),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.layers(frames)


class ResNetTrunk(nn.Module):
    """A torchvision ResNet without its pooling and classifier: the last conv stage's map
    (512 x 7 x 7 for resnet18, 2048 x 7 x 7 for resnet50 at 224x224). `in_channels` > 3 widens the first
    conv (trunk_input=motion); ImageNet weights then fill its first 3 input channels (load_backbone_weights)."""

    def __init__(self, arch: str, in_channels: int = 3):
        super().__init__()
        from torchvision import models  # only the ResNet trunks need torchvision

        net = getattr(models, arch)(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.out_channels = net.fc.in_features
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.stem(frames)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def trunk_in_channels(config: ModelConfig) -> int:
    """3 colour channels, plus the 3 of the stabilized motion with trunk_input=motion or difference."""
    return 3 if config.trunk_input == "frame" else 6


def build_backbone(config: ModelConfig) -> nn.Module:
    if config.backbone == "compact":
        return CompactTrunk(config.backbone_width, trunk_in_channels(config))
    return ResNetTrunk(config.backbone, trunk_in_channels(config))


# torchvision's names of the stem (conv1.*, bn1.*) -> this trunk's (stem.0.*, stem.1.*); layerN.* are the same.
TORCHVISION_NAMES = (("conv1.", "stem.0."), ("bn1.", "stem.1."))


def _rename(key: str, pairs) -> str:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def torchvision_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """A ResNet trunk's weights under torchvision's names, the file `train.backbone_weights` reads: a trunk
    trained here (e.g. at a small input size, where training it whole is affordable) reused by another run."""
    if not isinstance(backbone, ResNetTrunk):
        raise ValueError("only the resnet18/resnet50 trunks have torchvision names")
    back = tuple((new, old) for old, new in TORCHVISION_NAMES)
    return {_rename(key, back): value.detach().clone() for key, value in backbone.state_dict().items()}


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load ImageNet weights for a ResNet trunk from a local torchvision state-dict file (nothing is ever
    downloaded). The file's `fc.*` entries are ignored; any other missing or mis-shaped tensor is an error."""
    path = Path(path)
    if not isinstance(backbone, ResNetTrunk):
        raise ValueError("pretrained weights can only be loaded into the resnet18/resnet50 backbones")
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user error
        raise ValueError(f"backbone weights file {path} is not a loadable state dict: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"backbone weights file {path} holds a {type(state).__name__}, expected a state dict")
    renamed = {_rename(key, TORCHVISION_NAMES): value for key, value in state.items() if not key.startswith("fc.")}
    own = backbone.state_dict()
    stem = "stem.0.weight"
    if stem in renamed and stem in own and own[stem].shape[1] > renamed[stem].shape[1] == 3:
        # A motion trunk: ImageNet's filters read the colour channels, the difference channels start at 0
        # (the pretrained trunk's first output is unchanged until training gives them weight).
        widened = own[stem].new_zeros(own[stem].shape)
        widened[:, :3] = renamed[stem]
        renamed[stem] = widened
    mismatch = compare_state_dicts(own, renamed)
    if mismatch:
        raise ValueError(f"backbone weights file {path} does not fit this architecture: "
                         + mismatch.describe(own, renamed, "file"))
    backbone.load_state_dict(renamed)
