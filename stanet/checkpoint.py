"""Checkpoints carry the weights, the ModelConfig and the class names, so export and evaluation rebuild the
model from the file alone. Written atomically (temp file + rename); read with `weights_only=True`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stanet.atomic import atomic_path
from stanet.config import ModelConfig
from stanet.constants import BACKGROUND_CLASS, CHECKPOINT_FORMAT_VERSION, CLIP_SPAN_KEY
from stanet.model import AttentionRecognizer, build_model
from stanet.model.state_dict import compare_state_dicts
from stanet.timeline.windows import ClipSpan


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unreadable, or not matching what the caller expects."""


@dataclass
class Checkpoint:
    model_config: ModelConfig
    class_names: tuple[str, ...]
    state_dict: dict[str, torch.Tensor]
    extra: dict[str, Any]  # training state: train config, optimizer, scheduler, progress, metrics

    @property
    def background(self) -> bool:
        """Whether the last class is BACKGROUND_CLASS, learned from idle time (`train.background=true`)."""
        return bool(self.extra.get("background", False)) and self.class_names[-1:] == (BACKGROUND_CLASS,)

    @property
    def action_class_names(self) -> tuple[str, ...]:
        """The dataset's classes: `class_names` without the background class."""
        return self.class_names[:-1] if self.background else self.class_names

    @property
    def clip_span(self) -> ClipSpan | None:
        """The span of the training clips (training/windows.py, `clip_span`); None in a checkpoint from before
        it was recorded or trained on a feature cache."""
        span = self.extra.get(CLIP_SPAN_KEY)
        return ClipSpan.from_dict(span) if span else None

    def build_model(self) -> AttentionRecognizer:
        model = build_model(self.model_config)
        load_state(model, self.state_dict, source="checkpoint")
        return model


def save_checkpoint(path: str | Path, model: AttentionRecognizer, class_names: list[str] | tuple[str, ...],
                    **extra: Any) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    if len(class_names) != model.config.num_classes:
        raise CheckpointError(f"{len(class_names)} class names for a model with {model.config.num_classes} classes")
    payload = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "class_names": list(class_names),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, durable=True) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated file, not a torch file, or a pickled payload
        raise CheckpointError(f"checkpoint {path} cannot be read as a stanet checkpoint: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(payload, dict) or "model_config" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"checkpoint {path} is not a stanet checkpoint (expected keys model_config, "
                              f"class_names, state_dict)")
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {version}, this stanet reads "
                              f"{CHECKPOINT_FORMAT_VERSION}")
    try:
        config = ModelConfig.from_dict(payload["model_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an invalid model config: {exc}") from None
    class_names = tuple(payload.get("class_names", ()))
    if len(class_names) != config.num_classes:
        raise CheckpointError(f"checkpoint {path} has {len(class_names)} class names for {config.num_classes} classes")
    extra = {k: v for k, v in payload.items() if k not in ("format_version", "model_config", "class_names", "state_dict")}
    return Checkpoint(model_config=config, class_names=class_names, state_dict=payload["state_dict"], extra=extra)


def load_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], *, source: str) -> None:
    """load_state_dict with an error that names what differs (another config's checkpoint)."""
    own = model.state_dict()
    mismatch = compare_state_dicts(own, state_dict)
    if mismatch:
        raise CheckpointError(f"the {source} was made for another model configuration: "
                              + mismatch.describe(own, state_dict, source))
    model.load_state_dict(state_dict)
