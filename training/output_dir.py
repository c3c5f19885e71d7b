"""Writing a whole output directory atomically: build it beside the target as DIR.tmp-<pid>, then rename it
into place, so DIR is either absent, the old directory, or the complete new one. `--overwrite` only ever
replaces a directory that carries the writing command's marker file."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutputKind:
    """Who writes a directory: `marker` is the file that proves it (e.g. synth_config.json)."""

    marker: str
    what: str  # e.g. "a synthetic dataset"
    command: str  # e.g. "stanet data synth"


def staging_dir(out_dir: Path) -> Path:
    """An empty staging directory path beside `out_dir` (whatever an earlier process with our pid left is
    removed)."""
    staging = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def check_target(out_dir: Path, overwrite: bool, kind: OutputKind) -> None:
    """Raises FileExistsError unless `out_dir` is absent, empty, or (with `overwrite`) one `kind` wrote."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} exists and is not empty; pass --overwrite to replace it")
        if not (out_dir / kind.marker).is_file():
            # --overwrite deletes the directory: only ever one this command wrote.
            raise FileExistsError(f"{out_dir} is not {kind.what} (no {kind.marker}); --overwrite only replaces "
                                  f"directories written by `{kind.command}`")


def move_into_place(staging: Path, out_dir: Path, overwrite: bool, kind: OutputKind) -> None:
    check_target(out_dir, overwrite, kind)  # again: the directory may have been filled meanwhile
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    # Swap by renames, so an interruption leaves the old directory or the new one, never a mix.
    old = out_dir.with_name(f"{out_dir.name}.old-{os.getpid()}")
    out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old)
