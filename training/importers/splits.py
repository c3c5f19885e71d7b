"""The seeded, grouped, stratified split: a fraction of each class's train *groups* moves to val (and, for
the folder layout, to test), so clips of one group (one UCF101 gNN, one HMDB51 source movie, one THUMOS14
video's instances) never straddle two splits.

A group belongs to one class for the draw: the class with most of its train clips (ties: the first class
name in sorted order); its clips of other classes follow it. Per class, the class's groups are sorted by
name and permuted by a generator seeded with (seed, CRC-32 of the class name): the result depends only on
the seed, the class and its groups, never on the other classes or on file order. A split with a fraction
f > 0 gets f * groups rounded half up, at least 1.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from training.importers.source import SourceClip

CARVED_SPLITS = ("val", "test")  # the order in which groups are handed out


class SplitError(ValueError):
    """The requested split cannot be made (a class has too few groups, or the fractions are invalid)."""


def check_fractions(fractions: Mapping[str, float]) -> None:
    for split, fraction in fractions.items():
        if split not in CARVED_SPLITS:
            raise SplitError(f"cannot carve a {split!r} split, expected one of {CARVED_SPLITS}")
        if not 0.0 <= fraction < 1.0:
            raise SplitError(f"--{split}-fraction must be in [0, 1), got {fraction:g}")
    if sum(fractions.values()) >= 1.0:
        raise SplitError(f"the carved fractions sum to {sum(fractions.values()):g}; train needs the rest (> 0)")


def carve_splits(clips: Sequence[SourceClip], fractions: Mapping[str, float], seed: int) -> list[SourceClip]:
    """Move a seeded fraction of each class's train groups into the splits named in `fractions`.

    Args:
        clips: the reader's clips; only those with split "train" are candidates.
        fractions: split name ("val" or "test") -> fraction of each class's train groups it receives.
        seed: the split's seed.

    Returns:
        The clips in the same order, with their split changed where their group moved.

    Raises:
        SplitError: bad fractions, or a class has too few train groups to leave one in train.
    """
    check_fractions(fractions)
    wanted = [(split, fractions[split]) for split in CARVED_SPLITS if fractions.get(split, 0.0) > 0.0]
    if not wanted:
        return list(clips)
    moved: dict[str, str] = {}  # group -> new split
    for label, groups in _groups_by_class(clips).items():
        counts = [(split, max(1, math.floor(fraction * len(groups) + 0.5))) for split, fraction in wanted]
        if sum(n for _, n in counts) >= len(groups):
            need = " + ".join(f"{n} {split}" for split, n in counts)
            raise SplitError(f"class {label!r} has {len(groups)} train group(s); carving {need} would leave none "
                             f"for train: add clips to the class or lower the fractions")
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        order = [groups[i] for i in rng.permutation(len(groups))]
        start = 0
        for split, n in counts:
            for group in order[start:start + n]:
                moved[group] = split
            start += n
    return [replace(clip, split=moved[clip.group]) if clip.split == "train" and clip.group in moved else clip
            for clip in clips]


def _groups_by_class(clips: Sequence[SourceClip]) -> dict[str, list[str]]:
    """Class -> the sorted train groups drawn for it (each group under the class with most of its clips)."""
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    for clip in clips:
        if clip.split == "train":
            per_group[clip.group][clip.label] += 1
    by_class: dict[str, list[str]] = defaultdict(list)
    for group, labels in per_group.items():
        owner = min(labels, key=lambda label: (-labels[label], label))
        by_class[owner].append(group)
    return {label: sorted(groups) for label, groups in sorted(by_class.items())}
