"""The training input pipeline: decoding in DataLoader workers gives exactly the in-process samples (crop and
flip included), and variable-frame-rate files decode frame by frame with their own timestamps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from stanet.dataset_format import load_dataset
from stanet.sampling import sample_clip
from stanet.video import read_video, write_video
from training.config import TrainConfig
from training.data import ClipDataset, ClipSpec, CropSpec
from training.loop import make_loader

SPEC = ClipSpec(clip_length=8, height=32, width=32)


def samples(dataset: ClipDataset, config: TrainConfig, epochs: int) -> list[dict[str, torch.Tensor]]:
    loader = make_loader(dataset, config, shuffle=True, epoch=0)
    out = []
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        out += list(loader)
    return out


def test_worker_decoding_gives_the_in_process_samples(tiny_dataset):
    records = load_dataset(tiny_dataset).split("train")[:12]
    dataset = ClipDataset(records, SPEC, train=True, seed=5, cache=False, flip=True,
                          crop=CropSpec(min_area=0.4, max_aspect=1.5), progress=False)
    in_process = TrainConfig(batch_size=4, num_workers=0)
    in_workers = dataclasses.replace(in_process, num_workers=2, persistent_workers=True, prefetch_factor=3)
    a, b = samples(dataset, in_process, epochs=2), samples(dataset, in_workers, epochs=2)
    assert len(a) == len(b) == 6
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(torch.nan_to_num(x[key].float(), 99), torch.nan_to_num(y[key].float(), 99)), key
    # the epochs differ (reshuffled, new crops) and the crop really changed the clips
    assert not torch.equal(a[0]["index"], a[3]["index"])
    plain = ClipDataset(records, SPEC, train=True, seed=5, cache=False, flip=True, progress=False)
    assert not torch.equal(plain[(0, 0)]["clip"], dataset[(0, 0)]["clip"])


def test_cropped_boxes_stay_inside_the_frame(tiny_dataset):
    records = load_dataset(tiny_dataset).split("train")[:6]
    dataset = ClipDataset(records, SPEC, train=True, seed=1, crop=CropSpec(min_area=0.3, max_aspect=2.0),
                          progress=False)
    boxes = torch.cat([dataset[(i, 0)]["boxes"] for i in range(len(dataset))])  # (N*T, 4)
    kept = boxes[~boxes.isnan().any(dim=1)]
    assert len(kept) > 0
    assert (kept[:, 0] >= 0).all() and (kept[:, 2] <= SPEC.width).all() and (kept[:, 0] < kept[:, 2]).all()
    assert (kept[:, 1] >= 0).all() and (kept[:, 3] <= SPEC.height).all() and (kept[:, 1] < kept[:, 3]).all()


def test_variable_frame_rate_file_decodes_every_frame_in_order(tmp_path):
    times = [0.0, 0.04, 0.05, 0.3, 0.31, 0.9, 0.93, 2.0, 2.01, 2.5]  # gaps of 10 ms to 1.07 s
    frames = np.stack([np.full((32, 32, 3), 20 * i + 10, np.uint8) for i in range(len(times))])
    path = tmp_path / "vfr.mp4"
    write_video(path, frames, timestamps=times)
    video = read_video(path)
    np.testing.assert_allclose(video.timestamps, times, atol=1e-3)  # the file really is irregular
    brightness = video.frames.reshape(len(times), -1).mean(axis=1)
    np.testing.assert_allclose(brightness, 20 * np.arange(len(times)) + 10, atol=3)  # none dropped or repeated
    _, indices = sample_clip(video.frames, 5, 16, 16)
    np.testing.assert_array_equal(indices, [1, 3, 5, 7, 9])  # by frame index, not by time
    with pytest.raises(ValueError, match="timestamps must be 10 increasing values"):
        write_video(tmp_path / "bad.mp4", frames, timestamps=[0.0, 0.1, 0.1, *times[3:]])


def test_bench_loader_reports_each_worker_count_against_the_model(tiny_dataset, capsys):
    from bench.loader import main as bench_loader

    tiny = ["--set", "model.clip_length=8", "--set", "model.backbone_width=8", "--set", "model.hidden_channels=8",
            "--set", "model.attention_dim=8", "--set", "train.batch_size=4"]
    assert bench_loader(["--data", str(tiny_dataset), "--workers", "0,1", "--seconds", "0.3", *tiny]) == 0
    out = capsys.readouterr().out
    assert "model training step" in out and "decode, 0 workers" in out and "decode, 1 worker " in out
    assert bench_loader(["--data", str(tiny_dataset), "--workers", "one"]) == 2
    assert "--workers must be comma-separated integers like 0,1,2, got 'one'" in capsys.readouterr().err
