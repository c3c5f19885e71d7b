"""Every test in tests/server starts (or talks to) the real tritonserver or Prometheus: the `server` marker
selects or skips them as a group (`pytest -m server`, `pytest -m "not server"`)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.server)
