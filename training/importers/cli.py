"""`stanet data import --format FORMAT SRC --out DIR`: read a public dataset's official files (or a folder
per class) and write the generic dataset format, with a seeded val split carved out of train.

    SRC ──reader (ucf101 | hmdb51 | folders | thumos14 | ucf101-24)──> SourceDataset (videos probed;
        unreadable ones skipped and counted) ──carve_splits──> train/val/test ──write_imported──> DIR
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stanet.constants import SPLITS
from stanet.dataset_format import DatasetFormatError
from training.importers import folders, hmdb51, thumos14, ucf101, ucf101_24
from training.importers.source import SourceDataset, VideoProber
from training.importers.splits import SplitError, carve_splits
from training.importers.write import write_imported

Reader = Callable[[Path, Sequence[Path], int, VideoProber], SourceDataset]
# --format -> reader; the formats with an official test split take --split, the folder layout carves test.
FORMATS: dict[str, Reader] = {
    "ucf101": ucf101.read,
    "hmdb51": hmdb51.read,
    "folders": folders.read,
    "thumos14": thumos14.read,
    "ucf101-24": ucf101_24.read,
}
FORMATS_WITHOUT_TEST = ("folders",)
DEFAULT_VAL_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.2  # the folder layout only
_SHOWN_SKIPS = 5


@dataclass(frozen=True)
class ImportConfig:
    """One import.

    Attributes:
        format: a key of FORMATS.
        source: SRC, the directory holding the videos.
        out: the dataset directory to write.
        annotations: where the split/annotation files are (files, or directories searched recursively);
            empty means SRC.
        split: the official split number (UCF101, HMDB51: 1..3; UCF101-24: 1).
        val_fraction: fraction of each class's train groups moved to val.
        test_fraction: fraction of each class's groups moved to test (the folder layout only).
        seed: seed of the carved splits.
        copy: copy the videos into DIR/videos instead of linking DIR/videos to SRC.
        overwrite: replace DIR if an earlier import wrote it.
    """

    format: str
    source: Path
    out: Path
    annotations: tuple[Path, ...] = ()
    split: int = 1
    val_fraction: float = DEFAULT_VAL_FRACTION
    test_fraction: float = 0.0
    seed: int = 0
    copy: bool = False
    overwrite: bool = False

    @property
    def fractions(self) -> dict[str, float]:
        """Split -> fraction of each class's train groups carved into it."""
        if self.format in FORMATS_WITHOUT_TEST:
            return {"val": self.val_fraction, "test": self.test_fraction}
        return {"val": self.val_fraction}


def import_dataset(config: ImportConfig, *, progress: bool = True) -> dict[str, Any]:
    """Read `config.source` in `config.format`, carve the splits, write `config.out`.

    Returns:
        The import report (also written to DIR/import.json): options, clips per split, skipped videos.

    Raises:
        DatasetFormatError: a source file is missing or does not parse (file, line, what was expected).
        SplitError: the val/test split cannot be carved as asked.
        FileExistsError: DIR exists and is not empty (see --overwrite).
        ValueError: invalid options.
    """
    _check_config(config)
    source = config.source.resolve()
    annotations = tuple(config.annotations) or (source,)
    with tqdm(desc="probing videos", unit="video", disable=not progress, leave=False) as bar:
        prober = VideoProber(source, on_probe=bar.update)
        dataset = FORMATS[config.format](source, annotations, config.split, prober)
    clips = carve_splits(dataset.clips, config.fractions, config.seed)
    if not clips:
        raise DatasetFormatError(source, f"found no readable video to import ({len(prober.skipped)} skipped)")
    counts = Counter(clip.split for clip in clips)
    report = {
        "format": config.format,
        "source": str(source),
        "annotations": [str(a) for a in annotations],
        "split": None if config.format in FORMATS_WITHOUT_TEST else config.split,
        "fractions": config.fractions,
        "seed": config.seed,
        "copy": config.copy,
        "classes": len(dataset.class_names),
        "clips": {split: counts.get(split, 0) for split in SPLITS},
        "videos": len({clip.video for clip in clips}),
        "skipped": [{"video": video, "reason": reason} for video, reason in sorted(prober.skipped.items())],
        "notes": list(dataset.notes),
    }
    write_imported(config.out, source, dataset.class_names, clips, copy=config.copy, overwrite=config.overwrite,
                   report=report)
    return report


def _check_config(config: ImportConfig) -> None:
    if config.format not in FORMATS:
        raise ValueError(f"unknown format {config.format!r}, expected one of {tuple(FORMATS)}")
    if not config.source.is_dir():
        raise FileNotFoundError(f"{config.source}: no such source directory")
    for path in config.annotations:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such annotation file or directory")
    if config.split < 1:
        raise ValueError(f"--split must be >= 1, got {config.split}")
    if config.format not in FORMATS_WITHOUT_TEST and config.test_fraction:
        raise ValueError(f"--test-fraction applies to the folder layout only; {config.format} has an official "
                         f"test split")
    out, source = config.out.resolve(), config.source.resolve()
    if out == source or source in out.parents:
        raise ValueError(f"--out {config.out} lies inside the source {config.source}; write it elsewhere")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stanet data import",
        description="Convert a dataset into the generic format (classes.txt + annotations.jsonl). Videos are "
        "linked (DIR/videos -> SRC), not copied, unless --copy. See docs/datasets.md.")
    parser.add_argument("source", type=Path, metavar="SRC", help="directory holding the videos")
    parser.add_argument("--format", required=True, choices=tuple(FORMATS), help="layout of SRC")
    parser.add_argument("--out", type=Path, required=True, help="dataset directory to create")
    parser.add_argument("--annotations", type=Path, action="append", default=[], metavar="PATH",
                        help="split/annotation file or directory (searched recursively; repeatable; default SRC)")
    parser.add_argument("--split", type=int, default=1, help="official split number (default 1)")
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                        help=f"fraction of each class's train groups carved out as val (default "
                        f"{DEFAULT_VAL_FRACTION})")
    parser.add_argument("--test-fraction", type=float, default=None,
                        help=f"folders only: fraction of each class's groups for test (default "
                        f"{DEFAULT_TEST_FRACTION})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the carved splits (default 0)")
    parser.add_argument("--copy", action="store_true", help="copy the videos into DIR/videos")
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if an earlier import wrote it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> ImportConfig:
    test_fraction = args.test_fraction
    if test_fraction is None:
        test_fraction = DEFAULT_TEST_FRACTION if args.format in FORMATS_WITHOUT_TEST else 0.0
    return ImportConfig(format=args.format, source=args.source, out=args.out, annotations=tuple(args.annotations),
                        split=args.split, val_fraction=args.val_fraction, test_fraction=test_fraction,
                        seed=args.seed, copy=args.copy, overwrite=args.overwrite)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = import_dataset(config_from_args(args), progress=not args.quiet)
    except (DatasetFormatError, SplitError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"stanet data import: error: {exc}", file=sys.stderr)
        return 2
    clips = report["clips"]
    print(f"imported {sum(clips.values())} clips ({', '.join(f'{s} {n}' for s, n in clips.items())}) of "
          f"{report['videos']} videos, {report['classes']} classes, into {args.out}")
    for note in report["notes"]:
        print(f"note: {note}")
    skipped = report["skipped"]
    if skipped:
        shown = "; ".join(f"{s['video']}: {s['reason']}" for s in skipped[:_SHOWN_SKIPS])
        more = f"; ... ({len(skipped) - _SHOWN_SKIPS} more in import.json)" if len(skipped) > _SHOWN_SKIPS else ""
        print(f"skipped {len(skipped)} unreadable video(s): {shown}{more}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
