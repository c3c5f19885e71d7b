"""Errors of the export stage: every one names what is wrong and what is expected."""

from __future__ import annotations

from typing import Any


class ExportError(RuntimeError):
    """Bad input or an environment that cannot run the requested export (the CLI exits 2)."""


class GateError(ExportError):
    """A verification gate failed: nothing was written. `report` holds the measured numbers (the CLI exits 1)."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report
