"""The attention recognizer: composes trunk, spatial mask, temporal attention and classifier."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from stanet.config import ModelConfig
from stanet.model.backbone import build_backbone, trunk_in_channels
from stanet.model.motion import StabilizedDifference
from stanet.model.spatial_attention import PRIOR_FLOOR, SpatialAttention, apply_mask
from stanet.model.temporal_attention import ConvLSTMFirstAttention, RecurrentTemporalAttention


@dataclass
class RecognizerOutput:
    logits: torch.Tensor  # (B, K)
    spatial_attention: torch.Tensor  # (B, T, h, w) in [0, 1]
    temporal_attention: torch.Tensor  # (B, T), mean over attention steps, sums to 1
    temporal_attention_steps: torch.Tensor  # (B, S, T): S = T (recurrent, none) or 1 (convlstm_first)
    # (B, K) from what the mask removes, when asked for (set_complement; training only), else None
    complement_logits: torch.Tensor | None = None
    # (B, K) from the whole frames, the mask held open, when asked for (set_open_answer; training only), else None
    open_logits: torch.Tensor | None = None


def call_keeping_statistics(module: nn.Module, *args: torch.Tensor, detach_parameters: bool = False):
    """`module(*args)` with its buffers copied, so BatchNorm's running statistics are not updated by this call
    (they stay those of the masked frames the served model sees); `detach_parameters`: the gradient reaches the
    inputs alone."""
    state = {name: p.detach() if detach_parameters else p for name, p in module.named_parameters()}
    state.update({name: b.clone() for name, b in module.named_buffers()})
    return torch.func.functional_call(module, state, args)


def frozen_call(module: nn.Module, *args: torch.Tensor):
    """`module(*args)` with its parameters detached and its buffers copied: the gradient reaches the inputs
    alone, and BatchNorm's running statistics are not updated by this call."""
    return call_keeping_statistics(module, *args, detach_parameters=True)


def cell_means(maps: torch.Tensor, cells: tuple[int, int]) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 1, h, w): the mean over each cell of an h x w grid, by a pooling whose sizes are
    constants of the graph (the frame and map sizes are fixed by the config), which ONNX exports; a frame size
    the grid does not divide is resampled (bilinear) onto it."""
    (H, W), (h, w) = maps.shape[-2:], cells
    if H % h == 0 and W % w == 0:
        return F.avg_pool2d(maps, (int(H) // h, int(W) // w))
    return F.interpolate(maps, size=cells, mode="bilinear", align_corners=False)


class AttentionRecognizer(nn.Module):
    """Interpretable spatio-temporal attention recognizer.

    ::

        clip (B, T, 3, H, W) normalized
          |  (trunk_input=motion: + what moves in each frame, camera-stabilized, 6 channels)
          |  per-frame trunk
        X (B, T, C, h, w) --> mask net --> M (B, T, 1, h, w) in [0, 1]        "where"
          |  X~ = M X, mu + M (X - mu) or (1 + M) X  (optional 1x1 projection C -> P)
        temporal attention + ConvLSTM --> weights (B, S, T)                    "when"
          |  mean_s GAP(H_s)  (or max, (max + GAP) / 2 over cells: cell_pool)
        Linear --> logits (B, K)
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # trunk_input=motion|difference: each frame with what moves in it (stanet/model/motion.py).
        self.motion = None
        if config.trunk_input != "frame":
            self.motion = StabilizedDifference(config.motion_radius, background=config.trunk_input != "difference")
        self.backbone = build_backbone(config)
        channels = self.backbone.out_channels
        self.channel_dropout = nn.Dropout2d(config.channel_dropout)
        self.spatial = None
        if config.spatial_attention:
            self.spatial = SpatialAttention(channels, inputs=config.mask_input,
                                            activation=config.mask_activation,
                                            prior_weight=config.mask_prior_weight,
                                            score_bound=config.mask_score_bound)
        self.projection = None
        if config.projection_channels:
            self.projection = nn.Sequential(nn.Conv2d(channels, config.projection_channels, 1, bias=False),
                                            nn.BatchNorm2d(config.projection_channels), nn.ReLU(inplace=True))
            channels = config.projection_channels
        if config.temporal_attention == "convlstm_first":
            self.temporal = ConvLSTMFirstAttention(channels, config.hidden_channels, pool=config.cell_pool)
        else:
            self.temporal = RecurrentTemporalAttention(channels, config.hidden_channels, config.attention_dim,
                                                       attend=config.temporal_attention == "recurrent",
                                                       pool=config.cell_pool)
        self.head_dropout = nn.Dropout(config.head_dropout)
        self.classifier = nn.Linear(config.hidden_channels, config.num_classes)
        if config.freeze_backbone:
            self.backbone.requires_grad_(False)
        self.complement = False
        self.open_answer = False
        self.open_mask_weight = 0.0  # training only: set_open_mask
        self.mask_gradient_samples: torch.Tensor | None = None  # training only: set_mask_gradient_samples

    def set_open_mask(self, weight: float) -> None:
        """Hold the mask open by `weight` (training only: `train.early_open_mask`,
        training.regularizer_schedule.open_mask_weight): the features meet w + (1 - w) M instead of M, and at
        w = 1 the mask gets no gradient. 0 in every model built from a config, so what is served is M alone."""
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"open mask weight must be in [0, 1], got {weight}")
        self.open_mask_weight = float(weight)

    def set_mask_gradient_samples(self, keep: torch.Tensor | None) -> None:
        """Which clips of the next forward may move the mask through the features they classify: `keep` (B,)
        bool, None = all (training only: `train.background_moves_mask=false`). The others still read their
        mask, and the regularizers still shape it; only their answer's gradient stops at the mask."""
        self.mask_gradient_samples = keep

    def set_complement(self, enabled: bool) -> None:
        """Whether forward also returns `complement_logits`, the answer from what the mask removes (training
        only: `train.loss.mask_complement`, training/losses.py); a served model never computes it."""
        if enabled and (self.spatial is None or self.config.mask_combine == "residual"):
            raise ValueError("mask_complement needs a spatial mask that removes (model.spatial_attention=true, "
                             f"model.mask_combine=multiply or mean_fill), got spatial_attention="
                             f"{self.config.spatial_attention}, mask_combine={self.config.mask_combine}")
        self.complement = enabled

    def set_open_answer(self, enabled: bool) -> None:
        """Whether forward also returns `open_logits`, the answer from the whole frames (the mask held open, no
        gradient to the mask net; training only: `train.loss.open_classification`, training/losses.py)."""
        if enabled and self.spatial is None:
            raise ValueError("open_classification needs a spatial mask to hold open (model.spatial_attention=true)")
        self.open_answer = enabled

    def set_early_pool(self, early: str, weight: float) -> None:
        """Blend the temporal attention's and the head's cell pooling with `early` at `weight` (training only:
        `train.early_cell_pool`; a model built from its config pools by `config.cell_pool` alone)."""
        self.temporal.pool.set_early(early, weight)

    def train(self, mode: bool = True) -> "AttentionRecognizer":
        super().train(mode)
        if self.config.freeze_backbone:
            self.backbone.eval()  # frozen BatchNorm statistics too
        return self

    def check_input(self, clip: torch.Tensor) -> None:
        cfg = self.config
        expected = (cfg.clip_length, 3, cfg.height, cfg.width)
        if clip.dim() != 5 or tuple(clip.shape[1:]) != expected:
            raise ValueError(f"clip must be (B, {', '.join(map(str, expected))}) = (B, T, 3, H, W) for this "
                             f"model, got shape {tuple(clip.shape)}")

    @property
    def feature_channels(self) -> int:
        """Channels of forward_features' maps: the trunk's, and one more (how much moves in each cell) with
        mask_prior=motion."""
        return self.backbone.out_channels + (self.config.mask_prior == "motion")

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> per-frame trunk features (B, T, C, h, w), before any attention (C =
        feature_channels: with mask_prior=motion the last channel is how much moves in each cell)."""
        if self.motion is not None:
            clip = self.motion(clip)  # (B, T, 6, H, W): the frame, what moves in it
        B, T, channels, H, W = clip.shape
        features = self.backbone(clip.reshape(B * T, channels, H, W))  # (B*T, C, h, w)
        if self.config.mask_prior == "motion":
            moving = clip[:, :, channels // 2:].abs().mean(dim=2).reshape(B * T, 1, H, W)  # (B*T, 1, H, W)
            energy = cell_means(moving, (int(features.shape[-2]), int(features.shape[-1])))  # (B*T, 1, h, w)
            features = torch.cat([features, energy], dim=1)  # (B*T, C + 1, h, w)
        return features.reshape(B, T, *features.shape[1:])  # (B, T, C, h, w)

    def split_prior(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """forward_features' maps -> the trunk's features (B, T, C, h, w) and the mask's motion prior (B, T, h, w),
        None without mask_prior. What reads "the trunk's features" (the CAM baseline) reads the first."""
        if self.config.mask_prior != "motion":
            return features, None
        return features[:, :, :-1], features[:, :, -1]  # (B, T, C, h, w), (B, T, h, w)

    def forward_head(self, features: torch.Tensor) -> RecognizerOutput:
        """Trunk features (B, T, C, h, w) (forward_features) -> logits and attention."""
        features, prior = self.split_prior(features)
        B, T, C, h, w = features.shape
        if self.training and self.channel_dropout.p > 0:
            # Drop whole channels for all frames of a clip: Dropout2d over (B, C, T, h*w).
            x = self.channel_dropout(features.permute(0, 2, 1, 3, 4).reshape(B, C, T, h * w))
            features = x.reshape(B, C, T, h, w).permute(0, 2, 1, 3, 4)  # (B, T, C, h, w)
        frames = features.reshape(B * T, C, h, w)  # (B*T, C, h, w)
        complement_logits = open_logits = frame_prior = None
        if self.spatial is not None:
            mask = self.spatial(features, prior).reshape(B * T, 1, h, w)  # (B*T, 1, h, w)
            if self.config.temporal_prior == "motion":
                frame_prior = self.frame_prior(mask, prior)  # (B, T)
            if self.complement:
                complement_logits = self.complement_head(frames.detach(), mask, B, T, frame_prior)
            if self.open_answer:  # whole frames: the mask held open (M = 1), its net out of this graph
                open_frames = apply_mask(frames, torch.ones_like(mask), self.config.mask_combine)
                open_logits, _ = self.answer(open_frames, B, T, frame_prior, call=call_keeping_statistics)
            frames = apply_mask(frames, self._mask_used(mask), self.config.mask_combine)
        else:
            mask = frames.new_ones(B * T, 1, h, w)
        logits, steps = self.answer(frames, B, T, frame_prior)  # (B, K), (B, S, T)
        return RecognizerOutput(
            logits=logits,
            spatial_attention=mask.reshape(B, T, h, w),
            temporal_attention=steps.mean(dim=1),
            temporal_attention_steps=steps,
            complement_logits=complement_logits,
            open_logits=open_logits,
        )

    def frame_prior(self, mask: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """model.temporal_prior=motion: temporal_prior_weight * log(c_t + PRIOR_FLOOR) (B, T), c_t how much the
        motion energy `prior` (B, T, h, w) of frame t's cells changes from the previous frame, averaged under the
        frame's mask (B*T, 1, h, w) (temporal_prior_read=peak: under its top cell and their neighbours only); the
        first frame takes the second's. A change, not the energy itself: the
        energy is each frame against the clip's median background, as high on an actor standing where it does
        not spend most of the clip as on one that walks. The mask is detached: "when" follows "where" and does
        not steer it."""
        B, T, h, w = prior.shape
        if T == 1:
            return prior.new_zeros(B, 1)
        change = (prior[:, 1:] - prior[:, :-1]).abs()  # (B, T-1, h, w)
        change = torch.cat([change[:, :1], change], dim=1)  # (B, T, h, w)
        kept = mask.detach()  # (B*T, 1, h, w)
        if self.config.temporal_prior_read == "peak":
            top = (kept >= kept.amax(dim=(2, 3), keepdim=True)).to(kept.dtype)  # (B*T, 1, h, w): the top cell(s)
            kept = kept * F.max_pool2d(top, kernel_size=3, stride=1, padding=1)  # (B*T, 1, h, w): and neighbours
        kept = kept.reshape(B, T, h, w)  # (B, T, h, w)
        moving = (kept * change).sum(dim=(2, 3)) / (kept.sum(dim=(2, 3)) + 1e-6)  # (B, T)
        return self.config.temporal_prior_weight * torch.log(moving + PRIOR_FLOOR)

    def answer(self, frames: torch.Tensor, B: int, T: int, frame_prior: torch.Tensor | None = None,
               call=nn.Module.__call__) -> tuple[torch.Tensor, torch.Tensor]:
        """The layers after the mask: masked frames (B*T, C, h, w) -> logits (B, K), temporal weights (B, S, T);
        `frame_prior` (B, T) is added to the temporal scores; `call(module, *inputs)` runs each layer
        (call_keeping_statistics: a pass that leaves BatchNorm's running statistics alone)."""
        if self.projection is not None:
            frames = call(self.projection, frames)  # (B*T, P, h, w)
        frames = frames.reshape(B, T, *frames.shape[1:])  # (B, T, C, h, w)
        pooled, steps = call(self.temporal, frames, frame_prior)  # (B, Ch), (B, S, T)
        return call(self.classifier, self.head_dropout(pooled)), steps  # (B, K), (B, S, T)

    def _mask_used(self, mask: torch.Tensor) -> torch.Tensor:
        """The mask the features meet: M, detached for the clips set_mask_gradient_samples leaves out, held open
        by `open_mask_weight` (set_open_mask)."""
        keep = self.mask_gradient_samples
        if keep is not None:
            kept = keep.reshape(-1, 1, 1, 1, 1).to(mask.device)  # (B, 1, 1, 1, 1)
            B = kept.shape[0]
            shaped = mask.reshape(B, -1, *mask.shape[1:])  # (B, T, 1, h, w)
            mask = torch.where(kept, shaped, shaped.detach()).reshape(mask.shape)  # (B*T, 1, h, w)
        w = self.open_mask_weight
        if w == 0.0:
            return mask
        if w == 1.0:
            return torch.ones_like(mask)  # no gradient to the mask net: it waits for a classifier that knows
        return w + (1.0 - w) * mask

    def complement_head(self, frames: torch.Tensor, mask: torch.Tensor, B: int, T: int,
                        frame_prior: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) from the features (B*T, C, h, w) the mask (B*T, 1, h, w) removes, `1 - M` in place of
        `M`, through the layers after the mask with their weights held fixed (frozen_call): the gradient of a
        loss on them reaches the mask alone, so the mask, not the classifier, is what makes the removed part
        tell nothing."""
        removed = apply_mask(frames, 1.0 - mask, self.config.mask_combine)  # (B*T, C, h, w)
        if self.projection is not None:
            removed = frozen_call(self.projection, removed)  # (B*T, P, h, w)
        removed = removed.reshape(B, T, *removed.shape[1:])  # (B, T, C, h, w)
        pooled, _ = frozen_call(self.temporal, removed, frame_prior)  # (B, Ch)
        return frozen_call(self.classifier, pooled)  # (B, K)

    def forward(self, clip: torch.Tensor | None = None, *, features: torch.Tensor | None = None) -> RecognizerOutput:
        """Outputs for normalized clips (B, T, 3, H, W), or for the trunk's maps (B, T, C, h, w) already computed
        (a feature cache); through `forward` either way, so DistributedDataParallel sees the call."""
        if features is not None:
            return self.forward_head(features)
        self.check_input(clip)
        return self.forward_head(self.forward_features(clip))

    @torch.no_grad()
    def feature_map_size(self) -> tuple[int, int]:
        """(h, w) of the trunk's output for this config's frame size."""
        was_training = self.training
        self.eval()
        probe = torch.zeros(1, trunk_in_channels(self.config), self.config.height, self.config.width,
                            device=next(self.parameters()).device)
        h, w = self.backbone(probe).shape[-2:]
        self.train(was_training)
        return int(h), int(w)


def probabilities(output: RecognizerOutput) -> torch.Tensor:
    """(B, K) class probabilities: the one softmax used by evaluation and the exported graph."""
    return F.softmax(output.logits.float(), dim=-1)
