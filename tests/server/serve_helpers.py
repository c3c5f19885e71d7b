"""What the tests that run `stanet serve` as a child process share: starting it and reading its output
with deadlines, stopping it, and re-signing a version folder a test changed on purpose."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import PROJECT, free_port
from stanet.integrity import MANIFEST_FILE, manifest_text

CLIP = (16, 32, 32, 3)  # the served_repository model's clip


def sign(version: Path) -> None:
    """SHA256SUMS for the version folder's files as they are now: a consistent (signed-off) changed export."""
    files = {p.name: p.read_bytes() for p in version.iterdir() if p.is_file() and p.name != MANIFEST_FILE}
    (version / MANIFEST_FILE).write_text(manifest_text(files))


class ServeOutput:
    """Lines of a child's stdout, read on a thread so that waiting for one has a deadline."""

    def __init__(self, process: subprocess.Popen):
        self.lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in process.stdout], daemon=True).start()

    def until(self, *texts: str, timeout_s: float = 120.0) -> list[str]:
        """Lines up to the first holding one of `texts` (AssertionError with what came, past the deadline)."""
        seen, deadline = [], time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"none of {texts} within {timeout_s:g} s; got {seen}") from None
            seen.append(line)
            if any(text in line for text in texts):
                return seen


def start_serve(repository: Path, *extra: str) -> tuple[subprocess.Popen, str, list[str], ServeOutput]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "stanet", "serve", "--repository", str(repository),
                                "--grpc-port", str(port), "--metrics-port", str(free_port()),
                                "--exit-timeout", "5", *extra], cwd=PROJECT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = ServeOutput(process)
    return process, f"127.0.0.1:{port}", output.until("ready.", "error"), output


def stop_serve(process: subprocess.Popen, output: ServeOutput) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    return "".join(output.until("stopped", "error", timeout_s=5)) if process.returncode is not None else ""
