"""Which frames of which record make each training sample (numpy only): trimmed clips, action windows cut
from untrimmed videos, and background windows from the frames outside every action.

- A trimmed clip is one sample, T frames spread over the whole clip (stanet.sampling), as always.
- Every segment of an untrimmed record is one action sample: a window of `span` frames (the training
  clips' span, `clip_span`) inside the segment when it is longer, around it (inside the video) when it is
  shorter, so the model sees an action as it sees a trimmed clip: the action with some idle time around it.
- With `background_index` set, the idle stretches (the frames before and after a trimmed clip's
  `interval`; the gaps between, before and after the segments of an untrimmed video) give background
  samples: a window of `span` frames inside the stretch, the frames taken at the same stride as an action
  clip's; a stretch shorter than `span` but at least `min_idle` frames long gives a window of the whole
  stretch (its frames then up to span / min_idle times denser). Long stretches give one candidate per
  `span` frames. Each epoch draws `background_count` of the candidates (a seeded choice per epoch in
  training, a fixed one for validation), so background is about as frequent as one action class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stanet.dataset_format import ClipRecord, record_segments
from stanet.sampling import sample_frame_indices
from stanet.timeline.windows import ClipSpan  # the span a timeline cuts windows of; saved in the checkpoint

CLIP, ACTION, BACKGROUND = "clip", "action", "background"


@dataclass(frozen=True)
class Sample:
    """One training sample: record index, class index, kind (CLIP, ACTION or BACKGROUND), the stretch of
    frames (first, last, inclusive) the window is cut from or around, and the action frames (for the
    per-frame `inside` flags; None for background)."""

    record: int
    label_index: int
    kind: str
    region: tuple[int, int]
    action: tuple[int, int] | None


def clip_span(records: Sequence[ClipRecord], num_frames: Sequence[int], fps: Sequence[float]) -> ClipSpan:
    """The span of training clips: the median frame count of the trimmed clips, or, with none, the median
    length of the untrimmed records' segments."""
    trimmed = [n for record, n in zip(records, num_frames) if not record.untrimmed]
    lengths = trimmed or [last - first + 1 for record in records if record.untrimmed
                          for _, first, last in record_segments(record)]
    if not lengths:
        raise ValueError("no records to take the clip span from")
    frames = max(1, int(round(float(np.median(lengths)))))
    rate = float(np.median(fps)) if len(fps) else 25.0
    return ClipSpan(frames=frames, seconds=round(frames / rate, 4))


def idle_stretches(actions: Sequence[tuple[int, int]], num_frames: int) -> list[tuple[int, int]]:
    """The maximal (first, last) runs of frames of a video of `num_frames` outside every (first, last) action."""
    covered = np.zeros(num_frames, dtype=bool)
    for first, last in actions:
        covered[max(first, 0):min(last, num_frames - 1) + 1] = True
    stretches, start = [], None
    for t, busy in enumerate(covered):
        if not busy and start is None:
            start = t
        elif busy and start is not None:
            stretches.append((start, t - 1))
            start = None
    if start is not None:
        stretches.append((start, num_frames - 1))
    return stretches


def plan_samples(records: Sequence[ClipRecord], num_frames: Sequence[int], span: int, *,
                 background_index: int | None, min_idle: int) -> tuple[list[Sample], list[Sample]]:
    """(action samples, background candidates) of `records` whose videos hold `num_frames` frames."""
    actions: list[Sample] = []
    backgrounds: list[Sample] = []
    for i, (record, n) in enumerate(zip(records, num_frames)):
        if record.untrimmed:
            busy = [(first, last) for _, first, last in record_segments(record)]
            actions += [Sample(i, segment.label_index, ACTION, (segment.first, segment.last),
                               (segment.first, segment.last)) for segment in record.segments]
        else:
            actions.append(Sample(i, record.label_index, CLIP, (0, n - 1), record.interval))
            if record.interval is None:
                continue  # no idle time is known
            busy = [record.interval]
        if background_index is None:
            continue
        for first, last in idle_stretches(busy, n):
            length = last - first + 1
            if length < min_idle:
                continue
            for _ in range(max(1, length // span)):
                backgrounds.append(Sample(i, background_index, BACKGROUND, (first, last), None))
    return actions, backgrounds


def background_count(actions: Sequence[Sample], candidates: Sequence[Sample]) -> int:
    """Background samples per epoch: as many as the average action class has (at least 1 when there are
    candidates), never more than the candidates."""
    if not candidates:
        return 0
    classes = len({sample.label_index for sample in actions}) or 1
    return min(len(candidates), max(1, math.ceil(len(actions) / classes)))


def epoch_backgrounds(candidates: Sequence[Sample], count: int, seed: int, epoch: int) -> list[Sample]:
    """The `count` background candidates of one epoch, in a seeded order of (seed, epoch)."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(len(candidates))[:count]
    return [candidates[int(i)] for i in order]


def window_indices(sample: Sample, num_frames: int, span: int, clip_length: int, *, random: bool,
                   rng: np.random.Generator | None) -> np.ndarray:
    """The T frame indices (int64, non-decreasing) of one sample of a video of `num_frames` frames."""
    if sample.kind == CLIP:
        return sample_frame_indices(num_frames, clip_length, random=random, rng=rng)
    first, last = sample.region
    length = last - first + 1
    if sample.kind == BACKGROUND:
        width = min(span, length)
        low, high = first, last - width + 1
    else:  # ACTION: inside a long segment, around a short one
        width = min(span, num_frames)
        if length >= width:
            low, high = first, last - width + 1
        else:
            low, high = max(0, last - width + 1), min(first, num_frames - width)
    start = int(rng.integers(low, high + 1)) if random else (low + high) // 2
    return start + sample_frame_indices(width, clip_length, random=random, rng=rng)
