"""The training objective: cross-entropy plus the paper's attention regularizers (docs/paper.md, "Loss and
regularizers").

Each regularizer is a *mean*, so its weight means the same at any batch size, clip length or map size:

- total variation: mean over clips, frames and adjacent pixel pairs of |M[j+1,k]-M[j,k]| and |M[j,k+1]-M[j,k]|
  (the paper sums; lambda_paper = lambda_here / (B * T * pairs));
- contrast: mean over clips, frames and pixels of -1/2 M 1[M>0.5] + 1/2 M 1[M<0.5], the indicator held
  constant (range [-0.5, 0.25]);
- unimodality: mean over clips, steps and interior frames of relu(T^2 (w[i-1] w[i+1] - w[i]^2)); T^2 makes
  it independent of T (weights scale as 1/T), and there is no sqrt (the official code's sqrt has unbounded
  gradients near 0);
- mask area (optional, not in the paper): mean of M, which keeps the mask from covering what the answer
  does not need;
- temporal entropy (optional, not in the paper): mean over clips and steps of the entropy of w_s divided by
  log T (0 = one frame, 1 = uniform). Without it nothing asks the weights to be peaked: when the mask alone
  already silences the frames outside the action, the classification loss is indifferent to w, and the
  weights stay uniform even where their ranking is right.
- open classification (optional, not in the paper): cross-entropy of the answer from the whole frames, the
  mask held open (no gradient to the mask net). It keeps the layers after the mask able to read the evidence
  wherever it lies, which the complement term relies on: trained on masked frames alone they read only the
  cells the mask keeps, and a mask beside the actor (whose cells see the actor too) and a head that reads it
  agree with each other, while the actor's own cell, left in the removed part, goes unread by the complement.
- mask complement (optional, not in the paper): mean over clips of -log(1 - p_y), p_y the true class's
  probability from what the mask removes ((1 - M) in place of M, the layers after the mask held fixed:
  AttentionRecognizer.complement_head). The other terms ask for a small mask, not for one on the evidence:
  a mask that keeps the background and deletes the actor, or keeps the cell beside the actor (whose features
  see the actor too), classifies as well. Then what it removed still tells the class, and this term is high;
  it is low only when the mask took the evidence with it. Bounded below by 0 and flat once p_y is small, so it
  asks for nothing more than "the rest does not tell", not for the rest to look like another class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """mask (B, T, h, w) -> scalar."""
    vertical = (mask[..., 1:, :] - mask[..., :-1, :]).abs()  # (B, T, h-1, w)
    horizontal = (mask[..., :, 1:] - mask[..., :, :-1]).abs()  # (B, T, h, w-1)
    return (vertical.sum() + horizontal.sum()) / (vertical.numel() + horizontal.numel())


def contrast(mask: torch.Tensor) -> torch.Tensor:
    """mask (B, T, h, w) -> scalar; pushes values above 0.5 up and values below 0.5 down."""
    high = (mask > 0.5).to(mask.dtype).detach()
    low = (mask < 0.5).to(mask.dtype).detach()
    return (0.5 * mask * (low - high)).mean()


def unimodality(weights: torch.Tensor) -> torch.Tensor:
    """weights (B, S, T) summing to 1 over T -> scalar; zero when every w_s is log-concave."""
    T = weights.shape[-1]
    if T < 3:
        return weights.new_zeros(())
    violation = weights[..., :-2] * weights[..., 2:] - weights[..., 1:-1] ** 2  # (B, S, T-2)
    return F.relu(violation * T * T).mean()


def complement_evidence(complement_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """complement_logits (B, K), labels (B,) -> scalar: mean of -log(1 - p_y)."""
    logits = complement_logits.float()
    true = F.one_hot(labels, logits.shape[-1]).bool()  # (B, K)
    others = torch.logsumexp(logits.masked_fill(true, float("-inf")), dim=-1)  # log sum_{k != y} exp l_k
    return (torch.logsumexp(logits, dim=-1) - others).mean()  # -log(1 - p_y), stable when p_y -> 1


def temporal_entropy(weights: torch.Tensor) -> torch.Tensor:
    """weights (B, S, T) summing to 1 over T -> scalar in [0, 1]."""
    T = weights.shape[-1]
    if T < 2:
        return weights.new_zeros(())
    entropy = -(weights * torch.log(weights.clamp_min(1e-12))).sum(dim=-1)  # (B, S)
    return entropy.mean() / math.log(T)


@dataclass(frozen=True)
class LossWeights:
    """lambda of each regularizer (0 switches it off)."""

    total_variation: float = 0.0
    contrast: float = 0.0
    unimodality: float = 0.0
    mask_area: float = 0.0
    temporal_entropy: float = 0.0
    mask_complement: float = 0.0
    open_classification: float = 0.0


def attention_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    spatial_attention: torch.Tensor,
    temporal_attention_steps: torch.Tensor,
    weights: LossWeights,
    complement_logits: torch.Tensor | None = None,
    open_logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its detached terms {ce, tv, contrast, unimodality, mask_area, temporal_entropy,
    mask_complement, open_classification}; `complement_logits` (B, K) is needed when weights.mask_complement > 0,
    `open_logits` (B, K) when weights.open_classification > 0."""
    if weights.mask_complement > 0 and complement_logits is None:
        raise ValueError("mask_complement > 0 needs the model's complement_logits (AttentionRecognizer.set_complement)")
    if weights.open_classification > 0 and open_logits is None:
        raise ValueError("open_classification > 0 needs the model's open_logits (AttentionRecognizer.set_open_answer)")
    terms = {
        "ce": F.cross_entropy(logits.float(), labels),
        "tv": total_variation(spatial_attention.float()),
        "contrast": contrast(spatial_attention.float()),
        "unimodality": unimodality(temporal_attention_steps.float()),
        "mask_area": spatial_attention.float().mean(),
        "temporal_entropy": temporal_entropy(temporal_attention_steps.float()),
        "mask_complement": (complement_evidence(complement_logits, labels) if complement_logits is not None
                            else logits.new_zeros((), dtype=torch.float32)),
        "open_classification": (F.cross_entropy(open_logits.float(), labels) if open_logits is not None
                                else logits.new_zeros((), dtype=torch.float32)),
    }
    total = (terms["ce"] + weights.total_variation * terms["tv"] + weights.contrast * terms["contrast"]
             + weights.unimodality * terms["unimodality"] + weights.mask_area * terms["mask_area"]
             + weights.temporal_entropy * terms["temporal_entropy"]
             + weights.mask_complement * terms["mask_complement"]
             + weights.open_classification * terms["open_classification"])
    return total, {name: value.detach() for name, value in terms.items()}
