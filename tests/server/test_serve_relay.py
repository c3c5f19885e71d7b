"""`stanet serve` with its relay under what clients do: a bounded racing load of deadlines that expire around
the response time (serving/tools/cancel_race.py) with no restart and every request answered exactly once, and a
Triton killed by a signal whose stubs and shared memory are gone once it is restarted."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pytest

from helpers import http_get, metric_sum, wait_for
from serving.client import StanetClient
from serving.procfs import listening_ports
from serving.python_backend_shm import regions, stubs
from serving.tools.cancel_race import main as cancel_race_main
from serve_helpers import CLIP, start_serve, stop_serve

pytestmark = pytest.mark.slow
RACE_SECONDS = 60


@pytest.fixture(scope="module")
def serve(served_repository):
    process, url, lines, output = start_serve(served_repository)
    assert "ready." in lines[-1] and "through the relay" in lines[-1], lines
    yield process, url, lines, output
    rest = stop_serve(process, output)
    assert "stopped (Triton exit code 0)" in rest, rest


def _triton_pid(lines) -> int:
    return int(re.search(r"starting Triton \(pid (\d+)", "".join(lines)).group(1))


def test_triton_listens_on_private_loopback_ports_only(serve):
    process, url, lines, _ = serve
    # Triton opens its metrics port after the gRPC endpoint that readiness is read from: wait for both.
    def both_ports():
        found = listening_ports(_triton_pid(lines))
        return found if len(found) >= 2 else None
    ports = wait_for(both_ports, timeout_s=30, what="Triton listening on its gRPC and metrics ports")
    assert all(host == "127.0.0.1" for host, _ in ports) and len(ports) == 2, ports
    assert int(url.rsplit(":", 1)[1]) not in {port for _, port in ports}  # clients reach the relay, not Triton
    assert ("127.0.0.1", int(url.rsplit(":", 1)[1])) in listening_ports(process.pid)


def test_a_racing_load_neither_restarts_triton_nor_loses_a_request(serve, capsys):
    """Row F1c of docs/reliability.md: cancel_race for RACE_SECONDS through the relay; cancel_race itself checks
    that every request got exactly one outcome and that a good request is answered afterwards."""
    process, url, lines, output = serve
    metrics = re.search(r"metrics (http://\S+/metrics)", lines[-1]).group(1)
    assert cancel_race_main(["--url", url, "--seconds", str(RACE_SECONDS), "--workers", "4"]) == 0
    report = capsys.readouterr().out
    assert "survived" in report and " 0 without an outcome" in report, report
    said = list(output.lines.queue)
    assert not any("restart" in line or "exited" in line for line in said), said  # no crash, no restart
    text = http_get(metrics)
    assert metric_sum(text, "nv_inference_request_failure", reason="CANCELED") == 0
    assert metric_sum(text, "stanet_relay_client_gone_total", reason="deadline") > 0


def test_a_killed_triton_leaves_no_stub_or_shared_memory_behind(serve):
    """Row F1b, the leftovers: SIGKILL to tritonserver reparents its stubs to init; the restart ends them and
    removes their regions."""
    process, url, lines, output = serve
    triton = _triton_pid(lines)
    stub_command = open(f"/proc/{stubs_of(triton)[0]}/cmdline", "rb").read().split(b"\0")
    prefix = re.match(rb"(.*_p\d+_\d+_)", stub_command[2]).group(1).decode()  # the region name's prefix
    assert len(stubs(prefix)) == 2 and len(regions(prefix)) == 2
    os.kill(triton, signal.SIGKILL)
    text = "".join(output.until("ready again", "giving up", "failed", timeout_s=120))
    assert "ready again" in text, text
    assert stubs(prefix) == [] and regions(prefix) == []
    with StanetClient(url) as client:
        assert client.infer_clips(np.zeros((1, *CLIP), np.uint8), top_k=1)[0].label


def stubs_of(triton: int) -> list[int]:
    from serving.server import stub_pids

    return wait_for(lambda: stub_pids(triton), 10, what="the stubs")
