"""The embedded server as `stanet serve` runs it: Triton on private loopback ports, the relay
(serving/relay.py) on the address and ports clients were given, TLS on the relay only."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from serving.relay import Relay, RelayOptions
from serving.server import ServerOptions, TritonServer
from serving.triton_env import TritonInstall

PRIVATE_ADDRESS = "127.0.0.1"


def private_port() -> int:
    """A loopback port nothing listens on now, for Triton's gRPC or metrics behind the relay."""
    with socket.socket() as probe:
        probe.bind((PRIVATE_ADDRESS, 0))
        return probe.getsockname()[1]


def relayed(options: ServerOptions) -> tuple[ServerOptions, RelayOptions]:
    """Triton's options (private loopback ports, plaintext) and the relay's (what `options` asked for)."""
    triton = dataclasses.replace(options, address=PRIVATE_ADDRESS, grpc_port=private_port(),
                                 metrics_port=private_port(), tls=None)
    relay = RelayOptions(address=options.address, port=options.grpc_port, metrics_port=options.metrics_port,
                         upstream=triton.grpc_url, upstream_metrics=triton.metrics_url, tls=options.tls)
    return triton, relay


class RelayedTriton:
    """A TritonServer behind a Relay, as a context manager (what the soak, the cancellation race and the
    benchmark start). `options` are the public ones (the relay's address and ports); `triton` is the server."""

    def __init__(self, options: ServerOptions, install: TritonInstall | None = None, *,
                 log_path: str | Path | None = None):
        self.options = options
        triton_options, relay_options = relayed(options)
        self.triton = TritonServer(triton_options, install, log_path=log_path)
        self.relay = Relay(relay_options)

    @property
    def pid(self) -> int | None:
        return self.triton.pid

    @property
    def process(self):
        return self.triton.process

    def stub_pids(self) -> list[int]:
        return self.triton.stub_pids()

    def __enter__(self) -> "RelayedTriton":
        self.relay.start()
        try:
            self.triton.__enter__()
        except BaseException:
            self.relay.stop(0)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.relay.stop_accepting()
        self.relay.wait_drained(self.options.exit_timeout_s)
        try:
            self.triton.stop()
        finally:
            self.relay.stop(0)
