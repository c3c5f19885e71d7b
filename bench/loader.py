"""`stanet bench loader`: does decoding keep up with training? Decoded clips/s of the training input pipeline
(cache_videos off: every clip decoded from its file with PyAV, sampled, augmented) for each DataLoader worker
count, against the model's training throughput (forward + backward + Adam step, clips/s) for the same
configuration on this machine. A pipeline slower than the model starves it: add workers or cache the videos.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from stanet.dataset_format import DatasetFormatError, load_dataset
from stanet.model import build_model
from training.config import RunConfig, TrainConfig, add_run_config_arguments, run_config_from_arguments
from training.data import ClipDataset, ClipSpec, CropSpec
from training.loop import forward_loss, make_loader, select_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet bench loader", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset directory (its train split is read)")
    parser.add_argument("--workers", default="0,1,2", help="DataLoader worker counts to measure (default: 0,1,2)")
    add_run_config_arguments(parser, default_preset="synthetic")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row (default: 5)")
    return parser.parse_args(argv)


def _worker_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--workers must be comma-separated integers like 0,1,2, got {text!r}") from None
    if not counts or min(counts) < 0:
        raise ValueError(f"--workers needs counts >= 0, got {text!r}")
    return counts


def measure_loader(dataset: ClipDataset, config: TrainConfig, seconds: float) -> dict[str, float]:
    """Clips/s the loader delivers after its first batch (the first batch, worker start-up included, is
    reported apart as `first_batch_s`)."""
    loader = make_loader(dataset, config, shuffle=True, epoch=0)
    started = time.perf_counter()
    clips, first_batch_s, measured_from, epoch = 0, None, 0.0, 0
    while True:
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            now = time.perf_counter()
            if first_batch_s is None:
                first_batch_s, measured_from = now - started, now
                continue
            clips += batch["label"].shape[0]
            if now - measured_from >= seconds:
                return {"clips_per_s": clips / (now - measured_from), "first_batch_s": first_batch_s}
        epoch += 1


def measure_model(run_config: RunConfig, num_classes: int, batch: dict[str, torch.Tensor], device: torch.device,
                  seconds: float) -> dict[str, float]:
    """Training steps on one real batch, repeated: clips/s of forward + backward + optimizer step."""
    config = run_config.train
    model = build_model(run_config.model_config(num_classes)).to(device).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)

    def step() -> None:
        loss, _, _ = forward_loss(model, batch, config.loss, device, config.amp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocations, cuDNN autotuning
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    return {"clips_per_s": steps * batch["label"].shape[0] / elapsed, "steps_per_s": steps / elapsed}


def run(data: Path, run_config: RunConfig, worker_counts: list[int], seconds: float) -> dict:
    """Every measurement as a dict (printed by main)."""
    config = run_config.train
    dataset = load_dataset(data)
    model_config = run_config.model_config(len(dataset.class_names))
    spec = ClipSpec(model_config.clip_length, model_config.height, model_config.width)
    crop = CropSpec.from_options(config.crop_min_area, config.crop_max_aspect)
    train_set = ClipDataset(dataset.split("train"), spec, train=True, seed=config.seed, cache=False,
                            flip=config.flip, crop=crop, progress=False)
    if len(train_set) == 0:
        raise ValueError(f"{data} has no readable train clips to decode")
    rows = []
    for workers in worker_counts:
        loader_config = dataclasses.replace(config, num_workers=workers, persistent_workers=False)
        rows.append({"workers": workers, **measure_loader(train_set, loader_config, seconds)})
    device = select_device(config.device)
    batch = next(iter(make_loader(train_set, dataclasses.replace(config, num_workers=0), shuffle=True, epoch=0)))
    model = measure_model(run_config, len(dataset.class_names), batch, device, seconds)
    return {"device": str(device), "batch_size": config.batch_size, "clip_length": spec.clip_length,
            "size": f"{spec.height}x{spec.width}", "train_clips": len(train_set), "model": model, "loader": rows}


def render(report: dict) -> str:
    model_rate = report["model"]["clips_per_s"]
    lines = [f"input pipeline vs training step: T={report['clip_length']}, {report['size']}, batch "
             f"{report['batch_size']}, {report['train_clips']} train videos, device {report['device']}, "
             f"{torch.get_num_threads()} torch threads",
             f"  {'source':<28}{'clips/s':>10}{'x model':>10}  verdict",
             f"  {'model training step':<28}{model_rate:>10.1f}{1.0:>10.2f}  "
             f"({report['model']['steps_per_s']:.2f} steps/s)"]
    for row in report["loader"]:
        ratio = row["clips_per_s"] / model_rate
        verdict = "keeps up" if ratio >= 1 else "starves the model"
        label = f"decode, {row['workers']} worker{'s' if row['workers'] != 1 else ''}"
        lines.append(f"  {label:<28}{row['clips_per_s']:>10.1f}{ratio:>10.2f}  {verdict} "
                     f"(first batch {row['first_batch_s']:.2f}s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run_config = run_config_from_arguments(args)
        report = run(args.data, run_config, _worker_counts(args.workers), args.seconds)
    except (DatasetFormatError, ValueError, FileNotFoundError) as exc:
        print(f"stanet bench loader: error: {exc}", file=sys.stderr)
        return 2
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
