"""Temporal attention: when to look. Both designs end in a pooled (B, Ch) clip vector and attention weights
(B, S, T) over the T frames, S being the number of attention steps."""

from __future__ import annotations

import torch
from torch import nn

from stanet.model.backbone import conv_bn_relu
from stanet.model.convlstm import ConvLSTMCell


def pool_cells(x: torch.Tensor, mode: str) -> torch.Tensor:
    """(..., C, h, w) -> (..., C) over the map's cells: "average" (GAP, the paper), "max" or "max_average"
    ((max + average) / 2).

    Why max: an actor covers a cell or two of the map; averaged with every other cell its evidence is diluted
    by the number of cells, and on a cluttered (textured) background the other cells' variation drowns it
    before training has found the actor. The strongest cell of each channel is what it detects, wherever it
    is, and what the mask leaves of the background cannot outvote it.

    Why both: under max alone the cells the mask leaves open cost the classifier nothing (they never reach
    the max), so nothing but the area term closes the mask on the background. The average half makes every
    cell the mask keeps count, so cross-entropy itself closes the mask where the background only adds noise,
    while the max half still carries a one-cell actor before the mask has found it. A sum, not two
    concatenated vectors: the classifier cannot zero the average half's weights and escape its cost."""
    if mode == "max":
        return x.amax(dim=(-2, -1))
    if mode == "average":
        return x.mean(dim=(-2, -1))
    if mode == "max_average":
        return 0.5 * (x.amax(dim=(-2, -1)) + x.mean(dim=(-2, -1)))
    raise ValueError(f"unknown cell pool {mode!r}")


class CellPooling(nn.Module):
    """The configured `pool_cells` mode, optionally blended during training with an early mode:
    pooled = w * pool(early) + (1 - w) * pool(mode). `w` is set by the training loop
    (`train.early_cell_pool`, training.regularizer_schedule.early_pool_weight) and is 0 in every model built
    from a checkpoint, so what is exported and served is `mode` alone. No parameters: a checkpoint is the
    same with and without it."""

    def __init__(self, mode: str):
        super().__init__()
        pool_cells(torch.zeros(1, 1, 1), mode)  # an unknown mode fails here, not at the first forward
        self.mode, self.early, self.early_weight = mode, mode, 0.0

    def set_early(self, early: str, weight: float) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"early pooling weight must be in [0, 1], got {weight}")
        pool_cells(torch.zeros(1, 1, 1), early)
        self.early, self.early_weight = early, float(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C, h, w) -> (..., C)."""
        if self.early_weight == 0.0 or self.early == self.mode:
            return pool_cells(x, self.mode)
        if self.early_weight == 1.0:
            return pool_cells(x, self.early)
        return self.early_weight * pool_cells(x, self.early) + (1.0 - self.early_weight) * pool_cells(x, self.mode)


class RecurrentTemporalAttention(nn.Module):
    """At each ConvLSTM step s = 1..T the input is an attention-weighted sum of all masked frames:

        e[s, t] = v . tanh(Wx BN(GAP(X~_t)) + Wh GAP(H_{s-1}) + b)  (B, T) per step
        w_s     = softmax_t(e[s, :])
        Y_s     = sum_t w[s, t] X~_t                                (B, C, h, w)
        H_s, C_s = ConvLSTMCell(Y_s, H_{s-1}, C_{s-1})

    with H_0, C_0 from conv stacks on mean_t X~_t. The tanh keeps H_{s-1} from cancelling in the softmax
    and the scores stay in the autograd graph: the two bugs of the official code (docs/paper.md, "Bugs of the
    official code").
    `attend=False` is the "no temporal attention" ablation: uniform weights, same ConvLSTM.
    """

    def __init__(self, in_channels: int, hidden_channels: int, attention_dim: int, *, attend: bool = True,
                 pool: str = "average"):
        super().__init__()
        self.attend, self.pool = attend, CellPooling(pool)
        self.init_hidden = nn.Sequential(conv_bn_relu(in_channels, hidden_channels),
                                         nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1), nn.Tanh())
        self.init_cell = nn.Sequential(conv_bn_relu(in_channels, hidden_channels),
                                       nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1))
        if attend:
            # GAP of a masked frame is tiny where the mask keeps only a small actor: without normalization
            # the score MLP sees differences of ~1e-2 between frames and the weights stay uniform.
            self.frame_norm = nn.BatchNorm1d(in_channels)
            self.score_frame = nn.Linear(in_channels, attention_dim)  # Wx and b
            self.score_hidden = nn.Linear(hidden_channels, attention_dim, bias=False)  # Wh
            self.score_out = nn.Linear(attention_dim, 1, bias=False)  # v
            # Start with scores of a few units, not ~0.1: a symmetric prior such as the entropy term has no
            # gradient at exactly uniform weights, so near-uniform starting weights stay uniform.
            nn.init.normal_(self.score_out.weight, std=0.5)
        self.cell = ConvLSTMCell(in_channels, hidden_channels)

    def forward(self, x: torch.Tensor, frame_prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, C, h, w) masked features -> pooled (B, Ch), weights (B, T, T) indexed [step, frame].
        `frame_prior` (B, T) is added to every step's scores (model.temporal_prior)."""
        B, T, C, h, w = x.shape
        mean_frame = x.mean(dim=1)  # (B, C, h, w)
        hidden, cell = self.init_hidden(mean_frame), self.init_cell(mean_frame)  # (B, Ch, h, w) each
        if self.attend:
            descriptors = self.frame_norm(self.pool(x).reshape(B * T, C))  # (B*T, C), per-channel unit scale
            frame_scores = self.score_frame(descriptors.reshape(B, T, C))  # (B, T, A)
        else:
            uniform = x.new_full((B, T), 1.0 / T)
        pooled, weights = [], []
        for _ in range(T):
            if self.attend:
                hidden_scores = self.score_hidden(self.pool(hidden))  # (B, A)
                energy = self.score_out(torch.tanh(frame_scores + hidden_scores[:, None, :])).squeeze(-1)  # (B, T)
                if frame_prior is not None:
                    energy = energy + frame_prior
                step_weights = torch.softmax(energy, dim=1)  # (B, T)
            else:
                step_weights = uniform
            attended = torch.einsum("bt,btchw->bchw", step_weights, x)  # (B, C, h, w)
            hidden, cell = self.cell(attended, (hidden, cell))
            pooled.append(self.pool(hidden))  # (B, Ch)
            weights.append(step_weights)
        return torch.stack(pooled, dim=1).mean(dim=1), torch.stack(weights, dim=1)  # (B, Ch), (B, T, T)


class ConvLSTMFirstAttention(nn.Module):
    """The paper's alternative (variant A): a ConvLSTM over the frames in order (H_0 = C_0 = 0), then softmax
    attention over the pooled hidden states: beta = softmax_t(a . GAP(H_t) + b), pooled = sum_t beta_t GAP(H_t).
    """

    def __init__(self, in_channels: int, hidden_channels: int, *, pool: str = "average"):
        super().__init__()
        self.pool = CellPooling(pool)
        self.cell = ConvLSTMCell(in_channels, hidden_channels)
        self.score = nn.Linear(hidden_channels, 1)

    def forward(self, x: torch.Tensor, frame_prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, C, h, w) -> pooled (B, Ch), weights (B, 1, T); `frame_prior` (B, T) is added to the scores."""
        B, T, C, h, w = x.shape
        hidden = x.new_zeros(B, self.cell.hidden_channels, h, w)
        cell = torch.zeros_like(hidden)
        states = []
        for t in range(T):
            hidden, cell = self.cell(x[:, t], (hidden, cell))
            states.append(self.pool(hidden))  # (B, Ch)
        states = torch.stack(states, dim=1)  # (B, T, Ch)
        scores = self.score(states).squeeze(-1)  # (B, T)
        if frame_prior is not None:
            scores = scores + frame_prior
        beta = torch.softmax(scores, dim=1)  # (B, T)
        pooled = torch.einsum("bt,btc->bc", beta, states)  # (B, Ch)
        return pooled, beta[:, None, :]  # (B, Ch), (B, 1, T)
