"""What an attacker's files cannot do (a pickle payload in a checkpoint), and pinned versions that carry
the security fixes the project relies on (docs/reliability.md, rows S7 and S9)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from helpers import PROJECT


class _Payload:
    """Unpickling this would create a marker file: a stand-in for code execution by a checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_payload_in_a_checkpoint_is_refused(tmp_path):
    """Row S7 of docs/reliability.md."""
    import torch

    from stanet.checkpoint import CheckpointError, load_checkpoint

    marker = tmp_path / "executed"
    path = tmp_path / "evil.pt"
    torch.save({"model": _Payload(marker)}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_pinned_versions_are_patched_or_mitigated():
    """Row S9 of docs/reliability.md."""
    from importlib.metadata import version

    def numbers(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", text)[:3])

    assert numbers(version("torch")) >= (2, 10, 0)  # weights_only bypass (<= 2.5.1) and CVE-2026-24747 (< 2.10)
    assert numbers(version("onnx")) >= (1, 17, 0)  # external-data traversal fixes
    # The embedded Triton 2.51 predates the 2025 fixes: it runs only on loopback with HTTP off and the shared-
    # memory and repository protocols restricted (test_triton_listens_on_loopback_only_and_http_is_off, test_admin_protocols_are_restricted_and_inference_is_not); production
    # images are pinned at or above 25.07 (2.59.1).
    compose = (PROJECT / "docker-compose.yml").read_text()
    deployment = (PROJECT / "deploy" / "k8s" / "base" / "deployment.yaml").read_text()
    for text in (compose, deployment):
        for release in re.findall(r"tritonserver:(\d+)\.(\d+)", text):
            assert tuple(map(int, release)) >= (25, 7), release
