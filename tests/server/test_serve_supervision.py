"""`stanet serve` as its users run it: a model that fails to load stops startup with its reason, and a
crashed stub or tritonserver is reported and restarted while the server keeps answering."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from helpers import free_port
from serving.client import StanetClient
from serving.errors import ServingError
from serving.python_backend.stanet_backend import TIME_BUDGET_PARAMETER
from serving.server import stub_pids
from stanet.constants import CONFIG_FILE, MODEL_NAME
from serve_helpers import CLIP, sign, start_serve, stop_serve

pytestmark = pytest.mark.slow


def _broken(tmp_path: Path, served_repository: Path, name: str, change) -> Path:
    repo = tmp_path / name
    shutil.copytree(served_repository, repo)
    version = repo / MODEL_NAME / "1"
    change(repo / MODEL_NAME)
    sign(version)  # a consistent (signed-off) broken export
    return repo


def test_a_model_that_fails_to_load_stops_startup_with_its_reason(served_repository, tmp_path, capsys):
    """Row F4 of docs/reliability.md."""
    from serving.serve_cli import main as serve_main

    def syntax_error(model):
        (model / "1" / "model.py").write_text((model / "1" / "model.py").read_text() + "\ndef broken(:\n")

    def wrong_dims(model):
        text = (model / CONFIG_FILE).read_text()
        (model / CONFIG_FILE).write_text(text.replace("dims: [ 16, 32, 32, 3 ]", "dims: [ 8, 32, 32, 3 ]"))

    def bad_parameter(model):
        text = (model / CONFIG_FILE).read_text()
        (model / CONFIG_FILE).write_text(text.replace(f'key: "{TIME_BUDGET_PARAMETER}" value: {{ string_value: '
                                                         f'"30000" }}', f'key: "{TIME_BUDGET_PARAMETER}" value: '
                                                         f'{{ string_value: "soon" }}'))

    cases = {"syntax": (syntax_error, r"SyntaxError: invalid syntax \(model.py, line \d+\)"),
             "dims": (wrong_dims, r"config.pbtxt declares input 'clip' \[8, 32, 32, 3\] but model.onnx takes 'clip' "
                                  r"\[16, 32, 32, 3\]"),
             "parameter": (bad_parameter, r"config parameter 'time_budget_ms' must be an integer, got 'soon'")}
    for name, (change, pattern) in cases.items():
        repo = _broken(tmp_path, served_repository, name, change)
        code = serve_main(["--repository", str(repo), "--grpc-port", str(free_port()),
                           "--metrics-port", str(free_port()), "--startup-timeout", "60"])
        err = capsys.readouterr().err
        assert code == 1, (name, err)
        assert "while starting" in err and re.search(pattern, err), (name, err)
        # The log the error names is kept, the copy of the backends is not (and the test removes the rest)
        log = Path(re.search(r"\(log (\S+triton\.log)\)", err).group(1))
        assert log.is_file() and not (log.parent / "backends").exists(), sorted(log.parent.iterdir())
        shutil.rmtree(log.parent)


def _crash_and_restart(served_repository, crash) -> str:
    """Start `stanet serve`, call `crash(url, triton_pid)`, wait for the restart; then the server must still
    answer and stop cleanly. Returns what `stanet serve` printed about the restart."""
    process, url, lines, output = start_serve(served_repository)
    try:
        assert "ready." in lines[-1], lines
        crash(url, int(re.search(r"pid (\d+)", "".join(lines)).group(1)))
        text = "".join(output.until("ready again", "giving up", "failed", timeout_s=90))
        assert process.poll() is None, text  # still serving
        with StanetClient(url) as client:
            assert client.infer_clips(np.zeros((1, *CLIP), np.uint8), top_k=1)[0].label
    finally:
        rest = stop_serve(process, output)
    assert "stopped (Triton exit code 0)" in rest, rest
    return text


def test_a_crashed_stub_is_reported_and_triton_restarted(served_repository):
    """Row F1 of docs/reliability.md."""
    def kill_a_stub(url: str, triton_pid: int) -> None:
        stubs = stub_pids(triton_pid)
        assert len(stubs) == 2  # two CPU instances
        os.kill(stubs[0], signal.SIGKILL)
        with StanetClient(url, retries=0) as client:  # this Triton still says ready; the dead instance fails fast
            for _ in range(10):
                try:
                    client.infer_clips(np.zeros((1, *CLIP), np.uint8), top_k=1)
                except ServingError as exc:  # the dead instance, or the restart already under way
                    assert re.search(r"Stub process 'stanet_0_\d' is not healthy|not available|no available "
                                     r"versions|shutting down", str(exc)), exc
                    break

    text = _crash_and_restart(served_repository, kill_a_stub)
    assert "Triton is not ready" in text and "restarting it (1 of at most 5" in text, text


def test_a_crashed_tritonserver_is_restarted(served_repository):
    """Row F1b: The embedded tritonserver 2.51 itself segfaults when a cancellation races with a response (upstream
    triton-inference-server/server#7368; `python -m serving.tools.cancel_race`); `stanet serve` restarts it instead
    of exiting. SIGKILL stands in for the crash."""
    text = _crash_and_restart(served_repository, lambda url, triton_pid: os.kill(triton_pid, signal.SIGKILL))
    assert "tritonserver exited on its own with code -9" in text, text
    assert "Triton exited; restarting it (1 of at most 5" in text and "ready again" in text, text
