"""`stanet serve`: the embedded CPU Triton over a model repository, until Ctrl-C or SIGTERM.

While it serves, a Triton that stays not-ready (a crashed python-backend stub: this Triton does not restart
it) or that exits on its own (a crash) is reported with its errors or the end of its log and restarted, at
most MAX_RESTARTS times in RESTART_WINDOW_S.

Exit codes: 0 stopped on request after in-flight requests finished; 1 Triton failed to start, to restart, or
kept failing; 2 bad input (repository, ports, TLS files, missing Triton environment).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from serving.errors import ServingError
from serving.server import (ADMIN_HEADER_KEY, ADMIN_TOKEN_VARIABLE, DEFAULT_ADDRESS, DEFAULT_EXIT_TIMEOUT_S,
                            DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT, ServerOptions, TlsFiles, TritonServer)
from serving.triton_env import TRITON_ENV_VARIABLE, find_triton

MAX_RESTARTS = 5
RESTART_WINDOW_S = 600.0


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
    tls = parser.add_argument_group("TLS for gRPC (PEM files)")
    tls.add_argument("--tls-cert", type=Path, help="server certificate chain; with --tls-key, gRPC uses TLS")
    tls.add_argument("--tls-key", type=Path, help="server private key")
    tls.add_argument("--tls-client-ca", type=Path, help="mutual TLS: accept only clients whose certificate this CA signed")
    tls.add_argument("--tls-ca", type=Path, help="CA of the server certificate, for stanet serve's own health checks "
                                                 "(default: the certificate itself)")
    tls.add_argument("--tls-probe-cert", type=Path, help="mutual TLS: client certificate for the health checks")
    tls.add_argument("--tls-probe-key", type=Path, help="mutual TLS: its private key")
    args = parser.parse_args(argv)
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


def _errors(server: TritonServer) -> str:
    errors = server.errors()
    return "; ".join(errors[-3:]) if errors else "a python-backend stub process died"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = ServerOptions(repository=args.repository, address=args.address, grpc_port=args.grpc_port,
                            metrics_port=args.metrics_port, exit_timeout_s=args.exit_timeout,
                            admin_token=os.environ.get(ADMIN_TOKEN_VARIABLE) or None,
                            log_verbose=args.log_verbose, tls=_tls(args))
    stop_requested = []
    server: TritonServer | None = None

    def request_stop(signum, _frame):
        if not stop_requested:
            print(f"stanet serve: {signal.Signals(signum).name}: finishing in-flight requests "
                  f"(at most {args.exit_timeout} s)...", flush=True)
        stop_requested.append(signum)
        if server is not None:
            server.terminate()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        server = TritonServer(options, find_triton(args.triton_env), log_path=args.log_file)
        server.start()
    except ServingError as exc:
        print(f"stanet serve: error: {exc}", file=sys.stderr)
        return 2
    print(f"stanet serve: starting Triton (pid {server.pid}, log {server.log_path}); loading "
          f"{', '.join(m.name for m in server.models)}...", flush=True)
    try:
        server.wait_until_ready(args.startup_timeout)
    except ServingError as exc:
        server.stop(keep_workdir=True)
        if stop_requested:
            print("stanet serve: stopped before the models were ready", flush=True)
            return 0
        print(f"stanet serve: error: {exc}", file=sys.stderr)
        return 1
    models = ", ".join(f"{m.name} (version {m.versions[-1]})" for m in server.models)
    scheme = ("mutual TLS" if options.tls.client_ca else "TLS") if options.tls else "plaintext"
    print(f"stanet serve: ready. gRPC {options.grpc_url} ({scheme}; models: {models}); metrics {options.metrics_url}. "
          f"Ctrl-C or SIGTERM stops.", flush=True)
    if not options.admin_token:
        print(f"stanet serve: shared-memory, model-repository, trace and logging APIs are off (set "
              f"${ADMIN_TOKEN_VARIABLE} to allow them with the gRPC header "
              f"triton-grpc-protocol-{ADMIN_HEADER_KEY})", flush=True)
    restarts: list[float] = []
    while True:
        event = server.watch(stop_requested)
        if event not in ("unhealthy", "exited"):
            break
        if event == "exited":  # a crash (the embedded 2.51 has segfaulted as a mixed load ended): say so, restart
            print(f"stanet serve: tritonserver exited on its own with code {server.process.returncode}; the end of "
                  f"its log:\n{server.log_tail()}", file=sys.stderr, flush=True)
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
        if len(restarts) > MAX_RESTARTS:
            server.stop(keep_workdir=True)
            print(f"stanet serve: error: Triton failed again ({_errors(server)}); it has been restarted "
                  f"{MAX_RESTARTS} times in {RESTART_WINDOW_S / 60:.0f} minutes: giving up (log "
                  f"{server.log_path})", file=sys.stderr)
            return 1
        reason = "exited" if event == "exited" else f"is not ready ({_errors(server)})"
        print(f"stanet serve: Triton {reason}; restarting it "
              f"({len(restarts)} of at most {MAX_RESTARTS} in {RESTART_WINDOW_S / 60:.0f} minutes)", flush=True)
        server.stop()
        try:
            server.start()
            server.wait_until_ready(args.startup_timeout)
        except ServingError as exc:
            server.stop(keep_workdir=True)
            print(f"stanet serve: error: the restart failed: {exc}", file=sys.stderr)
            return 1
        print(f"stanet serve: ready again (pid {server.pid}, log {server.log_path})", flush=True)
    code = server.process.wait()  # the loop ends only on a stop request
    server.stop()
    print(f"stanet serve: stopped (Triton exit code {code})", flush=True)
    return 0 if code == 0 else 1

if __name__ == "__main__":
    sys.exit(main())
