"""The served tensors of one checkpoint: names from stanet.constants, dims from its ModelConfig.

The ONNX graph checks, config.pbtxt and the parity gate all read this one description, so a tensor's name,
type and shape are never written twice. No torch here: the feature-map size (h, w) is measured by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from stanet.config import ModelConfig
from stanet.constants import (INPUT_CLIP, OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION,
                              OUTPUT_TEMPORAL_ATTENTION)

BATCH_AXIS = "batch"  # the one dynamic axis (axis 0 of every input and output)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "uint8" or "float32"
    dims: tuple[int, ...]  # without the leading batch axis


@dataclass(frozen=True)
class ServingSignature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def clip(self) -> TensorSpec:
        return self.inputs[0]

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)

    def output(self, name: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(name)


def serving_signature(config: ModelConfig, feature_hw: tuple[int, int]) -> ServingSignature:
    """clip UINT8 [B, T, H, W, 3] -> probabilities FP32 [B, K], spatial_attention FP32 [B, T, h, w],
    temporal_attention FP32 [B, T]."""
    T, (h, w) = config.clip_length, feature_hw
    return ServingSignature(
        inputs=(TensorSpec(INPUT_CLIP, "uint8", (T, config.height, config.width, 3)),),
        outputs=(
            TensorSpec(OUTPUT_PROBABILITIES, "float32", (config.num_classes,)),
            TensorSpec(OUTPUT_SPATIAL_ATTENTION, "float32", (T, int(h), int(w))),
            TensorSpec(OUTPUT_TEMPORAL_ATTENTION, "float32", (T,)),
        ),
    )


def profile_shapes(signature: ServingSignature, max_batch: int) -> dict[str, tuple[int, ...]]:
    """The one optimization profile: min batch 1, opt max//2 (at least 1), max `max_batch`."""
    dims = signature.clip.dims
    return {"min": (1, *dims), "opt": (max(max_batch // 2, 1), *dims), "max": (max_batch, *dims)}
