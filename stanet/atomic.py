"""Atomic file replacement: write a hidden temporary file beside the target, then `os.replace` it over the
target, so a reader sees the old file or the whole new one, never a part (no torch or numpy import)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path, *, mode: int = 0o600, durable: bool = False) -> Iterator[Path]:
    """Yield an empty temporary file `.NAME.<random>.tmp` beside `target` for the caller to write (by path);
    when the block ends without an exception, move it over `target`, otherwise delete it.

    Args:
        mode: permission bits of the new file, the umask applied (0o600 is mkstemp's; 0o666 those of open()).
        durable: fsync the file before the rename and the directory after it, so the new file also survives
            a power loss.
    """
    target = Path(target)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))  # the same directory: rename is atomic
    try:
        yield temporary
        if durable:
            _fsync(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        _fsync(target.parent)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
