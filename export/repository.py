"""Atomic writes into a Triton model repository: a model directory (or one new version folder of it) is built
in full in a temporary directory, then moved into place with one `os.rename`. On any failure the repository
is left exactly as it was; an existing version folder is never touched.

The temporary directory sits beside the repository (in its parent), so Triton never sees a half-built model
while it scans the repository; when the parent is not writable or is another file system (a mounted
volume: rename cannot cross it), it sits inside the repository under a dot-name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from export.errors import ExportError
from stanet.constants import CONFIG_FILE, LABELS_FILE

REPORT_FILE = "export_report.json"


@dataclass(frozen=True)
class ModelFiles:
    """What one export writes: the model-level files and the version folder's files (name -> bytes)."""

    config: str
    labels: str
    report: str
    version_files: dict[str, bytes]


@dataclass(frozen=True)
class WritePlan:
    repository: Path
    model_dir: Path
    version_dir: Path
    new_model: bool  # False: only a version folder is added to an existing model directory


def _normalized(config_text: str) -> list[str]:
    """Config lines without comments and blank lines: what Triton reads."""
    lines = (re.sub(r"#.*", "", line).strip() for line in config_text.splitlines())
    return [line for line in lines if line]


def _first_difference(old: list[str], new: list[str]) -> str:
    for i, (a, b) in enumerate(zip(old, new)):
        if a != b:
            return f"existing {a!r}, new {b!r}"
    return f"the existing file has {len(old)} lines, the new one {len(new)}"


def plan_write(repository: str | Path, name: str, version: int, config: str, labels: str) -> WritePlan:
    """Check, before any work is spent, that the model can be written; raise ExportError if not."""
    repository = Path(repository)
    if version < 1:
        raise ExportError(f"--version must be >= 1, got {version}")
    if repository.exists() and not repository.is_dir():
        raise ExportError(f"model repository {repository} is not a directory")
    if not repository.exists():  # created by the export, inside an existing directory
        parent = repository.parent
        if not parent.is_dir():
            raise ExportError(f"model repository {repository} cannot be created: {parent} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ExportError(f"model repository {repository} cannot be created: {parent} is not writable")
    elif not os.access(repository, os.W_OK | os.X_OK):
        raise ExportError(f"model repository {repository} is not writable")
    model_dir, version_dir = repository / name, repository / name / str(version)
    if version_dir.exists():
        raise ExportError(f"version folder {version_dir} already exists; versions are never overwritten, "
                          f"choose another --version")
    if not model_dir.exists():
        return WritePlan(repository, model_dir, version_dir, new_model=True)
    if not model_dir.is_dir():
        raise ExportError(f"{model_dir} exists and is not a model directory")
    old_config = model_dir / CONFIG_FILE
    if not old_config.is_file():
        raise ExportError(f"{model_dir} exists without a {CONFIG_FILE}; choose another --name or repository")
    old, new = _normalized(old_config.read_text()), _normalized(config)
    if old != new:
        raise ExportError(f"{old_config} differs from the config this export needs ({_first_difference(old, new)}); "
                          f"every version of a model shares one config.pbtxt, so export under another --name "
                          f"or into another repository")
    old_labels = model_dir / LABELS_FILE
    if not old_labels.is_file() or old_labels.read_text() != labels:
        raise ExportError(f"{old_labels} does not list this checkpoint's classes in the same order; export "
                          f"under another --name")
    if not os.access(model_dir, os.W_OK | os.X_OK):
        raise ExportError(f"model directory {model_dir} is not writable")
    return WritePlan(repository, model_dir, version_dir, new_model=False)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _staging_root(repository: Path) -> Path:
    parent = repository.parent
    if (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)
            and parent.stat().st_dev == repository.stat().st_dev):
        return parent
    return repository


def write_model(repository: str | Path, name: str, version: int, files: ModelFiles) -> WritePlan:
    """Write the model directory (or its new version folder) atomically; returns what was written."""
    plan = plan_write(repository, name, version, files.config, files.labels)  # again: the repository may have moved
    created_repository = not plan.repository.exists()
    try:
        plan.repository.mkdir(parents=False, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"model repository {plan.repository} cannot be created: {exc}") from None
    staging = None
    moved_version = False
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.export-", dir=_staging_root(plan.repository)))
        root = staging / name
        version_dir = root / str(version)
        version_dir.mkdir(parents=True)
        for filename, data in files.version_files.items():
            _write(version_dir / filename, data)
        if plan.new_model:
            _write(root / CONFIG_FILE, files.config.encode())
            _write(root / LABELS_FILE, files.labels.encode())
            _write(root / REPORT_FILE, files.report.encode())
            os.rename(root, plan.model_dir)  # fails if another writer filled it meanwhile
        else:
            report = plan.model_dir / f".{REPORT_FILE}.{os.getpid()}.tmp"
            _write(report, files.report.encode())
            try:
                os.rename(version_dir, plan.version_dir)
                moved_version = True
                os.replace(report, plan.model_dir / REPORT_FILE)  # the report describes the newest version
            finally:
                report.unlink(missing_ok=True)
    except BaseException as exc:
        if moved_version:  # undo: the version folder goes back out before the staging area is removed
            os.rename(plan.version_dir, staging / name / str(version))
        if created_repository:
            shutil.rmtree(plan.repository, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ExportError(f"writing {plan.model_dir} failed, the repository is unchanged: {exc}") from None
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return plan
