"""`stanet serve`: the embedded CPU Triton over a model repository, until Ctrl-C or SIGTERM.

Clients reach a relay (serving/relay.py) that keeps their cancellations away from Triton 2.51's crashing
gRPC path; Triton itself listens on private loopback ports (`--direct`: clients reach Triton, no relay).
While it serves, a Triton that stays not-ready or that exits on its own is restarted, within a budget
(serving.server.Supervisor), and nothing of the old one (stub processes, shared memory) is left behind.

Exit codes: 0 stopped on request after in-flight requests finished; 1 Triton failed to start, to restart, or
kept failing; 2 bad input (repository, ports, TLS files, missing Triton environment).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

# The relay's gRPC library would log every failed client handshake (a plaintext client on a TLS port, say) on this
# console; Triton's own went to its log. gRPC reads this once, when it is first imported (below).
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from serving.errors import ServingError
from serving.server import (ADMIN_TOKEN_VARIABLE, DEFAULT_ADDRESS, DEFAULT_EXIT_TIMEOUT_S, DEFAULT_GRPC_PORT,
                            DEFAULT_METRICS_PORT, Outcome, ServerOptions, Supervisor, TlsFiles, TritonServer)
from serving.triton_env import TRITON_ENV_VARIABLE, find_triton

EXIT_CODES = {Outcome.STOPPED: 0, Outcome.FAILED: 1, Outcome.BAD_INPUT: 2}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stanet serve", description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=Path("model_repository"),
                        help="Triton model repository written by `stanet export --target python` "
                             "(default: model_repository)")
    parser.add_argument("--address", default=DEFAULT_ADDRESS,
                        help=f"address gRPC and metrics bind to (default: {DEFAULT_ADDRESS}; anything else "
                             f"exposes a server that has no authentication: put a gateway in front)")
    parser.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help=f"default: {DEFAULT_GRPC_PORT}")
    parser.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT,
                        help=f"Prometheus metrics (default: {DEFAULT_METRICS_PORT})")
    parser.add_argument("--triton-env", type=Path,
                        help=f"virtual environment holding nvidia-pytriton (default: ${TRITON_ENV_VARIABLE} or "
                             f".venv-triton in the stanet checkout, made by `make triton-env`)")
    parser.add_argument("--exit-timeout", type=int, default=DEFAULT_EXIT_TIMEOUT_S, metavar="SECONDS",
                        help=f"how long in-flight requests may finish after Ctrl-C / SIGTERM "
                             f"(default: {DEFAULT_EXIT_TIMEOUT_S})")
    parser.add_argument("--startup-timeout", type=float, default=180.0, metavar="SECONDS",
                        help="how long model loading and warmup may take (default: 180)")
    parser.add_argument("--log-file", type=Path, help="Triton's log (default: a file in a temporary directory, "
                                                      "removed on a clean exit)")
    parser.add_argument("--log-verbose", type=int, default=0, help="Triton's verbose log level (default: 0)")
    parser.add_argument("--direct", action="store_true",
                        help="no relay: clients reach Triton's own gRPC port (a client cancellation or an expired "
                             "deadline can then crash this Triton 2.51; docs/serving.md)")
    parser.add_argument("--python-shm-bytes", type=int, metavar="BYTES",
                        help="the python backend's shared memory per model instance (shm-default-byte-size; "
                             "default: a full batch of the largest model's tensors twice, plus 1 MiB)")
    tls = parser.add_argument_group("TLS for gRPC (PEM files)")
    tls.add_argument("--tls-cert", type=Path, help="server certificate chain; with --tls-key, gRPC uses TLS")
    tls.add_argument("--tls-key", type=Path, help="server private key")
    tls.add_argument("--tls-client-ca", type=Path, help="mutual TLS: accept only clients whose certificate this CA signed")
    tls.add_argument("--tls-ca", type=Path, help="CA of the server certificate, for stanet serve's own health checks "
                                                 "(default: the certificate itself)")
    tls.add_argument("--tls-probe-cert", type=Path, help="mutual TLS: client certificate for the health checks")
    tls.add_argument("--tls-probe-key", type=Path, help="mutual TLS: its private key")
    args = parser.parse_args(argv)
    if args.python_shm_bytes is not None and args.python_shm_bytes < 1 << 20:
        parser.error(f"--python-shm-bytes {args.python_shm_bytes}: the python backend needs at least 1048576 "
                     f"(1 MiB)")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_cert is None and any((args.tls_client_ca, args.tls_ca, args.tls_probe_cert, args.tls_probe_key)):
        parser.error("the --tls-* options need --tls-cert and --tls-key")
    return args


def _tls(args: argparse.Namespace) -> TlsFiles | None:
    if args.tls_cert is None:
        return None
    return TlsFiles(cert=args.tls_cert, key=args.tls_key, client_ca=args.tls_client_ca, ca=args.tls_ca,
                    probe_cert=args.tls_probe_cert, probe_key=args.tls_probe_key)


def _say(message: str, problem: bool = False) -> None:
    print(f"stanet serve: {message}", file=sys.stderr if problem else sys.stdout, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = ServerOptions(repository=args.repository, address=args.address, grpc_port=args.grpc_port,
                            metrics_port=args.metrics_port, exit_timeout_s=args.exit_timeout,
                            admin_token=os.environ.get(ADMIN_TOKEN_VARIABLE) or None,
                            log_verbose=args.log_verbose, tls=_tls(args), python_shm_bytes=args.python_shm_bytes)
    try:
        install = find_triton(args.triton_env)
    except ServingError as exc:
        _say(f"error: {exc}", problem=True)
        return EXIT_CODES[Outcome.BAD_INPUT]
    relay = None
    if not args.direct:
        from serving.embedded import relayed
        from serving.relay import Relay

        options, relay_options = relayed(options)
        relay = Relay(relay_options)
    supervisor = Supervisor(TritonServer(options, install, log_path=args.log_file), _say,
                            startup_timeout_s=args.startup_timeout, relay=relay)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, _frame: supervisor.request_stop(signal.Signals(received).name))
    return EXIT_CODES[supervisor.run()]


if __name__ == "__main__":
    sys.exit(main())
