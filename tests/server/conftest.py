"""Every test in tests/server starts (or talks to) the real tritonserver or Prometheus: the `server` marker
selects or skips them as a group (`pytest -m server`, `pytest -m "not server"`). After each module, no
python-backend stub process and no shared-memory region of a Triton this test run started may remain."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import wait_for
from serving.python_backend_shm import regions, session_prefix, stubs

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind():
    """Every Triton started from this session (in-process, or by a `stanet serve` child, which shares the
    session) names its regions with `session_prefix()`: none of its stubs or regions outlives the module."""
    prefix = session_prefix()
    yield
    left = lambda: (stubs(prefix), [p.name for p in regions(prefix)])  # noqa: E731
    try:
        wait_for(lambda: left() == ([], []), 15, what="no stub or shared-memory region left")
    except AssertionError:
        raise AssertionError(f"left behind by this module (stub pids, /dev/shm regions): {left()}") from None
