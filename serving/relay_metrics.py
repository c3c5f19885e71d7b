"""The relay's own metrics, and the metrics page clients scrape: Triton's page (read from its private port on
every scrape) followed by the relay's series, in Prometheus' text format.

- `stanet_relay_requests_total{method, code}`: calls answered to a client, by gRPC status;
- `stanet_relay_client_gone_total{method, reason}`: calls whose client cancelled (`cancelled`) or whose
  deadline expired (`deadline`) before Triton answered; the upstream call ran on and its answer was dropped;
- `stanet_relay_upstream_latency_seconds{method}`: histogram of the upstream call's duration, answered or not;
- `stanet_relay_upstream_in_flight`: upstream calls not yet answered (including dropped ones).
"""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from stanet.constants import LATENCY_BUCKETS_SECONDS

disable_created_metrics()  # no *_created series beside Triton's
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UPSTREAM_TIMEOUT_S = 5.0


class RelayMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("stanet_relay_requests", "Calls the relay answered to a client, by gRPC status",
                                ("method", "code"), registry=self.registry)
        self.gone = Counter("stanet_relay_client_gone", "Calls whose client cancelled or whose deadline expired "
                            "before Triton answered (the upstream call completed, its answer dropped)",
                            ("method", "reason"), registry=self.registry)
        self.latency = Histogram("stanet_relay_upstream_latency_seconds", "Duration of the relay's upstream call",
                                 ("method",), buckets=LATENCY_BUCKETS_SECONDS, registry=self.registry)
        self.in_flight = Gauge("stanet_relay_upstream_in_flight", "Upstream calls not yet answered by Triton",
                               registry=self.registry)

    def answered(self, method: str, code: str) -> None:
        self.requests.labels(method, code).inc()

    def client_gone(self, method: str, deadline: bool) -> None:
        self.gone.labels(method, "deadline" if deadline else "cancelled").inc()

    def upstream_done(self, method: str, seconds: float) -> None:
        self.latency.labels(method).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class MetricsPage:
    """GET /metrics on `address`:`port`: Triton's metrics from `upstream` (a line saying so when it cannot be
    read, e.g. while Triton restarts), then the relay's."""

    def __init__(self, address: str, port: int, upstream: str, metrics: RelayMetrics):
        self.upstream, self.metrics = upstream, metrics
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "the metrics are at /metrics")
                    return
                body = page.body()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # no access log on stderr
                pass

        self._http = ThreadingHTTPServer((address, port), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def body(self) -> bytes:
        try:
            with urllib.request.urlopen(self.upstream, timeout=UPSTREAM_TIMEOUT_S) as response:
                triton = response.read()
        except OSError as exc:
            triton = f"# Triton's metrics are not available now ({exc.__class__.__name__})\n".encode()
        if triton and not triton.endswith(b"\n"):
            triton += b"\n"
        return triton + self.metrics.text()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
