"""`stanet serve`: the embedded CPU Triton over a model repository, until Ctrl-C or SIGTERM.

Exit codes: 0 stopped on request after in-flight requests finished; 1 Triton failed or exited on its own;
2 bad input (repository, ports, missing Triton environment).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from serving.errors import ServingError
from serving.server import (ADMIN_HEADER_KEY, ADMIN_TOKEN_VARIABLE, DEFAULT_ADDRESS, DEFAULT_EXIT_TIMEOUT_S,
                            DEFAULT_GRPC_PORT, DEFAULT_METRICS_PORT, ServerOptions, TritonServer)
from serving.triton_env import TRITON_ENV_VARIABLE, find_triton


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import os

    args = parse_args(argv)
    options = ServerOptions(repository=args.repository, address=args.address, grpc_port=args.grpc_port,
                            metrics_port=args.metrics_port, exit_timeout_s=args.exit_timeout,
                            admin_token=os.environ.get(ADMIN_TOKEN_VARIABLE) or None,
                            log_verbose=args.log_verbose)
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
    print(f"stanet serve: ready. gRPC {options.grpc_url} (models: {models}); metrics {options.metrics_url}. "
          f"Ctrl-C or SIGTERM stops.", flush=True)
    if not options.admin_token:
        print(f"stanet serve: shared-memory, model-repository, trace and logging APIs are off (set "
              f"${ADMIN_TOKEN_VARIABLE} to allow them with the gRPC header "
              f"triton-grpc-protocol-{ADMIN_HEADER_KEY})", flush=True)
    code = server.process.wait()
    log_tail = server.log_tail()
    if stop_requested:
        server.stop()
        print(f"stanet serve: stopped (Triton exit code {code})", flush=True)
        return 0 if code == 0 else 1
    server.stop(keep_workdir=True)
    print(f"stanet serve: error: tritonserver exited on its own with code {code}; the end of its log "
          f"({server.log_path}):\n{log_tail}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
