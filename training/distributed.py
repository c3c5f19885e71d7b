"""Data-parallel training under torchrun: one process (rank) per GPU, or several on CPU.

::

    torchrun env (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)
      |  init_distributed: gloo on CPU, nccl on CUDA (device cuda:LOCAL_RANK), a timeout on every collective
    every rank: the same model and the same seeded global batch order (training.data.EpochBatchSampler)
      |  RankBatchSampler: rank r takes its contiguous share of each global batch (train.batch_size is global)
    forward/backward on the share; its loss scaled by share/global, so DDP's mean of the gradients is the
      |  gradient of the global batch's mean loss; BatchNorm statistics over the global batch (sync_batchnorm)
    agree_stop: one all_reduce per step of the stop flag (Ctrl-C, SIGTERM, time limit): all ranks stop together
    validation: disjoint shares per rank, sums and counts all_reduced (no clip counted twice)
    rank 0 alone writes logs, TensorBoard, history and checkpoints

Without torchrun (WORLD_SIZE unset or 1) nothing here changes the single-process run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from training.data import EpochBatchSampler
from training.sync_batchnorm import synchronize_batchnorm

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(RuntimeError):
    """The torchrun environment is incomplete or does not fit this machine."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; the default is a single process (every collective is a no-op)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    reduce_device: str = "cpu"  # where the small tensors of collectives live (nccl needs CUDA ones)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def agree_stop(self, code: int) -> int:
        """The largest stop code over all ranks (0 = go on), so that every rank breaks at the same step."""
        if not self.enabled:
            return code
        flag = torch.tensor([code], dtype=torch.int64, device=self.reduce_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def sum_values(self, values: dict[str, float]) -> dict[str, float]:
        """Each value summed over all ranks (float64: counts stay exact)."""
        if not self.enabled:
            return dict(values)
        names = sorted(values)
        packed = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=self.reduce_device)
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        return dict(zip(names, packed.tolist()))


SINGLE_PROCESS = DistContext()


def _env_int(name: str) -> int:
    text = os.environ[name]
    try:
        return int(text)
    except ValueError:
        raise DistributedError(f"environment variable {name}={text!r} must be an integer (set by torchrun)") from None


def init_distributed(device: torch.device, timeout_minutes: float) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun describes in the environment; returns (context, this rank's device).
    A rank blocked longer than `timeout_minutes` in a collective (a peer hung or died) raises instead of
    waiting forever."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return SINGLE_PROCESS, device
    missing = [name for name in TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set: launch "
                               f"with `torchrun --nproc_per_node N -m stanet train ...` (docs/distributed.md)")
    rank, world_size, local_rank = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK={local_rank} but this node has {torch.cuda.device_count()} "
                                   f"GPU(s): use --nproc_per_node <= the GPU count")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend, reduce_device = "nccl", str(device)
    else:
        backend, reduce_device = "gloo", "cpu"
    dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
    return DistContext(rank, world_size, local_rank, reduce_device), device


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistContext, device: torch.device, *, sync_batchnorm: bool) -> nn.Module:
    """The module to train: `model` itself in a single process, else DistributedDataParallel around it (with
    BatchNorm synchronized in place, so `model` still holds the weights checkpoints save)."""
    if not ctx.enabled:
        return model
    if sync_batchnorm:
        synchronize_batchnorm(model, device)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrapped(model: nn.Module) -> nn.Module:
    """The model wrap_model was given (DistributedDataParallel keeps it as `.module`)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def rank_share(batch_size: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous part of a batch; parts differ in size by at most one (np.array_split)."""
    base, extra = divmod(batch_size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class RankBatchSampler(Sampler[list[tuple[int, int]]]):
    """This rank's share of every global batch of an EpochBatchSampler; the union over ranks is exactly the
    global batch, so reshuffling per epoch, `--resume` mid-epoch and determinism are those of the global order.

    Training (`stand_in=True`): a rank whose share of a batch is empty (a last batch smaller than the world)
    gets the batch's first clip as a stand-in with loss weight 0, because every rank must take part in the
    gradient all_reduce. Evaluation (`stand_in=False`): empty shares are skipped, so no clip counts twice."""

    def __init__(self, batches: EpochBatchSampler, ctx: DistContext, *, stand_in: bool):
        self.batches, self.ctx, self.stand_in = batches, ctx, stand_in

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.batches.set_epoch(epoch, start_batch)

    def _parts(self) -> list[tuple[list[tuple[int, int]], int, int]]:
        """(items, clips of this rank that count, clips in the global batch) per remaining batch."""
        parts = []
        for batch in self.batches.batches()[self.batches.start_batch:]:
            start, stop = rank_share(len(batch), self.ctx.rank, self.ctx.world_size)
            if stop > start:
                parts.append((batch[start:stop], stop - start, len(batch)))
            elif self.stand_in:
                parts.append((batch[:1], 0, len(batch)))
        return parts

    def loss_weights(self) -> list[tuple[int, int]]:
        """(clips of this rank that count, clips in the global batch) for each batch __iter__ yields."""
        return [(counted, total) for _, counted, total in self._parts()]

    def __iter__(self):
        return iter([items for items, _, _ in self._parts()])

    def __len__(self) -> int:
        return len(self._parts())
