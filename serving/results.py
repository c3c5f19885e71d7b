"""What the service answers, as typed objects: top-k labels (parsed from Triton's classification strings),
the spatial attention maps and the temporal weights of each clip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LabelScore:
    label: str
    index: int  # position in the model's label order (labels.txt)
    score: float  # softmax probability


def parse_classification(entry: bytes | str) -> LabelScore:
    """One entry of Triton's classification extension, "<score>:<index>[:<label>]" (the label may itself
    contain ':'; without labels.txt the index stands in for it)."""
    text = entry.decode("utf-8") if isinstance(entry, bytes) else str(entry)
    parts = text.split(":", 2)
    try:
        score, index = float(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise ValueError(f"classification entry {text!r} is not '<score>:<index>[:<label>]'") from None
    return LabelScore(label=parts[2] if len(parts) == 3 else str(index), index=index, score=score)


@dataclass(frozen=True)
class ClipPrediction:
    top_k: tuple[LabelScore, ...]  # best first
    spatial_attention: np.ndarray  # (T, h, w) float32 in [0, 1]: where the model looked in each frame
    temporal_attention: np.ndarray  # (T,) float32, sums to 1: how much each frame counted

    @property
    def label(self) -> str:
        return self.top_k[0].label

    @property
    def score(self) -> float:
        return self.top_k[0].score

    def focus(self, frame_hw: tuple[int, int]) -> tuple[int, float, float]:
        """(clip frame t with the largest temporal weight, x, y): the centre of the mask's strongest cell in
        that frame, in pixels of a frame of size `frame_hw`."""
        t = int(np.argmax(self.temporal_attention))
        h, w = self.spatial_attention.shape[1:]
        row, col = np.unravel_index(int(np.argmax(self.spatial_attention[t])), (h, w))
        return t, (col + 0.5) * frame_hw[1] / w, (row + 0.5) * frame_hw[0] / h

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": self.score,
            "top_k": [{"label": s.label, "index": s.index, "score": s.score} for s in self.top_k],
            "temporal_attention": [round(float(v), 6) for v in self.temporal_attention],
            "spatial_attention": np.round(self.spatial_attention.astype(np.float64), 6).tolist(),
        }


@dataclass(frozen=True)
class VideoPrediction:
    """The answer for one video file: its prediction, or the error that stopped it (never both)."""

    video: str
    prediction: ClipPrediction | None = None
    error: str | None = None
    frame_indices: np.ndarray | None = None  # (T,) which frames of the video made the clip
    num_frames: int = 0  # frames decoded from the video
    frame_hw: tuple[int, int] | None = None  # the video's frame size
    frames: np.ndarray | None = field(default=None, repr=False)  # (T, H, W, 3) the sampled frames, full size

    @property
    def ok(self) -> bool:
        return self.prediction is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"video": self.video, "error": self.error}
        if self.prediction is not None:
            out.update(self.prediction.to_dict())
            out["frame_indices"] = [int(i) for i in self.frame_indices]
            out["num_frames"] = self.num_frames
            out["frame_size"] = list(self.frame_hw)
        return out
