"""`stanet train`: fit the attention recognizer on a dataset in the generic format.

Adam, ReduceLROnPlateau on the *validation* loss, model selection on validation accuracy (never the test
split), atomic checkpoints (`last.pt` every epoch, `best.pt` on improvement), `--resume` from `last.pt`
mid-epoch included, TensorBoard scalars, mixed precision on CUDA. Every random draw derives from
(seed, epoch, step), so a resumed run continues exactly as an uninterrupted one would. Under torchrun the same
run is data-parallel (training.distributed, docs/distributed.md); `train.batch_size` is the global batch.

    training/run.py                   train(): one run, epoch after epoch
    training/run_data.py              the train/val sets and model config, from videos or a feature cache
    training/run_state.py             resume checks; model, optimizer, scheduler, progress: restored or fresh
    training/run_writer.py            run_config.json, checkpoints, history.jsonl, TensorBoard (rank 0)
    training/loop.py                  train_one_epoch, evaluate_loss, the loader, device and seeds
    training/regularizer_schedule.py  the regularizers' warm-up and which epochs may become best.pt
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch.distributed as dist

from stanet.checkpoint import CheckpointError
from stanet.constants import LAST_CHECKPOINT
from stanet.dataset_format import DatasetFormatError
from training.config import (DEFAULT_PRESET, RunConfig, add_run_config_arguments, run_config_from_arguments,
                             run_config_given)
from training.distributed import DistributedError
from training.loop import TrainingError
from training.run import train
from training.run_state import stored_run_config


def _is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a process started without torchrun."""
    return os.environ.get("RANK", "0") == "0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset directory (classes.txt + annotations.jsonl)")
    parser.add_argument("--features", metavar="CACHE_DIR",
                        help="train on a `stanet features extract` cache instead of --data (sets train.features; "
                             "needs model.freeze_backbone=true)")
    parser.add_argument("--out", required=True, help="run directory for best.pt, last.pt and logs")
    add_run_config_arguments(parser, default_preset=DEFAULT_PRESET)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if not args.resume:
            run_config = run_config_from_arguments(args)
        elif run_config_given(args):  # --set/--config adjust the run's own configuration (or --preset's)
            run_config = run_config_from_arguments(args, base=stored_run_config(Path(args.out)))
        else:
            run_config = None  # the run's own
        if args.features and run_config is not None:
            run_config = RunConfig(model=run_config.model, train=replace(run_config.train, features=args.features))
        if args.data and args.features:
            raise TrainingError("--data and --features exclude each other: a run reads the videos or the cache")
        if not args.data and not args.features and not args.resume:
            raise TrainingError("--data DIR (videos) or --features CACHE_DIR (a feature cache) is needed")
        summary = train(args.data, args.out, run_config, resume=args.resume, progress=not args.quiet)
    except KeyboardInterrupt:
        if not _is_main_process():
            return 130
        print(f"\ninterrupted: progress saved to {Path(args.out) / LAST_CHECKPOINT}; continue with "
              f"`stanet train --data {args.data} --out {args.out} --resume`", file=sys.stderr)
        return 130
    except (TrainingError, DatasetFormatError, CheckpointError, DistributedError, ValueError, OSError) as exc:
        where = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else ""
        print(f"stanet train{where}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():  # an error after joining the job, before train()'s own cleanup
            dist.destroy_process_group()
    if not _is_main_process():
        return 0
    print(f"best validation accuracy {summary['best_val_accuracy']:.3f} at epoch {summary['best_epoch']} "
          f"({summary['epochs_run']} epochs, {summary['wall_seconds']:.0f}s); checkpoints in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
