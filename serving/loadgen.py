"""A closed-loop gRPC load generator: `concurrency` workers, each with its own client, send clips back to
back for `duration_s`. Each request's client-observed latency goes into a prometheus-client histogram (served
on an HTTP port for Prometheus to scrape, next to Triton's own metrics) and into the returned samples.

Used by `stanet load` (traffic for `make monitor` and the monitoring tests); the benchmark builds on it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter as PromCounter, Histogram, start_http_server

from serving.client import StanetClient
from serving.errors import InferenceError, ServerUnavailableError, ServingError
from stanet.constants import LATENCY_BUCKETS_SECONDS

# Metric names the Prometheus rules and the Grafana dashboard query (deploy/).
CLIENT_LATENCY_METRIC = "stanet_client_request_duration_seconds"
CLIENT_REQUESTS_METRIC = "stanet_client_requests"  # exported as stanet_client_requests_total
DEFAULT_METRICS_PORT = 9464


class ClientMetrics:
    """The load generator's own Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(CLIENT_LATENCY_METRIC, "Client-observed latency of one inference request",
                                 ["model"], buckets=LATENCY_BUCKETS_SECONDS, registry=self.registry)
        self.requests = PromCounter(CLIENT_REQUESTS_METRIC, "Inference requests sent, by gRPC status code",
                                    ["model", "code"], registry=self.registry)
        self._server = None

    def serve(self, address: str = "127.0.0.1", port: int = DEFAULT_METRICS_PORT) -> None:
        self._server, _ = start_http_server(port, addr=address, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)  # successful requests only
    codes: Counter = field(default_factory=Counter)  # "OK" or the gRPC status name
    clips: int = 0  # clips answered
    elapsed_s: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.codes.values())

    def summary(self) -> str:
        rate = self.clips / self.elapsed_s if self.elapsed_s else 0.0
        if self.latencies_s:
            p50, p90, p99 = np.percentile(np.array(self.latencies_s) * 1000, [50, 90, 99])
            latency = f"latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms"
        else:
            latency = "no successful request"
        codes = ", ".join(f"{code} {count}" for code, count in sorted(self.codes.items()))
        return f"{self.requests} requests in {self.elapsed_s:.1f} s, {rate:.1f} clips/s; {latency}; {codes}"


def open_loop_schedule(rate_per_s: float, duration_s: float) -> np.ndarray:
    """Send times (seconds from the start) of an open-loop load at a fixed rate: request k at k / rate, so
    a slow answer never delays the next request (unlike a closed loop, which hides queueing)."""
    if rate_per_s <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be > 0, got {rate_per_s}, {duration_s}")
    return np.arange(int(np.floor(rate_per_s * duration_s))) / rate_per_s


def open_loop(url: str, model: str, clips: np.ndarray, *, rate_per_s: float, duration_s: float,
              metrics: ClientMetrics | None = None, timeout_s: float = 30.0,
              client_options: dict | None = None) -> LoadResult:
    """One clip per request at a fixed rate (asynchronous calls: the schedule never waits for answers).
    Latency runs from each request's scheduled time, so falling behind the schedule counts as latency."""
    import tritonclient.grpc as grpcclient

    from stanet.constants import INPUT_CLIP, OUTPUT_PROBABILITIES

    schedule = open_loop_schedule(rate_per_s, duration_s)
    result, lock, done = LoadResult(), threading.Lock(), threading.Semaphore(0)
    options = client_options or {}
    client = grpcclient.InferenceServerClient(url, **{k: options[k] for k in options if k != "retries"})
    started = time.perf_counter()

    def answered(due: float, response, error) -> None:
        latency = time.perf_counter() - started - due
        code = "OK" if error is None else (error.status() or "UNKNOWN").removeprefix("StatusCode.")
        with lock:
            result.codes[code] += 1
            if code == "OK":
                result.latencies_s.append(latency)
                result.clips += 1
        if metrics is not None:
            metrics.requests.labels(model=model, code=code).inc()
            if code == "OK":
                metrics.latency.labels(model=model).observe(latency)
        done.release()

    for k, due in enumerate(schedule):
        wait = due - (time.perf_counter() - started)
        if wait > 0:
            time.sleep(wait)
        tensor = grpcclient.InferInput(INPUT_CLIP, [1, *clips.shape[1:]], "UINT8")
        tensor.set_data_from_numpy(clips[k % len(clips)][None])
        client.async_infer(model, [tensor], lambda result, error, due=due: answered(due, result, error),
                           outputs=[grpcclient.InferRequestedOutput(OUTPUT_PROBABILITIES, class_count=1)],
                           client_timeout=timeout_s)
    for _ in schedule:
        done.acquire(timeout=timeout_s + 5)
    result.elapsed_s = time.perf_counter() - started
    client.close()
    return result


def closed_loop(url: str, model: str, clips: np.ndarray, *, concurrency: int, duration_s: float,
                metrics: ClientMetrics | None = None, batch_size: int = 1, timeout_s: float = 30.0,
                stop: threading.Event | None = None, client_options: dict | None = None) -> LoadResult:
    """Send `clips` (N, T, H, W, 3) uint8 round-robin, `batch_size` per request, from `concurrency` workers
    until `duration_s` passes or `stop` is set. Errors are counted by code, never raised."""
    if concurrency < 1 or batch_size < 1 or duration_s <= 0:
        raise ValueError(f"concurrency and batch_size must be >= 1 and duration_s > 0, got {concurrency}, "
                         f"{batch_size}, {duration_s}")
    result, lock = LoadResult(), threading.Lock()
    stop = stop or threading.Event()
    deadline = time.monotonic() + duration_s

    def worker(offset: int) -> None:
        with StanetClient(url, model, timeout_s=timeout_s, retries=0, **(client_options or {})) as client:
            i = offset * batch_size
            while not stop.is_set() and time.monotonic() < deadline:
                batch = clips[np.arange(i, i + batch_size) % len(clips)]  # (batch_size, T, H, W, 3)
                i += batch_size * concurrency
                started = time.perf_counter()
                try:
                    client.infer_clips(batch, top_k=1)
                    code = "OK"
                except InferenceError as exc:
                    code = exc.status
                except ServerUnavailableError:
                    code = "UNAVAILABLE"
                except ServingError:
                    code = "UNKNOWN"
                latency = time.perf_counter() - started
                with lock:
                    result.codes[code] += 1
                    if code == "OK":
                        result.latencies_s.append(latency)
                        result.clips += len(batch)
                if metrics is not None:
                    metrics.requests.labels(model=model, code=code).inc()
                    if code == "OK":
                        metrics.latency.labels(model=model).observe(latency)
                if code == "UNAVAILABLE":
                    time.sleep(0.05)  # the server is down or shedding load: do not spin

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed_s = time.monotonic() - started
    return result
