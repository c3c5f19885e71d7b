"""The model's one configuration: a frozen dataclass passed explicitly to `build_model` and saved in every
checkpoint, so export and evaluation rebuild the model without the training flags (no torch import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

C = TypeVar("C")

BACKBONES = ("compact", "resnet18", "resnet50")
TEMPORAL_MODES = ("recurrent", "convlstm_first", "none")
MASK_INPUTS = ("frame", "motion", "clip")
MASK_ACTIVATIONS = ("sigmoid", "spatial_softmax")
MASK_COMBINES = ("multiply", "mean_fill", "residual")
CELL_POOLS = ("average", "max", "max_average")
TRUNK_INPUTS = ("frame", "motion", "difference")
MASK_PRIORS = ("none", "motion")
TEMPORAL_PRIORS = ("none", "motion")
TEMPORAL_PRIOR_READS = ("mask", "peak")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the attention recognizer.

    Attributes:
        num_classes: K.
        clip_length: frames per clip T; export unrolls the ConvLSTM for exactly this T.
        height, width: input frame size after resizing.
        backbone: "compact" (a small trunk, output stride 4, trains on 2 CPU cores), "resnet18" or "resnet50"
            (torchvision layouts, output stride 32: 7x7 maps at 224).
        backbone_width: base channel width of the compact trunk (its feature maps have 2x this).
        trunk_input: "frame" (the paper: the trunk sees each frame alone), "motion" (each frame and what moves in
            it: the frame minus the clip's median background after cancelling the camera's translation,
            stanet.model.motion; a still or panning texture drops out) or "difference" (the frame and its
            stabilized difference to the previous frame, which also lights up where the object was).
        motion_radius: the camera-translation search of trunk_input=motion|difference, +- pixels of the model's
            input per sampled frame pair (0: no search, for a still camera).
        freeze_backbone: keep the trunk's weights (and BatchNorm statistics) fixed.
        spatial_attention: learn the per-frame mask M; off = the "no spatial attention" ablation (M = 1).
        mask_input: "frame" (the paper: the mask from each frame's features alone), "motion" (the frame's
            features and their differences to the neighbouring frames) or "clip" (those and the clip's mean of
            each cell's features): what can tell look-alikes apart (stanet.model.spatial_attention).
        mask_activation: "sigmoid" (the paper) or "spatial_softmax" (exp(z - max z) over each frame's cells).
        mask_prior: "none" (the paper) or "motion" (the mask's scores plus the log of how much moves in each cell,
            from the trunk input's motion channels: a cell where nothing moves scores 4.6 below one where an
            object moves, so the mask does not settle on a still cell beside the actor; needs
            trunk_input=motion|difference).
        mask_prior_weight: the prior's log times this (> 0). Below 1 a cell the actor only partly covers falls
            less far below the one it fills (with equal learned scores; in training the learned scores
            sharpened instead: docs/benchmark.md, "The motion prior").
        mask_score_bound: 0 (the paper) or b > 0: the mask net's learned scores pass through b tanh(z / b) before
            the prior is added, so they move a cell against another by less than 2b. With mask_prior=motion the
            mask then chooses among the cells where things move and cannot settle where e^(2b) times less moves
            (docs/model.md, "Bounded learned scores").
        mask_combine: how M meets the features: "multiply" (the paper, X~ = M X), "mean_fill"
            (X~ = mu + M (X - mu), mu the frame's mean feature: a removed region carries no evidence) or
            "residual" (X~ = (1 + M) X).
        temporal_attention: "recurrent" (docs/model.md: attention-pooled input Y_s at every ConvLSTM step, scores
            v.tanh(Wx GAP(X~_t) + Wh GAP(H_{s-1}) + b)), "convlstm_first" (the paper's alternative: ConvLSTM
            over the frames in order, then softmax attention over GAP(H_t)), or "none" (uniform weights).
        temporal_prior: "none" (the paper) or "motion" (the temporal scores plus the log of how much the motion
            energy of the cells the mask keeps changes from the previous frame: "when" leans to the frames where
            the attended object moves, not to idle ones that classify as well; needs mask_prior=motion, whose
            energy it reads, and temporal attention).
        temporal_prior_weight: that log times this (> 0).
        temporal_prior_read: where the temporal prior reads the motion change: "mask" (the cells weighted by the
            whole mask) or "peak" (the mask's top cell and its 8 neighbours, weighted by the mask: a distractor the
            mask keeps at a fraction of the actor's value does not enter "when", however weakly the mask
            suppresses it, e.g. under mask_score_bound).
        cell_pool: how the temporal attention and the head reduce a map over its cells: "average" (GAP, the
            paper), "max" (a small actor is not diluted by clutter) or "max_average" ((max + average) / 2: the
            cells the mask keeps still cost; stanet.model.temporal_attention.pool_cells).
        projection_channels: optional 1x1 conv C -> P before the ConvLSTM (0 = none); the ConvLSTM gates conv
            costs 2*(C+Ch)*4Ch*9*h*w FLOPs per step, so a projection is the cheapest lever for big trunks.
        hidden_channels: ConvLSTM hidden size Ch.
        attention_dim: width of the temporal score MLP.
        channel_dropout: Dropout2d on the features in training (whole channels, all frames of a clip).
        head_dropout: dropout before the classifier.
    """

    num_classes: int
    clip_length: int = 16
    height: int = 64
    width: int = 64
    backbone: str = "compact"
    backbone_width: int = 32
    trunk_input: str = "frame"
    motion_radius: int = 3
    freeze_backbone: bool = False
    spatial_attention: bool = True
    mask_input: str = "frame"
    mask_activation: str = "sigmoid"
    mask_prior: str = "none"
    mask_prior_weight: float = 1.0
    mask_score_bound: float = 0.0
    mask_combine: str = "multiply"
    temporal_attention: str = "recurrent"
    temporal_prior: str = "none"
    temporal_prior_weight: float = 1.0
    temporal_prior_read: str = "mask"
    cell_pool: str = "average"
    projection_channels: int = 0
    hidden_channels: int = 64
    attention_dim: int = 64
    channel_dropout: float = 0.2
    head_dropout: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if self.num_classes < 2:
            problems.append(f"num_classes must be >= 2, got {self.num_classes}")
        if self.clip_length < 1:
            problems.append(f"clip_length must be >= 1, got {self.clip_length}")
        if self.height < 16 or self.width < 16:
            problems.append(f"height and width must be >= 16, got {self.height}x{self.width}")
        if self.backbone not in BACKBONES:
            problems.append(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        for name, allowed in (("mask_input", MASK_INPUTS), ("mask_activation", MASK_ACTIVATIONS),
                              ("mask_combine", MASK_COMBINES), ("cell_pool", CELL_POOLS),
                              ("trunk_input", TRUNK_INPUTS), ("mask_prior", MASK_PRIORS),
                              ("temporal_prior", TEMPORAL_PRIORS),
                              ("temporal_prior_read", TEMPORAL_PRIOR_READS)):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.temporal_attention not in TEMPORAL_MODES:
            problems.append(f"temporal_attention must be one of {TEMPORAL_MODES}, got {self.temporal_attention!r}")
        for name in ("backbone_width", "hidden_channels", "attention_dim"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.motion_radius < 0:
            problems.append(f"motion_radius must be >= 0 pixels, got {self.motion_radius}")
        elif self.trunk_input != "frame" and min(self.height, self.width) <= 2 * self.motion_radius:
            problems.append(f"motion_radius {self.motion_radius} needs frames larger than "
                            f"{2 * self.motion_radius} pixels, got {self.height}x{self.width}")
        if self.mask_prior == "motion" and (self.trunk_input == "frame" or not self.spatial_attention):
            problems.append(f"mask_prior=motion needs a spatial mask and a trunk input with motion channels "
                            f"(trunk_input=motion or difference), got spatial_attention={self.spatial_attention}, "
                            f"trunk_input={self.trunk_input!r}")
        if not self.mask_prior_weight > 0:
            problems.append(f"mask_prior_weight must be > 0, got {self.mask_prior_weight}")
        if not self.mask_score_bound >= 0:
            problems.append(f"mask_score_bound must be >= 0 (0: unbounded), got {self.mask_score_bound}")
        if self.temporal_prior == "motion" and (self.mask_prior != "motion" or self.temporal_attention == "none"):
            problems.append(f"temporal_prior=motion needs mask_prior=motion (its motion energy) and temporal "
                            f"attention, got mask_prior={self.mask_prior!r}, "
                            f"temporal_attention={self.temporal_attention!r}")
        if self.temporal_prior_read != "mask" and self.temporal_prior != "motion":
            problems.append(f"temporal_prior_read={self.temporal_prior_read!r} needs temporal_prior=motion (what "
                            f"it reads), got temporal_prior={self.temporal_prior!r}")
        if not self.temporal_prior_weight > 0:
            problems.append(f"temporal_prior_weight must be > 0, got {self.temporal_prior_weight}")
        if self.projection_channels < 0:
            problems.append(f"projection_channels must be >= 0, got {self.projection_channels}")
        for name in ("channel_dropout", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        return from_known_fields(cls, values)


def from_known_fields(cls: type[C], values: dict[str, Any]) -> C:
    """`cls(**values)` for a config dataclass, refusing unknown keys by name with the known ones listed."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
    return cls(**values)
