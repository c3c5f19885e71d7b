"""The seeded, grouped, stratified split: a fraction of each class's train *groups* moves to val (and, for
the folder layout, to test), so clips of one group (one UCF101 gNN, one HMDB51 source movie, one video's
instances) never straddle two splits.

Per class, the class's train groups are sorted by name and permuted by a generator seeded with
(seed, CRC-32 of the class name): the result depends only on the seed, the class and its groups, never on
the other classes or on file order. A split with a fraction f > 0 gets round(f * groups), at least 1.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
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
    groups_of: dict[str, set[str]] = defaultdict(set)
    for clip in clips:
        if clip.split == "train":
            groups_of[clip.label].add(clip.group)

    moved: dict[tuple[str, str], str] = {}  # (label, group) -> new split
    for label, groups in groups_of.items():
        ordered = sorted(groups)
        counts = [(split, max(1, round(fraction * len(ordered)))) for split, fraction in wanted]
        if sum(n for _, n in counts) >= len(ordered):
            need = " + ".join(f"{n} {split}" for split, n in counts)
            raise SplitError(f"class {label!r} has {len(ordered)} train group(s); carving {need} would leave none "
                             f"for train: add clips to the class or lower the fractions")
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        order = [ordered[i] for i in rng.permutation(len(ordered))]
        start = 0
        for split, n in counts:
            for group in order[start:start + n]:
                moved[(label, group)] = split
            start += n
    return [replace(clip, split=moved[(clip.label, clip.group)]) if (clip.label, clip.group) in moved and
            clip.split == "train" else clip for clip in clips]
