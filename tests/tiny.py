"""The one definition of the tests' tiny sizes: a tiny `ModelConfig`, the tiny synthetic dataset's arguments
and the `--set` overrides that train a tiny model in seconds."""

from __future__ import annotations

from stanet.config import ModelConfig

# Small enough to run a forward pass in milliseconds, large enough for every module to have a real shape
# (feature maps of 8x8 at 32 px).
TINY_SIZES = dict(height=32, width=32, backbone_width=8, hidden_channels=8, attention_dim=8)


def tiny_model_config(num_classes: int = 4, clip_length: int = 4, **fields) -> ModelConfig:
    """A tiny recognizer's config; `fields` override any `ModelConfig` field."""
    return ModelConfig(**{**TINY_SIZES, "num_classes": num_classes, "clip_length": clip_length, **fields})


TINY_SYNTH = ["--train", "48", "--val", "16", "--test", "24", "--num-frames", "16", "--frame-size", "32",
              "--seed", "7"]
TINY_MODEL = [f"model.{key}={value}" for key, value in {"clip_length": 8, **TINY_SIZES}.items()]
TINY_TRAIN = ["train.batch_size=8", "train.max_minutes=0", "train.lr=3e-3"]


def tiny_overrides(epochs: int = 2, *extra: str) -> list[str]:
    """Configuration arguments for `stanet train`: the `plain` preset (the dataclass defaults, whatever the
    default recipe is), the tiny model, `epochs` epochs, then `extra` fields."""
    args = ["--preset", "plain"]
    for item in [*TINY_MODEL, *TINY_TRAIN, f"train.epochs={epochs}", *extra]:
        args += ["--set", item]
    return args
