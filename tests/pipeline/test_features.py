"""The feature cache (training/features/) and the trunk options: features read back equal the trunk's output,
an interrupted or killed extraction resumes to the clean result and never shows a partial shard, a cache of
another configuration or a damaged shard is refused by name, a run trained on the cache lowers its loss and
writes a complete model, the trunk's learning-rate multiplier, and weights files that do not fit."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import PROJECT
from tiny import tiny_model_config
from stanet.checkpoint import load_checkpoint, save_checkpoint
from stanet.config import ModelConfig
from stanet.dataset_format import load_dataset
from stanet.model import build_model
from stanet.model.preprocess import normalize_clip
from training.config import TrainConfig
from training.data import ClipDataset, ClipSpec
from training.evaluate import fit_cam_classifier, main as evaluate_main
from training.features.cache import (INDEX_FILE, FeatureCacheError, open_shard, read_index, shard_name,
                                     write_shard)
from training.features.dataset import FeatureDataset, open_cache_for_training
from training.features.extract import main as extract_main
from training.optim import build_optimizer
from training.train import main as train_main

TRUNK = tiny_model_config(num_classes=8, clip_length=8)
# The model section of a run on the trunk's cache (freeze_backbone: a cache run needs a frozen trunk).
CACHE_RUN = ["model.clip_length=8", "model.height=32", "model.width=32", "model.backbone_width=8",
             "model.hidden_channels=8", "model.attention_dim=8", "model.freeze_backbone=true",
             "train.batch_size=8", "train.max_minutes=0"]


def sets(items: list[str]) -> list[str]:
    """The `plain` preset (the dataclass defaults, whatever the default recipe is) and `--set` each item."""
    return ["--preset", "plain", *(arg for item in items for arg in ("--set", item))]


def extract(data: Path, out: Path, *args: str) -> int:
    return extract_main(["--data", str(data), "--out", str(out), "--quiet", *args])


@pytest.fixture(scope="module")
def trunk_checkpoint(tiny_dataset, tmp_path_factory) -> Path:
    """A stanet checkpoint whose compact trunk the cache is made from: random (seeded) convolutions, with the
    BatchNorm statistics of 16 training clips, so the features have the scale a trained trunk gives."""
    torch.manual_seed(0)
    model = build_model(TRUNK)
    clips = ClipDataset(load_dataset(tiny_dataset).split("train")[:16], ClipSpec(8, 32, 32), train=False,
                        progress=False)
    for module in model.backbone.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the batch
    with torch.no_grad():
        model.train().forward_features(normalize_clip(torch.stack([clips[i]["clip"] for i in range(16)])))
    path = tmp_path_factory.mktemp("trunk") / "trunk.pt"
    save_checkpoint(path, model, [f"class{i}" for i in range(8)])
    return path


@pytest.fixture(scope="module")
def clean_cache(tiny_dataset, trunk_checkpoint, tmp_path_factory) -> Path:
    """train + val of the tiny dataset (64 clips), 16 clips per shard, float16, in one uninterrupted run."""
    out = tmp_path_factory.mktemp("cache") / "clean"
    assert extract(tiny_dataset, out, "--checkpoint", str(trunk_checkpoint), "--clips-per-shard", "16") == 0
    return out


def cache_files(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.iterdir())}


@torch.no_grad()
def direct_features(model, dataset_dir: Path, split: str) -> tuple[torch.Tensor, list[dict]]:
    """The trunk run directly on ClipDataset's evaluation clips: what the cache must hold."""
    cfg = model.config
    clips = ClipDataset(load_dataset(dataset_dir).split(split), ClipSpec(cfg.clip_length, cfg.height, cfg.width),
                        train=False, progress=False)
    samples = [clips[i] for i in range(len(clips))]
    batch = normalize_clip(torch.stack([s["clip"] for s in samples]))  # (N, T, 3, H, W)
    return model.eval().forward_features(batch), samples  # (N, T, C, h, w)


def test_cached_features_equal_the_trunk_output(clean_cache, tiny_dataset, trunk_checkpoint):
    index = read_index(clean_cache)
    assert index.complete and index.total_shards == 4 and len(index.clips) == 64
    assert index.header.feature_shape == (8, 16, 8, 8) and index.header.dtype == "float16"
    expected, samples = direct_features(load_checkpoint(trunk_checkpoint).build_model(), tiny_dataset, "val")
    cached = FeatureDataset(clean_cache, index, "val")
    assert len(cached) == 16
    got = torch.stack([cached[i]["features"] for i in range(len(cached))])
    assert got.dtype == torch.float16 and got.shape == expected.shape
    # float16 keeps 11 significant bits: relative error <= 2^-11 of each value
    assert torch.allclose(got.float(), expected, rtol=2 ** -10, atol=1e-4), (got.float() - expected).abs().max()
    assert expected.abs().max() > 0.1 and (expected > 0).float().mean() > 0.2  # real features, not zeros
    for i, sample in enumerate(samples):
        item = cached[i]
        assert int(item["label"]) == int(sample["label"])
        assert torch.equal(item["inside"], sample["inside"]) and torch.equal(item["frame_indices"],
                                                                             sample["frame_indices"])
        assert torch.allclose(item["boxes"], sample["boxes"], equal_nan=True)
    assert any(item["inside"].any() for item in (cached[i] for i in range(16)))  # intervals made it


def test_float32_resnet18_cache_from_a_weights_file(tiny_dataset, tmp_path):
    """The run-configuration path: a ResNet-18 trunk with a torchvision weights file of our own (no download)."""
    from torchvision.models import resnet18

    torch.manual_seed(1)
    weights = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), weights)
    config = ["model.backbone=resnet18", "model.clip_length=4", "model.height=32", "model.width=32",
              f"train.backbone_weights={weights}"]
    out = tmp_path / "cache"
    assert extract(tiny_dataset, out, *sets(config), "--split", "val", "--dtype", "float32") == 0
    index = read_index(out)
    assert index.header.model == {"backbone": "resnet18", "clip_length": 4, "height": 32, "width": 32}
    assert index.header.feature_shape == (4, 512, 1, 1) and index.header.splits == ("val",)
    assert str(weights) in index.header.backbone_source
    model = build_model(ModelConfig(num_classes=8, backbone="resnet18", clip_length=4, height=32, width=32),
                        backbone_weights=weights)
    expected, _ = direct_features(model, tiny_dataset, "val")
    cached = FeatureDataset(out, index, "val")
    got = torch.stack([cached[i]["features"] for i in range(len(cached))])
    assert got.dtype == torch.float32 and torch.allclose(got, expected, atol=1e-5)


def test_interrupted_extraction_resumes_to_the_clean_result(clean_cache, tiny_dataset, trunk_checkpoint, tmp_path):
    out = tmp_path / "resumed"
    args = ["--checkpoint", str(trunk_checkpoint), "--clips-per-shard", "16"]
    assert extract(tiny_dataset, out, *args, "--max-shards", "1") == 0
    index = read_index(out)
    assert not index.complete and len(index.shards) == 1 and len(index.clips) == 16
    with pytest.raises(FeatureCacheError, match=r"incomplete \(1 of 4 shards\)"):
        open_cache_for_training(out, {}, TrainConfig())
    # What a crash leaves: a shard renamed into place but not yet indexed, and a temp file of the next one.
    (out / shard_name(1)).write_bytes(b"renamed before the index was updated")
    (out / f".{shard_name(2)}.abc123.tmp").write_bytes(b"half a shard")
    assert extract(tiny_dataset, out, *args, "--max-shards", "2") == 0
    assert len(read_index(out).shards) == 3
    assert extract(tiny_dataset, out, *args) == 0
    assert cache_files(out) == cache_files(clean_cache)  # byte for byte: index, trunk weights, every shard


def test_killed_extraction_leaves_only_whole_shards(tiny_dataset, trunk_checkpoint, clean_cache, tmp_path):
    """SIGKILL at whatever moment: every visible shard is whole, the index lists only whole shards, and the
    same command then finishes the cache."""
    out = tmp_path / "killed"
    options = ["--checkpoint", str(trunk_checkpoint), "--clips-per-shard", "1"]
    command = [sys.executable, "-m", "stanet", "features", "extract", "--data", str(tiny_dataset), "--out", str(out),
               "--quiet", *options]
    process = subprocess.Popen(command, cwd=PROJECT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (out / INDEX_FILE).is_file() and len(read_index(out).shards) >= 3:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    index = read_index(out)
    assert 3 <= len(index.shards) < 64, "killed mid-run"
    for shard in sorted(out.glob("shard-*.npy")):
        array = np.load(shard, allow_pickle=False)  # raises on a partial file
        assert array.shape[1:] == index.header.feature_shape
    for shard in index.shards:
        open_shard(out / shard["file"], shard["clips"], index.header)
    assert extract(tiny_dataset, out, *options) == 0
    assert read_index(out).complete and not list(out.glob(".*.tmp"))
    clean = read_index(clean_cache)
    resumed = read_index(out)
    ours = FeatureDataset(out, resumed, "train")
    theirs = FeatureDataset(clean_cache, clean, "train")
    assert len(ours) == len(theirs) == 48
    assert all(torch.equal(ours[i]["features"], theirs[i]["features"]) for i in range(0, 48, 7))


def test_unreadable_videos_are_reported_and_skipped(tiny_dataset, trunk_checkpoint, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    val = load_dataset(data).split("val")
    val[2].video.write_bytes(b"not a video at all")
    val[5].video.unlink()
    out = tmp_path / "cache"
    assert extract(data, out, "--checkpoint", str(trunk_checkpoint), "--split", "val", "--clips-per-shard", "4") == 0
    assert "14 clips in 4 new shard(s)" in capsys.readouterr().out
    index = read_index(out)
    assert [s["clips"] for s in index.shards] == [3, 3, 4, 4]  # records 2 and 5 fall in shards 0 and 1
    skipped = index.skipped()
    assert [(item["line"], item["split"]) for item in skipped] == [(val[2].line, "val"), (val[5].line, "val")]
    assert "not a decodable video" in skipped[0]["reason"] and "no such file" in skipped[1]["reason"]
    cached = FeatureDataset(out, index, "val")
    assert len(cached) == 14 and len(cached.skipped) == 2
    assert [e.offset for e in cached.entries[:3]] == [0, 1, 2] and cached.entries[2].line == val[3].line


def test_a_failed_shard_write_leaves_nothing_visible(tmp_path):
    with pytest.raises(ValueError, match="pickle"):
        write_shard(tmp_path / shard_name(0), np.array([object()]))  # np.save refuses halfway
    assert list(tmp_path.iterdir()) == []


def test_a_cache_of_another_configuration_is_refused(clean_cache, tiny_dataset, trunk_checkpoint, tmp_path,
                                                     capsys):
    # extraction: the same directory with another dtype, shard size or trunk
    assert extract(tiny_dataset, clean_cache, "--checkpoint", str(trunk_checkpoint), "--clips-per-shard", "8",
                   "--dtype", "float32") == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "dtype: 'float16' vs 'float32'" in err
    assert "clips_per_shard: 16 vs 8" in err
    torch.manual_seed(5)
    other = tmp_path / "other.pt"
    save_checkpoint(other, build_model(TRUNK), [f"class{i}" for i in range(8)])
    assert extract(tiny_dataset, clean_cache, "--checkpoint", str(other), "--clips-per-shard", "16") == 2
    assert "backbone_sha256" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert extract(tiny_dataset, tmp_path / "busy", "--checkpoint", str(trunk_checkpoint)) == 2
    assert "is not empty and not a feature cache" in capsys.readouterr().err
    # training: another clip geometry, an unfrozen trunk
    run = ["--features", str(clean_cache), "--out", str(tmp_path / "run"), "--quiet"]
    assert train_main([*run, *sets([*CACHE_RUN, "model.clip_length=16", "model.height=64"])]) == 2
    err = capsys.readouterr().err
    assert "does not fit this run" in err
    assert "model.clip_length: the run has 16, the cache 8" in err and "model.height: the run has 64" in err
    assert train_main([*run, *sets([*CACHE_RUN, "model.freeze_backbone=false"])]) == 2
    assert "needs a frozen trunk" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_truncated_or_corrupt_shard_is_named(clean_cache, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(clean_cache, damaged)
    shard = damaged / shard_name(3)
    shard.write_bytes(shard.read_bytes()[:-100])
    index = read_index(damaged)
    with pytest.raises(FeatureCacheError, match=rf"shard {shard} is truncated or corrupt .*expected an \.npy array "
                                                r"of shape \(16, 8, 16, 8, 8\) float16"):
        FeatureDataset(damaged, index, "val")
    shard.write_bytes(b"\x93NUMPY garbage")
    assert train_main(["--features", str(damaged), "--out", str(tmp_path / "run"), "--quiet", *sets(CACHE_RUN)]) == 2
    assert f"shard {shard} is truncated or corrupt" in capsys.readouterr().err
    shard.unlink()
    with pytest.raises(FeatureCacheError, match=rf"shard {shard} is listed in index.json but missing"):
        FeatureDataset(damaged, index, "val")
    (damaged / INDEX_FILE).write_text('{"header": ')
    with pytest.raises(FeatureCacheError, match=r"index.json: not valid JSON"):
        read_index(damaged)


@pytest.mark.slow
def test_training_on_the_cache_lowers_the_loss_and_writes_a_full_model(clean_cache, tiny_dataset,
                                                                        trunk_checkpoint, tmp_path):
    run = tmp_path / "run"
    args = ["--features", str(clean_cache), "--out", str(run), "--quiet"]
    assert train_main([*args, *sets([*CACHE_RUN, "train.epochs=2", "train.lr=1e-2"])]) == 0
    assert train_main([*args, "--resume", *sets([*CACHE_RUN, "train.epochs=3", "train.lr=1e-2"])]) == 0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    losses = [h["train"]["ce"] for h in history]
    # 18 steps of a tiny head on a random trunk: the cross-entropy falls every epoch (from about ln 8 = 2.08)
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.03, losses
    assert history[-1]["train"]["clips"] == 48 and history[-1]["val"]["clips"] == 16
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt.extra["run_config"]["train"]["features"] == str(clean_cache)
    trunk = load_checkpoint(trunk_checkpoint).state_dict
    assert all(torch.equal(ckpt.state_dict[k], v) for k, v in trunk.items() if k.startswith("backbone."))
    # The checkpoint is a normal model: from videos it gives what the head gives from the cached features.
    model = ckpt.build_model().eval()
    expected, samples = direct_features(model, tiny_dataset, "val")
    cached = FeatureDataset(clean_cache, read_index(clean_cache), "val")
    with torch.no_grad():
        from_videos = model(normalize_clip(torch.stack([s["clip"] for s in samples]))).logits
        from_cache = model.forward_head(torch.stack([cached[i]["features"] for i in range(16)]).float()).logits
    assert torch.allclose(from_videos, from_cache, atol=1e-2), (from_videos - from_cache).abs().max()
    assert evaluate_main(["--checkpoint", str(run / "best.pt"), "--data", str(tiny_dataset), "--split", "test",
                          "--output", str(tmp_path / "eval.json"), "--no-cam-baseline", "--quiet"]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["num_clips"] == 24


def test_backbone_lr_multiplier_has_its_own_group_through_plateaus():
    torch.manual_seed(0)
    model = build_model(TRUNK)
    optimizer = build_optimizer(model, TrainConfig(lr=1e-3, backbone_lr_multiplier=0.1))
    head, trunk = optimizer.param_groups
    assert (head["name"], trunk["name"]) == ("head", "backbone")
    assert head["lr"] == pytest.approx(1e-3) and trunk["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in trunk["params"]} == {id(p) for p in model.backbone.parameters()}
    every = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    for loss in (1.0, 2.0, 3.0):
        scheduler.step(loss)
    assert head["lr"] == pytest.approx(2.5e-4) and trunk["lr"] == pytest.approx(2.5e-5)
    # --resume: a fresh optimizer and scheduler loaded from their state dicts, as training/run_state.py does
    resumed = build_optimizer(model, TrainConfig(lr=1e-3, backbone_lr_multiplier=0.1))
    resumed.load_state_dict(optimizer.state_dict())
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(resumed, factor=0.5, patience=0)
    plateau.load_state_dict(scheduler.state_dict())
    assert [g["lr"] for g in resumed.param_groups] == pytest.approx([2.5e-4, 2.5e-5])
    plateau.step(4.0)
    assert [g["lr"] for g in resumed.param_groups] == pytest.approx([1.25e-4, 1.25e-5])
    # one group, in model order, without a multiplier (older runs resume unchanged)
    (only,) = build_optimizer(model, TrainConfig(lr=1e-3)).param_groups
    assert [id(p) for p in only["params"]] == [id(p) for p in model.parameters()]
    frozen = build_model(ModelConfig(**{**TRUNK.to_dict(), "freeze_backbone": True}))
    with pytest.raises(ValueError, match="backbone_lr_multiplier=0.1 has no effect: the trunk is frozen"):
        build_optimizer(frozen, TrainConfig(backbone_lr_multiplier=0.1))
    with pytest.raises(ValueError, match="backbone_lr_multiplier must be > 0"):
        TrainConfig(backbone_lr_multiplier=0.0)


def test_backbone_lr_multiplier_survives_resume(tiny_dataset, tmp_path, capsys):
    from tiny import tiny_overrides

    run = tmp_path / "run"
    config = ["train.backbone_lr_multiplier=0.1"]
    assert train_main(["--data", str(tiny_dataset), "--out", str(run), "--quiet", *tiny_overrides(1, *config)]) == 0
    first = load_checkpoint(run / "last.pt").extra["optimizer"]["param_groups"]
    assert [g["name"] for g in first] == ["head", "backbone"]
    assert [g["lr"] for g in first] == pytest.approx([3e-3, 3e-4])
    assert train_main(["--data", str(tiny_dataset), "--out", str(run), "--quiet", "--resume",
                       *tiny_overrides(2, *config)]) == 0
    ckpt = load_checkpoint(run / "last.pt")
    groups = ckpt.extra["optimizer"]["param_groups"]
    assert ckpt.extra["progress"]["epoch"] == 2 and [g["name"] for g in groups] == ["head", "backbone"]
    assert groups[1]["lr"] == pytest.approx(0.1 * groups[0]["lr"])
    assert train_main(["--data", str(tiny_dataset), "--out", str(run), "--quiet", "--resume",
                       *tiny_overrides(3, "train.backbone_lr_multiplier=0.5")]) == 2
    assert "train.backbone_lr_multiplier: run has 0.1, now 0.5" in capsys.readouterr().err


def test_weights_files_that_do_not_fit_are_named(tiny_dataset, tmp_path, capsys):
    from torchvision.models import resnet18

    resnet = ["model.backbone=resnet18", "model.clip_length=4", "model.height=32", "model.width=32"]
    missing = tmp_path / "missing.pth"
    assert extract(tiny_dataset, tmp_path / "c1", *sets([*resnet, f"train.backbone_weights={missing}"])) == 2
    assert f"backbone weights file {missing} does not exist" in capsys.readouterr().err
    state = resnet18(weights=None).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    message = (f"backbone weights file {wrong} does not fit this architecture: 1 of the wrong shape "
               f"(e.g. layer1.0.conv1.weight: file (32, 64, 3, 3), model (64, 64, 3, 3))")
    assert extract(tiny_dataset, tmp_path / "c2", *sets([*resnet, f"train.backbone_weights={wrong}"])) == 2
    assert message in capsys.readouterr().err
    assert train_main(["--data", str(tiny_dataset), "--out", str(tmp_path / "run"), "--quiet",
                       *sets([*resnet, f"train.backbone_weights={wrong}"])]) == 2
    assert message in capsys.readouterr().err
    assert extract(tiny_dataset, tmp_path / "c3", *sets(resnet)) == 2
    assert "randomly initialised resnet18" in capsys.readouterr().err
    assert not (tmp_path / "c1").exists() and not (tmp_path / "c2").exists()


def test_a_cache_of_a_motion_prior_trunk_carries_the_prior_and_trains(tiny_dataset, tmp_path):
    """model.mask_prior=motion: the trunk features gain one channel (how much moves in each cell), so the cache
    holds it and a run on the cache gives the mask the same prior as a run on videos."""
    options = dict(trunk_input="motion", mask_activation="spatial_softmax", mask_prior="motion")
    torch.manual_seed(0)
    model = build_model(tiny_model_config(num_classes=8, clip_length=8, **options))
    checkpoint, cache = tmp_path / "trunk.pt", tmp_path / "cache"
    save_checkpoint(checkpoint, model, [f"class{i}" for i in range(8)])
    assert extract(tiny_dataset, cache, "--checkpoint", str(checkpoint), "--clips-per-shard", "32") == 0
    index = read_index(cache)
    assert index.header.feature_shape == (8, model.backbone.out_channels + 1, 8, 8)
    expected, _ = direct_features(model, tiny_dataset, "val")
    cached = torch.stack([item["features"] for item in FeatureDataset(cache, index, "val")]).float()
    assert torch.allclose(cached, expected, rtol=2 ** -10, atol=1e-4)
    assert expected[:, :, -1].min() >= 0 and expected[:, :, -1].max() > 0.05  # the energy: something moves
    run = tmp_path / "run"
    prior = ["model.trunk_input=motion", "model.mask_activation=spatial_softmax", "model.mask_prior=motion"]
    assert train_main(["--features", str(cache), "--out", str(run), "--quiet",
                       *sets([*CACHE_RUN, *prior, "train.epochs=1"])]) == 0
    assert load_checkpoint(run / "best.pt").model_config.mask_prior == "motion"
    # The CAM baseline is fitted on the trunk's channels, not on the prior's.
    clips = ClipDataset(load_dataset(tiny_dataset).split("train")[:16], ClipSpec(8, 32, 32), train=False,
                        progress=False)
    weight = fit_cam_classifier(model, clips, torch.device("cpu"), progress=False)
    assert weight.shape == (8, model.backbone.out_channels)
    assert evaluate_main(["--checkpoint", str(run / "best.pt"), "--data", str(tiny_dataset), "--split", "test",
                          "--output", str(tmp_path / "eval.json"), "--quiet"]) == 0
    assert 0 <= json.loads((tmp_path / "eval.json").read_text())["spatial"]["cam_baseline"]["pointing_game"] <= 1
