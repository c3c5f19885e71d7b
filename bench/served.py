"""One load point against a Triton model: client-side throughput and latency from the closed-loop load
generator, the server-side split (queue, compute input, infer, output per request) from Triton's metrics, and
the CPU the server used (its process and its python-backend stubs, from /proc)."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench.stats import summarize
from serving.loadgen import ClientMetrics, closed_loop, open_loop
from serving.procfs import cpu_seconds, memory_mb
from serving.server import TritonServer

SPLIT = {"queue_ms": "nv_inference_queue_duration_us", "compute_input_ms": "nv_inference_compute_input_duration_us",
         "compute_infer_ms": "nv_inference_compute_infer_duration_us",
         "compute_output_ms": "nv_inference_compute_output_duration_us"}


@dataclass(frozen=True)
class Endpoint:
    """Where a served model is measured: its gRPC address, Triton's metrics page, and the server's process
    ids when it runs on this machine (its CPU use is then measured; a remote server's is not)."""

    grpc_url: str
    metrics_url: str
    pids: Callable[[], list[int]] = list

    @classmethod
    def of(cls, server: TritonServer) -> "Endpoint":
        return cls(server.options.grpc_url, server.options.metrics_url, lambda: [server.pid, *server.stub_pids()])


def _counters(url: str, model: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    wanted = {*SPLIT.values(), "nv_inference_request_success", "nv_inference_count", "nv_inference_exec_count"}
    values = dict.fromkeys(wanted, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if name in wanted and f'model="{model}"' in line:
            values[name] += float(line.rsplit(" ", 1)[1])
    return values


def model_rss_mb(server: TritonServer, model: str) -> float | None:
    """Resident memory of one served model: its python-backend stubs (one per instance), found by the model's
    folder in their command line; None when no stub names it."""
    pids = []
    for pid in server.stub_pids():
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"/{model}/" in command:
            pids.append(pid)
    return memory_mb(pids) if pids else None


def load_point(endpoint: Endpoint, model: str, clips: np.ndarray, *, seconds: float, concurrency: int = 0,
               batch: int = 1, rate: float = 0.0, metrics: ClientMetrics | None = None) -> dict:
    """A closed-loop point (`concurrency` in flight, `batch` clips each) or, with `rate`, an open-loop one."""
    pids = endpoint.pids()
    before, cpu_before = _counters(endpoint.metrics_url, model), cpu_seconds(pids)
    if rate > 0:
        result = open_loop(endpoint.grpc_url, model, clips, rate_per_s=rate, duration_s=seconds, metrics=metrics)
    else:
        result = closed_loop(endpoint.grpc_url, model, clips, concurrency=concurrency, duration_s=seconds,
                             metrics=metrics, batch_size=batch)
    after, cpu_after = _counters(endpoint.metrics_url, model), cpu_seconds(pids)
    delta = {k: after[k] - before[k] for k in after}
    requests = max(delta["nv_inference_request_success"], 1.0)
    point = summarize(result.latencies_s, result.clips, result.elapsed_s).to_dict()
    point.update({name: delta[metric] / requests / 1000.0 for name, metric in SPLIT.items()})
    point.update(concurrency=concurrency, batch=batch, rate=rate, codes=dict(result.codes),
                 average_batch=delta["nv_inference_count"] / max(delta["nv_inference_exec_count"], 1.0),
                 server_cpu_cores=(cpu_after - cpu_before) / result.elapsed_s if pids else None)
    return point
