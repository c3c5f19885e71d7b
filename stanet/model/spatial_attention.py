"""The spatial attention mask: where to look in each frame, and how the mask is applied to the features."""

from __future__ import annotations

import torch
from torch import nn


# Added to the motion prior before its log: a cell where nothing moves scores log(1e-2) = -4.6 below one that
# moves by a normalized unit (about 60 grey levels), so it can still win where the learned score insists.
PRIOR_FLOOR = 1e-2

# model.mask_input -> how many C-channel maps the mask net reads per frame (SpatialAttention.forward).
INPUT_STACKS = {"frame": 1, "motion": 3, "clip": 4}


class SpatialAttention(nn.Module):
    """Three 3x3 convs C' -> C/2 -> C/4 -> 1 (BN + ReLU between), then an activation: one mask per frame,
    shared over channels (docs/paper.md, "Spatial attention").

    `inputs` (model.mask_input): "frame" (the paper: each frame's features alone, C' = C); "motion" (the
    frame's features together with their differences to the previous and the next frame, C' = 3C; the first
    and last frames repeat themselves); "clip" (those and the clip's mean of each cell's features, C' = 4C:
    what stays, comes back or passes by over the whole clip). Among objects that look alike only motion tells
    which one acts, and the paper's mask, computed from each frame alone, cannot know; a neighbour's difference
    says how an object moves now, the clip's mean where objects spend their time.

    `activation`: "sigmoid" (the paper: each cell in [0, 1] on its own) or "spatial_softmax"
    (exp(z - max z) over the frame's cells: relative, the strongest cell of every frame is 1).

    `score_bound` (model.mask_score_bound): 0, or b > 0 to squash the learned scores to b tanh(z / b) before the
    prior joins them. Unbounded, the learned scores can outvote any prior: a small actor's model learned to
    open the frame's border cell in the actor's column, where nothing moves (docs/model.md, "Bounded learned
    scores"); bounded, they rank the cells the prior allows and cannot reach a cell e^(2b) times stiller.
    """

    def __init__(self, channels: int, *, inputs: str = "frame", activation: str = "sigmoid",
                 prior_weight: float = 1.0, score_bound: float = 0.0):
        super().__init__()
        if inputs not in INPUT_STACKS:
            raise ValueError(f"unknown mask input {inputs!r}, expected one of {tuple(INPUT_STACKS)}")
        self.inputs, self.activation, self.prior_weight = inputs, activation, prior_weight
        self.score_bound = score_bound
        mid, low = max(channels // 2, 1), max(channels // 4, 1)
        self.net = nn.Sequential(
            nn.Conv2d(INPUT_STACKS[inputs] * channels, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, low, 3, padding=1, bias=False),
            nn.BatchNorm2d(low),
            nn.ReLU(inplace=True),
            nn.Conv2d(low, 1, 3, padding=1),
        )
        # Start open (sigmoid(2) = 0.88): the classifier sees the frames before the regularizers, which
        # push unneeded mask values down, can close the mask; started at 0.5 it collapses to 0 first.
        # (A spatial softmax starts open at any bias: equal scores give 1 everywhere.)
        nn.init.constant_(self.net[-1].bias, 2.0)

    def forward(self, features: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C, h, w) frame features -> (B, T, h, w) mask in [0, 1]. `prior` (B, T, h, w) >= 0 (how much
        moves in each cell, model.mask_prior=motion) adds prior_weight * log(prior + PRIOR_FLOOR) to the scores:
        the mask is the learned scores reweighting where things move (with a spatial softmax and equal scores,
        the motion energy to the power prior_weight)."""
        B, T, C, h, w = features.shape
        x = features
        if self.inputs != "frame":
            previous = torch.cat([features[:, :1], features[:, :-1]], dim=1)  # (B, T, C, h, w), frame t-1
            following = torch.cat([features[:, 1:], features[:, -1:]], dim=1)  # frame t+1
            x = torch.cat([features, features - previous, following - features], dim=2)  # (B, T, 3C, h, w)
        if self.inputs == "clip":
            clip_mean = features.mean(dim=1, keepdim=True).expand_as(features)  # (B, T, C, h, w)
            x = torch.cat([x, clip_mean], dim=2)  # (B, T, 4C, h, w)
        scores = self.net(x.reshape(B * T, x.shape[2], h, w)).reshape(B, T, h, w)  # (B, T, h, w)
        if self.score_bound > 0:
            scores = self.score_bound * torch.tanh(scores / self.score_bound)
        if prior is not None:
            scores = scores + self.prior_weight * torch.log(prior + PRIOR_FLOOR)
        if self.activation == "spatial_softmax":
            peak = scores.flatten(2).amax(dim=2)[..., None, None]  # (B, T, 1, 1)
            return torch.exp(scores - peak)
        return torch.sigmoid(scores)


def apply_mask(features: torch.Tensor, mask: torch.Tensor, combine: str) -> torch.Tensor:
    """Masked features X~ from features X (N, C, h, w) and mask M (N, 1, h, w).

    - "multiply" (the paper): X~ = M X. What the mask removes becomes 0, which is not neutral: where the
      trunk codes an object by *low* activations (a flat patch on a textured background), removing the
      background makes it look like the object, so the mask can keep the background and delete the actor
      and still classify.
    - "mean_fill": X~ = mu + M (X - mu), mu the frame's per-channel mean over its cells: what the mask removes
      becomes the frame's average, so removing a region removes its evidence whatever its sign, and only
      keeping the actor keeps the actor.
    - "residual": X~ = (1 + M) X (residual attention): the mask can only amplify.
    """
    if combine == "multiply":
        return features * mask
    if combine == "mean_fill":
        mean = features.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        return mean + mask * (features - mean)
    if combine == "residual":
        return features * (1.0 + mask)
    raise ValueError(f"unknown mask combine {combine!r}")
