"""One load point against a Triton model: client-side throughput and latency from the closed-loop load
generator, the server-side split (queue, compute input, infer, output per request) from Triton's metrics, the
stub's own split of each execution (stanet_backend_phase_seconds, the python backend's models only), and the
CPU the server used (its process and its python-backend stubs, from /proc)."""

from __future__ import annotations

import resource
import urllib.request
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench.stats import summarize
from serving.loadgen import ClientMetrics, closed_loop, open_loop
from serving.procfs import cpu_seconds, memory_mb
from serving.python_backend.stanet_backend import PHASE_METRIC, PHASES
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
    values = dict.fromkeys([*wanted, *PHASES], 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if f'model="{model}"' not in line:
            continue
        if name in wanted:
            values[name] += float(line.rsplit(" ", 1)[1])
        elif name == PHASE_METRIC:
            phase = line.split('phase="', 1)[1].split('"', 1)[0]
            values[phase] += float(line.rsplit(" ", 1)[1])
    return values


def executions(grpc_url: str, model: str) -> tuple[float, float]:
    """(executions, their compute-infer seconds in total) from Triton's per-batch-size statistics: exact per
    execution, where the metrics page credits every request of a batch with the whole batch. (0, 0) where the
    endpoint does not answer statistics (a relay that forwards inference only)."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    try:
        with grpcclient.InferenceServerClient(grpc_url) as client:
            stats = client.get_inference_statistics(model, as_json=True, client_timeout=10)
    except InferenceServerException:
        return 0.0, 0.0
    batches = [b for m in stats.get("model_stats", []) for b in m.get("batch_stats", [])]
    return (sum(float(b["compute_infer"]["count"]) for b in batches),
            sum(float(b["compute_infer"]["ns"]) for b in batches) / 1e9)


def stub_split(delta: dict[str, float], executed: float, executed_s: float) -> dict[str, float] | None:
    """Milliseconds per execution in each phase of the stub's execute (stanet_backend.PHASES), Triton's own
    time for the execution (`execution`, compute infer) and `hop`: that time beyond the stub's phases, i.e. the
    python backend's messages and wake-ups both ways. None for a model without the phase counters (another
    backend, or a model exported before them)."""
    if executed <= 0 or not any(delta[phase] for phase in PHASES):
        return None
    split = {phase: delta[phase] / executed * 1000.0 for phase in PHASES}
    split["execution"] = executed_s / executed * 1000.0
    split["hop"] = split["execution"] - sum(split[phase] for phase in PHASES)
    return split


def _own_cpu_seconds() -> float:
    """CPU time of this process so far: the load generator's share of a machine it shares with the server."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    executed_before = executions(endpoint.grpc_url, model)
    client_before = _own_cpu_seconds()
    if rate > 0:
        result = open_loop(endpoint.grpc_url, model, clips, rate_per_s=rate, duration_s=seconds, metrics=metrics)
    else:
        result = closed_loop(endpoint.grpc_url, model, clips, concurrency=concurrency, duration_s=seconds,
                             metrics=metrics, batch_size=batch)
    after, cpu_after = _counters(endpoint.metrics_url, model), cpu_seconds(pids)
    executed_after = executions(endpoint.grpc_url, model)
    client_cpu = _own_cpu_seconds() - client_before
    delta = {k: after[k] - before[k] for k in after}
    requests = max(delta["nv_inference_request_success"], 1.0)
    point = summarize(result.latencies_s, result.clips, result.elapsed_s).to_dict()
    point.update({name: delta[metric] / requests / 1000.0 for name, metric in SPLIT.items()})
    point["stub_ms"] = stub_split(delta, *(b - a for a, b in zip(executed_before, executed_after)))
    point.update(concurrency=concurrency, batch=batch, rate=rate, codes=dict(result.codes),
                 average_batch=delta["nv_inference_count"] / max(delta["nv_inference_exec_count"], 1.0),
                 server_cpu_cores=(cpu_after - cpu_before) / result.elapsed_s if pids else None,
                 client_cpu_cores=client_cpu / result.elapsed_s)
    return point
