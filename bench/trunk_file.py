"""A ResNet trunk that learned, as a torchvision state-dict file (the file `train.backbone_weights` reads).

With no ImageNet weights on the machine, the benchmark's ResNet-18 models need a trunk whose activations have
the structure a trained network's have (a random trunk gives heads without margins, which every reduced-
precision gate refuses). Two sources:

    # a torchvision ResNet trained here as a frame classifier on a dataset's train split
    python -m bench.trunk_file --pretrain data/colour --size 224 --epochs 4 --out runs/r18-trunk.pth
    # the trunk of a stanet checkpoint (e.g. one trained whole at a small input size)
    python -m bench.trunk_file --checkpoint RUN/best.pt --out trunk.pth

docs/benchmark.md, "ResNet-18 with a trunk that learned", has the measurements made with the first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stanet.atomic import atomic_path
from stanet.checkpoint import CheckpointError, load_checkpoint
from stanet.config import BACKBONES
from stanet.dataset_format import AnnotatedDataset, DatasetFormatError, load_dataset
from stanet.model.backbone import ResNetTrunk, torchvision_state_dict
from stanet.model.preprocess import normalize_clip
from stanet.video import read_video

ARCHS = tuple(name for name in BACKBONES if name.startswith("resnet"))  # the trunks with torchvision names


def checkpoint_trunk(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The trunk of a resnet18/resnet50 stanet checkpoint under torchvision's names."""
    return torchvision_state_dict(load_checkpoint(checkpoint).build_model().backbone)


def _frames(dataset: AnnotatedDataset, split: str, size: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every `stride`-th frame of a split's trimmed clips: (N, 3, size, size) normalized, (N,) label indices."""
    records = [record for record in dataset.split(split) if not record.untrimmed]
    if not records:
        raise ValueError(f"{dataset.root}: the {split} split has no labelled clips to pretrain on")
    images, labels = [], []
    for record in records:
        frames = read_video(record.video).frames[::stride]  # (T', H, W, 3) uint8
        x = normalize_clip(torch.from_numpy(np.ascontiguousarray(frames))[None])[0]  # (T', 3, H, W)
        images.append(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False))
        labels += [record.label_index] * len(frames)
    return torch.cat(images), torch.tensor(labels)


def pretrain_trunk(root: str | Path, *, arch: str = "resnet18", size: int = 224, epochs: int = 4,
                   frame_stride: int = 4, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                   say=print) -> dict[str, torch.Tensor]:
    """Train a torchvision ResNet (global pooling + linear classifier) on single frames of `root`'s train
    split, labelled with their clip's class; returns its trunk's state dict (the classifier dropped)."""
    if arch not in ARCHS:
        raise ValueError(f"--arch {arch!r}: expected one of {ARCHS}")
    dataset = load_dataset(root)
    train_x, train_y = _frames(dataset, "train", size, frame_stride)
    val_x, val_y = _frames(dataset, "val", size, frame_stride) if dataset.split("val") else (None, None)
    torch.manual_seed(seed)
    trunk = ResNetTrunk(arch)
    classifier = torch.nn.Linear(trunk.out_channels, len(dataset.class_names))
    net = torch.nn.Sequential(trunk, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), classifier)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * -(-len(train_x) // batch_size)
    # cosine to zero: at a constant rate the last epoch's trunk can be a bad one (frame accuracy swings by 40 points)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        net.train()
        order = torch.randperm(len(train_x))
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            loss = F.cross_entropy(net(train_x[batch]), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        line = f"epoch {epoch}/{epochs}: {len(train_x)} frames, last batch loss {loss.item():.3f}"
        if val_x is not None:
            net.eval()
            with torch.no_grad():
                correct = sum(int((net(val_x[i:i + 64]).argmax(1) == val_y[i:i + 64]).sum())
                              for i in range(0, len(val_x), 64))
            line += f", val frame accuracy {correct / len(val_x):.1%}"
        say(f"{line} [{time.perf_counter() - start:.0f} s]")
    return torchvision_state_dict(trunk)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trunk_file", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a resnet18/resnet50 stanet checkpoint (best.pt)")
    source.add_argument("--pretrain", metavar="DATA", help="a dataset whose train split's frames train the trunk")
    parser.add_argument("--out", required=True, help="the state-dict file to write")
    parser.add_argument("--arch", default="resnet18", choices=ARCHS, help="with --pretrain")
    parser.add_argument("--size", type=int, default=224, help="with --pretrain: square input side")
    parser.add_argument("--epochs", type=int, default=4, help="with --pretrain")
    parser.add_argument("--frame-stride", type=int, default=4, help="with --pretrain: every n-th frame of a clip")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 32 or args.epochs < 1 or args.frame_stride < 1:
        parser.error(f"--size {args.size} --epochs {args.epochs} --frame-stride {args.frame_stride}: expected a "
                     "size of at least 32, at least 1 epoch and a stride of at least 1")
    try:
        # Before the pretraining: a folder that cannot be made fails now, not after minutes of training.
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if args.checkpoint:
            state, source_name = checkpoint_trunk(args.checkpoint), args.checkpoint
        else:
            state = pretrain_trunk(args.pretrain, arch=args.arch, size=args.size, epochs=args.epochs,
                                   frame_stride=args.frame_stride, seed=args.seed)
            source_name = f"a {args.arch} pretrained on {args.pretrain}'s frames"
    except (CheckpointError, DatasetFormatError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with atomic_path(args.out) as partial:
        torch.save(state, partial)
    print(f"wrote {args.out}: {len(state)} tensors of the trunk of {source_name} under torchvision's names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
