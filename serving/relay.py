"""The relay in front of the embedded Triton 2.51: clients speak the KServe v2 gRPC API to it, and no client
cancellation ever reaches Triton.

Triton 2.51's gRPC frontend dies (SIGSEGV) when a cancellation races with a response (server issues #7368 and
#8034, fixed in 2.53 and 2.57; docs/serving.md, "The embedded Triton 2.51"). The relay answers a client that
cancels, or whose deadline expires, at once (the client sees CANCELLED or DEADLINE_EXCEEDED), while the
upstream call it made on its own runs to completion and its answer is dropped. Upstream calls carry no client
deadline: only `upstream_timeout_s`, far beyond what Triton itself allows a request (its queue timeout plus the
backend's time budget), because an upstream deadline that expires is itself a cancellation in Triton's
frontend. It fires only for a Triton that hangs, which `stanet serve` restarts anyway.

Every method of `inference.GRPCInferenceService` (read from tritonclient's generated service) and the standard
`grpc.health.v1.Health/Check` are forwarded as raw bytes: generic handlers without (de)serializers, so no tensor
is decoded or re-encoded; each call is forwarded by the relay thread that received it, as a call of its own.
Metadata is forwarded, so Triton's own admin-header restriction of the shared-memory, model-repository, trace
and logging protocols applies unchanged. The relay carries the client-facing settings
the server had: TLS or mutual TLS, gRPC message limits of INT32_MAX (as Triton's), and Triton 2.51's keepalive
policy (a client pinging faster is sent GOAWAY "too_many_pings"). Its own metrics: serving/relay_metrics.py.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2_grpc

from serving.errors import ServingError
from serving.relay_metrics import RelayMetrics, MetricsPage
from serving.server import TlsFiles, check_port_free

SERVICE = "inference.GRPCInferenceService"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
INT32_MAX = 2**31 - 1
# Triton 2.51's defaults (tritonserver --help, "GRPC KeepAlive Option"), kept on the port clients reach.
KEEPALIVE = (("grpc.keepalive_time_ms", 7_200_000), ("grpc.keepalive_timeout_ms", 20_000),
             ("grpc.keepalive_permit_without_calls", 0), ("grpc.http2.max_pings_without_data", 2),
             ("grpc.http2.min_ping_interval_without_data_ms", 300_000), ("grpc.http2.max_ping_strikes", 2))
MESSAGE_LIMITS = (("grpc.max_receive_message_length", INT32_MAX), ("grpc.max_send_message_length", INT32_MAX))
# Reconnect to a restarted Triton within a second, not after gRPC's default backoff (up to 120 s).
UPSTREAM_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                      ("grpc.max_reconnect_backoff_ms", 1000))
DEFAULT_UPSTREAM_TIMEOUT_S = 120.0
DEFAULT_WORKERS = 64
FLUSH_S = 10.0  # on stop after stop_accepting: the most the relay waits for its calls to send their answers
# Metadata the relay does not forward: gRPC's own (the deadline, encodings), pseudo-headers, the user agent.
_NOT_FORWARDED = ("grpc-", ":")


def service_methods() -> dict[str, bool]:
    """Every method of inference.GRPCInferenceService -> whether it streams, as tritonclient's generated code
    registers them."""

    class Recorder:
        handlers: dict = {}

        def add_generic_rpc_handlers(self, handlers) -> None:
            pass

        def add_registered_method_handlers(self, service, handlers) -> None:
            Recorder.handlers = handlers

    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(service_pb2_grpc.GRPCInferenceServiceServicer(),
                                                                Recorder())
    return {name: handler.request_streaming or handler.response_streaming
            for name, handler in Recorder.handlers.items()}


@dataclass(frozen=True)
class RelayOptions:
    """Where clients reach the relay (`address`:`port`, metrics on `metrics_port`) and where Triton listens
    (`upstream` gRPC host:port and `upstream_metrics` URL, private loopback ports)."""

    address: str
    port: int
    metrics_port: int
    upstream: str
    upstream_metrics: str
    tls: TlsFiles | None = None
    upstream_timeout_s: float = DEFAULT_UPSTREAM_TIMEOUT_S
    workers: int = DEFAULT_WORKERS

    @property
    def url(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}:{self.metrics_port}/metrics"


def _forwarded(metadata) -> tuple:
    return tuple((key, value) for key, value in metadata or ()
                 if not key.startswith(_NOT_FORWARDED) and key != "user-agent")


def _credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    pair = (Path(tls.key).read_bytes(), Path(tls.cert).read_bytes())
    if tls.client_ca is None:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials([pair], root_certificates=Path(tls.client_ca).read_bytes(),
                                       require_client_auth=True)


class Relay:
    """The relay's gRPC server and metrics page. start() binds both (ServingError if a port is taken);
    stop_accepting() refuses new calls while in-flight ones finish; stop() ends it."""

    def __init__(self, options: RelayOptions):
        self.options = options
        self.metrics = RelayMetrics()
        self._channel: grpc.Channel | None = None
        self._server: grpc.Server | None = None
        self._refusing = False  # after stop_accepting: new calls are answered UNAVAILABLE by the handlers
        self._page: MetricsPage | None = None
        self._streams: set = set()  # upstream streams, kept until they end
        self._in_flight = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when nothing is in flight

    # --- life cycle
    def start(self) -> None:
        options = self.options
        if options.tls is not None and options.tls.problems():
            raise ServingError("; ".join(options.tls.problems()))
        check_port_free(options.address, options.port, "gRPC")
        check_port_free(options.address, options.metrics_port, "metrics")
        self._channel = grpc.insecure_channel(options.upstream, options=(*MESSAGE_LIMITS, *UPSTREAM_RECONNECT))
        handlers = {name: (self._stream_handler(f"/{SERVICE}/{name}") if streams else
                           self._unary_handler(f"/{SERVICE}/{name}"))
                    for name, streams in service_methods().items()}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="relay"),
                                   options=(*MESSAGE_LIMITS, *KEEPALIVE, ("grpc.so_reuseport", 0)))
        self._server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler(SERVICE, handlers),
            grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": self._unary_handler(HEALTH_CHECK)}),
        ))
        where = options.url
        try:
            if options.tls is None:
                self._server.add_insecure_port(where)
            else:
                self._server.add_secure_port(where, _credentials(options.tls))
        except RuntimeError as exc:
            raise ServingError(f"gRPC port {where} is not available ({exc}): choose another with --grpc-port") from None
        self._server.start()
        self._page = MetricsPage(options.address, options.metrics_port, options.upstream_metrics, self.metrics)
        self._page.start()

    def stop_accepting(self) -> None:
        """New calls are refused with UNAVAILABLE by the relay's own handlers; those in flight go on. (Not the
        gRPC server's stop: calls that reached it before a handler took them would end CANCELLED, which a client
        cannot tell from a dropped request.)"""
        with self._lock:
            self._refusing = True

    def wait_drained(self, timeout_s: float) -> bool:
        """After stop_accepting: wait until no call is in flight (True), at most `timeout_s`. Triton stops only
        after this, or a call accepted here could reach a Triton that is unloading its models and be refused
        with NOT_FOUND ("has no available versions")."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout_s)

    def stop(self, grace_s: float = 5.0) -> None:
        """End the relay: after stop_accepting, first let the calls in flight send their answers (at most
        FLUSH_S: Triton, stopped by then, has answered them), which stop(0) alone would cancel."""
        if self._server is not None:
            if self._refusing:
                self.wait_drained(FLUSH_S)
            self._server.stop(grace_s).wait(grace_s + 1)
            self._server = None
        if self._page is not None:
            self._page.stop()
            self._page = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> "Relay":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def upstream_in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    # --- forwarding
    def _upstream(self, change: int) -> None:
        with self._lock:
            self._in_flight += change
            if self._in_flight == 0:
                self._idle.notify_all()
        self.metrics.in_flight.inc(change)

    def _admit(self, name: str, context: grpc.ServicerContext) -> None:
        """Count a new call in flight, or refuse it (UNAVAILABLE) once stop_accepting was called: one lock for
        both, so that wait_drained never misses a call admitted as it looks."""
        with self._lock:
            if not self._refusing:
                self._in_flight += 1
                self.metrics.in_flight.inc()
                return
        self.metrics.answered(name, "UNAVAILABLE")
        context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down: send the request again "
                                                   "(another replica, or this one once restarted)")

    def _keep(self, stream, method: str, start: float) -> None:
        """Hold a stream's upstream call until it ends (a collected call is cancelled); admitted in flight."""
        with self._lock:
            self._streams.add(stream)

        def done(finished) -> None:
            with self._lock:
                self._streams.discard(finished)
            self._upstream(-1)
            self.metrics.upstream_done(method, time.perf_counter() - start)

        stream.add_done_callback(done)

    def _unary_handler(self, method: str) -> grpc.RpcMethodHandler:
        call = self._channel.unary_unary(method)  # raw bytes both ways
        name = method.rsplit("/", 1)[1]

        def handle(request: bytes, context: grpc.ServicerContext):
            # A blocking upstream call on this relay thread, independent of the client's call: a client that
            # cancels or whose deadline passes is answered by its own gRPC library at once, while this thread
            # waits for Triton's answer and drops it. (A future and a wait on it cost about 0.3 ms more per call.)
            start = time.perf_counter()
            self._admit(name, context)
            try:
                try:
                    response, code, details = call(request, timeout=self.options.upstream_timeout_s,
                                                   metadata=_forwarded(context.invocation_metadata())), None, None
                except grpc.RpcError as error:
                    response, code, details = None, error.code(), error.details()
                self.metrics.upstream_done(name, time.perf_counter() - start)
                if not context.is_active():  # the client left while Triton answered: the answer is dropped
                    self.metrics.client_gone(name, deadline=_deadline_passed(context))
                    return None
                self.metrics.answered(name, "OK" if code is None else code.name)
            finally:
                # Last, so that a call no longer in flight has its outcome counted already.
                self._upstream(-1)
            if code is None:
                return response
            context.abort(code, details)

        return grpc.unary_unary_rpc_method_handler(handle)

    def _stream_handler(self, method: str) -> grpc.RpcMethodHandler:
        call = self._channel.stream_stream(method)
        name = method.rsplit("/", 1)[1]

        def client_requests(iterator):
            try:
                yield from iterator
            except Exception:  # the client left: half-close upstream, which answers what it was sent
                return

        def handle(request_iterator, context: grpc.ServicerContext):
            # No timeout upstream: a stream lives as long as its client; when the client goes, the upstream
            # stream is half-closed (not cancelled) and drained.
            start = time.perf_counter()
            self._admit(name, context)
            responses = call(client_requests(request_iterator), metadata=_forwarded(context.invocation_metadata()))
            self._keep(responses, name, start)
            finished = False
            try:
                for response in responses:
                    yield response
                finished = True
                self.metrics.answered(name, "OK")
            except grpc.RpcError as error:
                finished = True
                self.metrics.answered(name, error.code().name)
                context.abort(error.code(), error.details())
            finally:
                if not finished:  # the client left mid-stream: drain upstream on a thread of our own
                    self.metrics.client_gone(name, deadline=_deadline_passed(context))
                    threading.Thread(target=_drain, args=(responses,), daemon=True).start()

        return grpc.stream_stream_rpc_method_handler(handle)


def _deadline_passed(context: grpc.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def _drain(responses) -> None:
    try:
        for _ in responses:
            pass
    except grpc.RpcError:
        pass
