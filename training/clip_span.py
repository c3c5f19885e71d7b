"""The span of a run's training clips, recorded in its checkpoints (stanet.constants.CLIP_SPAN_KEY) and, by
`stanet export`, in the served model's config.pbtxt: a timeline cuts a long video into windows of this span
(stanet/timeline/windows.py). A training clip is a whole trimmed video sampled TSN-style, so the span is the
median length of the training videos, in frames and in seconds (frames over the median frame rate)."""

from __future__ import annotations

import numpy as np

from stanet.dataset_format import ClipRecord
from stanet.timeline.windows import ClipSpan
from stanet.video import VideoDecodeError, probe_video

SPAN_PROBES = 64  # videos probed (evenly spread over the split): a median, not a census


def training_clip_span(records: list[ClipRecord]) -> ClipSpan | None:
    """The median frames and seconds of (up to SPAN_PROBES of) `records`' videos; None when none reads."""
    if not records:
        return None
    picks = np.unique(np.linspace(0, len(records) - 1, min(SPAN_PROBES, len(records))).round().astype(int))
    frames, rates = [], []
    for i in picks:
        try:
            info = probe_video(records[i].video)
        except VideoDecodeError:
            continue
        frames.append(info.num_frames)
        rates.append(info.fps)
    if not frames:
        return None
    median_frames = int(round(float(np.median(frames))))
    return ClipSpan(frames=median_frames, seconds=median_frames / float(np.median(rates)))
