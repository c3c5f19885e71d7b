"""What the relay of `stanet serve` costs (serving/relay.py): one `stanet serve` process (its relay, and the
Triton behind it on a private port), measured both ways side by side on the same Triton: direct to Triton's
private port and through the relay, alternately, in rounds. Reported: the concurrency-1 p50 overhead (relay p50
minus direct p50, median over rounds) and the loaded throughput ratio (relay / direct clips per second)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.served import Endpoint, load_point
from serving.procfs import live_children
from stanet.constants import MODEL_NAME

RELAY_GRPC_PORT = 18711
RELAY_METRICS_PORT = 18712
OVERHEAD_TARGET_MS = 0.3
THROUGHPUT_TARGET = 0.95
PROJECT = Path(__file__).resolve().parents[1]  # bench/relay_cost.py


def _serve(repository: Path) -> tuple[subprocess.Popen, str, str, str]:
    """`stanet serve` on the bench ports; (process, relay URL, Triton's private URL, metrics page)."""
    process = subprocess.Popen([sys.executable, "-m", "stanet", "serve", "--repository", str(repository),
                                "--grpc-port", str(RELAY_GRPC_PORT), "--metrics-port", str(RELAY_METRICS_PORT),
                                "--exit-timeout", "10"], cwd=PROJECT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "ready." in line or "error" in line:
            break
    ready = re.search(r"gRPC (\S+) .*Triton on (\S+)\); metrics (\S+)\.", seen[-1] if seen else "")
    if ready is None:
        process.kill()
        raise SystemExit(f"stanet bench: stanet serve did not start: {''.join(seen)}")
    return process, *ready.groups()


def relay_vs_direct(repository: Path, clips: np.ndarray, *, seconds: float, loaded: int = 4, rounds: int = 2,
                    model: str = MODEL_NAME) -> dict:
    process, relay_url, triton_url, metrics = _serve(repository)
    try:
        tritons = live_children(process.pid, b"tritonserver")
        stubs = lambda: [pid for t in tritons for pid in live_children(t, b"triton_python_backend_stub")]  # noqa: E731
        direct = Endpoint(triton_url, metrics, lambda: [*tritons, *stubs()])
        relayed = Endpoint(relay_url, metrics, lambda: [process.pid, *tritons, *stubs()])
        points = {"direct": {1: [], loaded: []}, "relay": {1: [], loaded: []}}
        for number in range(rounds):
            order = [("direct", direct), ("relay", relayed)][::1 if number % 2 == 0 else -1]
            for concurrency in (1, loaded):
                for name, endpoint in order:
                    points[name][concurrency].append(load_point(endpoint, model, clips, concurrency=concurrency,
                                                                seconds=seconds))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    p50 = {name: float(np.median([p["p50_ms"] for p in points[name][1]])) for name in points}
    rate = {name: float(np.median([p["clips_per_s"] for p in points[name][loaded]])) for name in points}
    overhead, ratio = p50["relay"] - p50["direct"], rate["relay"] / max(rate["direct"], 1e-9)
    return {"rounds": rounds, "loaded_concurrency": loaded, "p50_ms_c1": p50, "clips_per_s_loaded": rate,
            "overhead_p50_ms_c1": overhead, "throughput_ratio_loaded": ratio,
            "targets": [{"description": "relay p50 overhead at concurrency 1 (ms)", "value": round(overhead, 3),
                         "bound": OVERHEAD_TARGET_MS, "passed": overhead <= OVERHEAD_TARGET_MS},
                        {"description": f"relay / direct throughput at concurrency {loaded}", "value": round(ratio, 3),
                         "bound": THROUGHPUT_TARGET, "passed": ratio >= THROUGHPUT_TARGET}],
            "points": {name: {str(c): v for c, v in by_c.items()} for name, by_c in points.items()}}


def render(result: dict) -> str:
    lines = [f"relay vs direct ({result['rounds']} rounds, alternating): c1 p50 direct "
             f"{result['p50_ms_c1']['direct']:.2f} ms, relay {result['p50_ms_c1']['relay']:.2f} ms; "
             f"c{result['loaded_concurrency']} direct {result['clips_per_s_loaded']['direct']:.1f} clips/s, relay "
             f"{result['clips_per_s_loaded']['relay']:.1f} clips/s"]
    for t in result["targets"]:
        lines.append(f"[{'PASS' if t['passed'] else 'FAIL'}] {t['description']}: {t['value']} (bound {t['bound']})")
    return "\n".join(lines)
