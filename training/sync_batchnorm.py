"""BatchNorm statistics over the global batch when training runs on several ranks.

torch.nn.SyncBatchNorm does this on CUDA (nccl) but refuses CPU tensors, so gloo runs (CPU clusters, the
two-process tests) use `AllReduceBatchNorm`: one differentiable all_reduce of (sum, sum of squares, count)
per layer. Both give every rank the statistics a single process would compute on the whole global batch, so
a DDP step equals a single-process step on that batch (tests/pipeline/test_distributed.py measures how closely).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: every rank's output depends on every rank's input, so the gradient
    reaching one rank's input is the sum of the gradients of all ranks' outputs."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        total = grad.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm over any (N, C, ...) input whose training statistics are summed over every rank (gloo or
    nccl); outside training, or without a process group, it is a plain BatchNorm."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"AllReduceBatchNorm expects (N, C, ...) input, got shape {tuple(input.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        C = x.shape[1]
        dims = [0, *range(2, x.dim())]
        wide = x.double()  # sums of squares over a global batch: float64 keeps E[x^2] - E[x]^2 exact enough
        count = wide.new_full((1,), x.numel() // C)
        stats = torch.cat([wide.sum(dims), (wide * wide).sum(dims), count])  # (2C + 1,)
        total = _SumOverRanks.apply(stats)  # (2C + 1,) summed over ranks; its backward sums the gradients too
        n = total[2 * C]
        mean = total[:C] / n  # (C,)
        var = (total[C:2 * C] / n - mean * mean).clamp_min(0.0)  # (C,) biased, as BatchNorm normalizes with
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(mean.detach(), var.detach(), n.detach())
        shape = (1, C) + (1,) * (x.dim() - 2)
        y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        self.num_batches_tracked += 1
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = var * n / (n - 1).clamp_min(1.0)  # BatchNorm keeps the unbiased variance
        self.running_mean.mul_(1 - momentum).add_(mean.to(self.running_mean.dtype) * momentum)
        self.running_var.mul_(1 - momentum).add_(unbiased.to(self.running_var.dtype) * momentum)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm in `module` (in place where it is a child) by AllReduceBatchNorm, sharing the
    same parameter and buffer tensors, so optimizer state and state_dict keys are unchanged."""
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        out = AllReduceBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_batchnorm(child))
    return out


def synchronize_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """torch's SyncBatchNorm on CUDA (fused kernels, mixed precision), AllReduceBatchNorm elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return convert_batchnorm(model)
