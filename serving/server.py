"""The embedded Triton Inference Server as a child process: the real `tritonserver` binary from the
nvidia-pytriton wheel, CPU only, python backend, locked down (docs/serving.md, "The embedded Triton 2.51"):

- gRPC and metrics bound to one address (127.0.0.1 by default; metrics would otherwise follow the HTTP
  address, 0.0.0.0), HTTP off;
- `--model-control-mode=none` (the repository is read once: no load/unload API), strict readiness,
  `--exit-on-error`, configs never auto-completed;
- the shared-memory, model-repository, trace and logging protocols restricted behind a header whose value
  is a secret (this Triton 2.51 predates the 2025 fixes of the shared-memory exploit chain);
- latency summaries (`nv_inference_*_summary_us{quantile=...}`): this version has no latency histogram;
- python-backend shared memory sized for a full batch of the largest model, under a region prefix of its own
  (serving/python_backend_shm.py): when it stops or dies, every stub of it is ended and its regions removed.

On SIGTERM Triton stops accepting new requests and lets in-flight ones finish for `exit_timeout_s`.
`Supervisor` (what `stanet serve` runs) restarts a Triton that crashes or stays not-ready, within a budget.
"""

from __future__ import annotations

import enum
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from serving.errors import ServingError
from serving.procfs import live_children
from serving.python_backend_shm import default_shm_bytes, end_leftovers, region_prefix
from serving.repository_check import RepositoryModel, check_repository
from serving.triton_env import TritonInstall, find_triton, prepare_backends

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_GRPC_PORT = 8001
DEFAULT_METRICS_PORT = 8002
DEFAULT_EXIT_TIMEOUT_S = 30
RESTRICTED_PROTOCOLS = ("shared-memory", "model-repository", "trace", "logging")
# Admin calls of the restricted protocols must carry the gRPC header `triton-grpc-protocol-<key>: <token>`.
ADMIN_HEADER_KEY = "stanet-admin"
ADMIN_TOKEN_VARIABLE = "STANET_ADMIN_TOKEN"  # without it, a random token nobody knows: the protocols are off
SUMMARY_QUANTILES = "0.5:0.05,0.9:0.01,0.95:0.005,0.99:0.001"
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class TlsFiles:
    """gRPC TLS: the server's certificate and key (PEM files); with `client_ca`, mutual TLS (clients must
    present a certificate that CA signed). `ca` verifies the server's certificate in stanet serve's own health
    checks (default: the certificate itself, for a self-signed one); under mutual TLS those checks present
    `probe_cert` / `probe_key`."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    ca: Path | None = None
    probe_cert: Path | None = None
    probe_key: Path | None = None

    def problems(self) -> list[str]:
        found = [f"{name} {path} is not a readable file" for name, path in
                 (("--tls-cert", self.cert), ("--tls-key", self.key), ("--tls-client-ca", self.client_ca),
                  ("--tls-ca", self.ca), ("--tls-probe-cert", self.probe_cert), ("--tls-probe-key", self.probe_key))
                 if path is not None and not Path(path).is_file()]
        if self.client_ca is not None and (self.probe_cert is None or self.probe_key is None):
            found.append("mutual TLS (--tls-client-ca) needs --tls-probe-cert and --tls-probe-key: a client "
                         "certificate stanet serve presents for its own health checks")
        return found

    def client_arguments(self) -> dict:
        """Keyword arguments of tritonclient's InferenceServerClient for the health checks."""
        return {"ssl": True, "root_certificates": str(self.ca or self.cert),
                "private_key": str(self.probe_key) if self.probe_key else None,
                "certificate_chain": str(self.probe_cert) if self.probe_cert else None}


@dataclass(frozen=True)
class ServerOptions:
    repository: Path
    address: str = DEFAULT_ADDRESS
    grpc_port: int = DEFAULT_GRPC_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    exit_timeout_s: int = DEFAULT_EXIT_TIMEOUT_S
    admin_token: str | None = None  # None: a random one
    log_verbose: int = 0
    tls: TlsFiles | None = None
    python_shm_bytes: int | None = None  # the python backend's shm-default-byte-size; None: sized for a full batch

    @property
    def grpc_url(self) -> str:
        return f"{self.address}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}:{self.metrics_port}/metrics"


def triton_command(install: TritonInstall, options: ServerOptions, backend_dir: Path, admin_token: str,
                   shm_prefix: str, shm_bytes: int) -> list[str]:
    return [
        str(install.binary),
        f"--model-repository={Path(options.repository).absolute()}",
        f"--backend-directory={backend_dir}",
        "--model-control-mode=none",
        "--strict-readiness=true",
        "--exit-on-error=true",
        "--disable-auto-complete-config",
        f"--exit-timeout-secs={options.exit_timeout_s}",
        "--allow-http=false",
        "--allow-sagemaker=false",
        "--allow-vertex-ai=false",
        "--allow-grpc=true",
        f"--grpc-address={options.address}",
        f"--grpc-port={options.grpc_port}",
        f"--grpc-restricted-protocol={','.join(RESTRICTED_PROTOCOLS)}:{ADMIN_HEADER_KEY}={admin_token}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=false",
        "--allow-cpu-metrics=true",
        f"--metrics-address={options.address}",
        f"--metrics-port={options.metrics_port}",
        "--metrics-config=summary_latencies=true",
        f"--metrics-config=summary_quantiles={SUMMARY_QUANTILES}",
        f"--log-verbose={options.log_verbose}",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        f"--backend-config=python,shm-default-byte-size={shm_bytes}",
        *_tls_flags(options.tls),
    ]


def _tls_flags(tls: TlsFiles | None) -> list[str]:
    if tls is None:
        return []
    flags = ["--grpc-use-ssl=true", f"--grpc-server-cert={Path(tls.cert).absolute()}",
             f"--grpc-server-key={Path(tls.key).absolute()}"]
    if tls.client_ca is not None:
        flags += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={Path(tls.client_ca).absolute()}"]
    return flags


# Triton's error lines ("E1125 18:39:49.813786 18062 file.cc:642] "message""), minus the CUDA warnings every
# CPU-only start logs.
_ERROR_LINE = re.compile(r'^E\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "?(.*?)"?$')
_CUDA_NOISE = re.compile(r"cuda|CudaDriverHelper|GPU", re.IGNORECASE)


def triton_errors(log_text: str) -> list[str]:
    """The messages of Triton's error lines in a log, CUDA noise left out."""
    found = []
    for line in log_text.splitlines():
        match = _ERROR_LINE.match(line)
        if match and not _CUDA_NOISE.search(match.group(1)):
            found.append(match.group(1))
    return found


def stub_pids(parent: int) -> list[int]:
    """Live python-backend stub processes whose parent is `parent` (from /proc; Linux)."""
    return live_children(parent, b"triton_python_backend_stub")


def check_port_free(address: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            flag = "--grpc-port" if what == "gRPC" else "--metrics-port"
            raise ServingError(f"{what} port {address}:{port} is not available ({exc.strerror}); another server "
                               f"may be running there: stop it or choose another port with {flag}") from None


def _server_ready(url: str, timeout_s: float, tls: TlsFiles | None = None, models: tuple[str, ...] = ()) -> bool:
    """Server ready and every model in `models` ready: this Triton keeps reporting the server ready after a
    model's python-backend stub has died, but not the model."""
    import tritonclient.grpc as grpcclient  # imported here: --help needs no gRPC
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url, **(tls.client_arguments() if tls else {}))
    try:
        return bool(client.is_server_ready(client_timeout=timeout_s)
                    and all(client.is_model_ready(m, client_timeout=timeout_s) for m in models))
    except InferenceServerException:
        return False
    finally:
        client.close()


class TritonServer:
    """One tritonserver process. Use as a context manager, or start() / wait_until_ready() / stop()."""

    def __init__(self, options: ServerOptions, install: TritonInstall | None = None, *,
                 log_path: str | Path | None = None):
        self.options = options
        self.install = install
        self.models: list[RepositoryModel] = []
        self.expected_stubs = 0  # python-backend stub processes once ready
        self.process: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._log_path = Path(log_path) if log_path is not None else None
        self._log_file = None
        self.shm_prefix: str | None = None  # this start's python-backend region prefix
        self.shm_bytes: int | None = None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        """Check the repository, ports and installation, then launch tritonserver (not yet ready)."""
        if self.options.tls is not None and self.options.tls.problems():
            raise ServingError("; ".join(self.options.tls.problems()))
        self.models = check_repository(self.options.repository)
        check_port_free(self.options.address, self.options.grpc_port, "gRPC")
        check_port_free(self.options.address, self.options.metrics_port, "metrics")
        self.install = self.install or find_triton()
        self._workdir = Path(tempfile.mkdtemp(prefix="stanet-triton-"))
        backend_dir = prepare_backends(self.install, self._workdir / "backends")
        if self._log_path is None:
            self._log_path = self._workdir / "triton.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self._log_path, "ab")
        token = self.options.admin_token or secrets.token_urlsafe(32)
        self.shm_prefix = region_prefix()
        self.shm_bytes = self.options.python_shm_bytes or default_shm_bytes(self.options.repository)
        command = self.command(backend_dir, token)
        # A new session: a Ctrl-C in the terminal reaches `stanet serve`, which forwards SIGTERM once.
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, env=self.install.environment(),
                                        cwd=self._workdir, start_new_session=True)

    def command(self, backend_dir: Path, token: str) -> list[str]:
        """tritonserver's command line (bench/upstream_protocol.py adds an HTTP frontend to it)."""
        return triton_command(self.install, self.options, backend_dir, token, self.shm_prefix, self.shm_bytes)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def errors(self) -> list[str]:
        """Triton's error messages so far (from its log)."""
        if self._log_path is None or not self._log_path.exists():
            return []
        return triton_errors(self._log_path.read_text(errors="replace"))

    def is_ready(self) -> bool:
        return self.process is not None and self.process.poll() is None and _server_ready(
            self.options.grpc_url, timeout_s=1.0, tls=self.options.tls, models=tuple(m.name for m in self.models))

    def wait_until_ready(self, timeout_s: float = 120.0) -> None:
        """Block until every model is loaded (strict readiness); ServingError with Triton's errors (or the
        end of its log) if it exits or is not ready in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.process.poll()
            if code is not None:
                errors = self.errors()
                detail = ("\n  ".join(["Triton's errors:", *errors]) if errors else
                          f"the end of its log:\n{self.log_tail()}")
                how = (f"crashed ({signal.Signals(-code).name})" if code < 0 else f"exited with code {code}")
                raise ServingError(f"tritonserver {how} while starting (log {self._log_path}); {detail}")
            if self.is_ready():
                self.expected_stubs = len(self.stub_pids())  # before anyone is told it is ready
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop(keep_workdir=True)
                raise ServingError(f"tritonserver was not ready within {timeout_s:.0f} s; the end of its log "
                                   f"({self._log_path}):\n{tail}")
            time.sleep(0.2)

    def stub_pids(self) -> list[int]:
        """The python-backend stub processes (one per model instance) Triton has started."""
        return stub_pids(self.pid) if self.pid is not None else []

    def watch(self, stop: list, poll_s: float = 2.0, unhealthy_after_s: float = 6.0) -> str:
        """Wait while Triton runs and is ready. Returns "stopped" (exited after a stop request: `stop` is not
        empty), "exited" (exited on its own) or "unhealthy": a python-backend stub died (this Triton neither
        restarts it nor stops reporting ready; its requests fail with "Stub process ... is not healthy"), or
        Triton was not ready for `unhealthy_after_s`."""
        not_ready_since = None
        while True:
            try:
                self.process.wait(timeout=poll_s)
                return "stopped" if stop else "exited"
            except subprocess.TimeoutExpired:
                pass
            if stop:
                continue
            if len(self.stub_pids()) < self.expected_stubs:
                return "unhealthy"
            if self.is_ready():
                not_ready_since = None
            elif not_ready_since is None:
                not_ready_since = time.monotonic()
            elif time.monotonic() - not_ready_since >= unhealthy_after_s:
                return "unhealthy"

    def terminate(self) -> None:
        """Ask Triton to stop (SIGTERM): new requests are refused, in-flight ones finish."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, *, keep_workdir: bool = False) -> int | None:
        """SIGTERM, wait for in-flight requests (exit timeout + a margin), SIGKILL as a last resort; then end
        whatever is left of it (python-backend stubs, also reparented or stuck ones) and remove its shared-memory
        regions. Returns Triton's exit code (None if it never started)."""
        code = None
        if self.process is not None:
            self.terminate()
            try:
                code = self.process.wait(timeout=self.options.exit_timeout_s + 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        if self.shm_prefix is not None:
            end_leftovers(self.shm_prefix, group=self.pid)
            self.shm_prefix = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None and not keep_workdir:
            if self._log_path is not None and self._log_path.parent == self._workdir:
                self._log_path = None  # removed with the work directory
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        elif self._workdir is not None:  # a failed start: its log is named in the error, the backend copy is not
            shutil.rmtree(self._workdir / "backends", ignore_errors=True)
        return code

    def __enter__(self) -> "TritonServer":
        self.start()
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


MAX_RESTARTS = 5
RESTART_WINDOW_S = 600.0


class Outcome(enum.Enum):
    """How a supervised server ended."""

    STOPPED = "stopped"  # on request, Triton exiting cleanly
    FAILED = "failed"  # Triton failed to start, to restart or kept failing, or exited with an error
    BAD_INPUT = "bad input"  # repository, ports or TLS files refused before Triton started


class Supervisor:
    """Serve with one TritonServer until a stop is requested. While it serves, a Triton that stays not-ready
    (a crashed python-backend stub: this Triton does not restart it) or that exits on its own (a crash) is
    reported with its errors or the end of its log and restarted, at most MAX_RESTARTS times in
    RESTART_WINDOW_S. `say(message, problem=False)` reports progress; problem=True for errors and crashes."""

    def __init__(self, server: TritonServer, say: Callable[..., None], *, startup_timeout_s: float = 180.0,
                 relay=None):
        self.server, self.say, self.startup_timeout_s = server, say, startup_timeout_s
        self.relay = relay  # serving.relay.Relay in front of Triton, or None (clients reach Triton directly)
        self.stop_requested: list[str] = []  # a list, as TritonServer.watch reads it
        self.restarts: list[float] = []  # monotonic times of the restarts

    def request_stop(self, reason: str) -> None:
        """Stop (from a signal handler): Triton refuses new requests and finishes the in-flight ones."""
        first = not self.stop_requested
        if first:
            self.say(f"{reason}: finishing in-flight requests (at most {self.server.options.exit_timeout_s} s)...")
        self.stop_requested.append(reason)
        if self.relay is None:
            self.server.terminate()
        elif first:
            # The relay refuses new calls and Triton stops once the accepted ones have their answers (a thread:
            # this runs in a signal handler); a second signal does not wait.
            self.relay.stop_accepting()
            threading.Thread(target=self._terminate_after_relay, daemon=True, name="stanet-stop").start()
        else:
            self.server.terminate()

    def _terminate_after_relay(self) -> None:
        self.relay.wait_drained(self.server.options.exit_timeout_s)
        self.server.terminate()

    def run(self) -> Outcome:
        try:
            if self.relay is not None:
                self.relay.start()
        except ServingError as exc:
            self.say(f"error: {exc}", problem=True)
            return Outcome.BAD_INPUT
        try:
            return self._serve()
        finally:
            if self.relay is not None:
                self.relay.stop(0)

    def _serve(self) -> Outcome:
        server, options = self.server, self.server.options
        try:
            server.start()
        except ServingError as exc:
            self.say(f"error: {exc}", problem=True)
            return Outcome.BAD_INPUT
        self.say(f"starting Triton (pid {server.pid}, log {server.log_path}); loading "
                 f"{', '.join(m.name for m in server.models)}...")
        try:
            server.wait_until_ready(self.startup_timeout_s)
        except ServingError as exc:
            server.stop(keep_workdir=True)
            if self.stop_requested:
                self.say("stopped before the models were ready")
                return Outcome.STOPPED
            self.say(f"error: {exc}", problem=True)
            return Outcome.FAILED
        models = ", ".join(f"{m.name} (version {m.versions[-1]})" for m in server.models)
        tls = self.relay.options.tls if self.relay is not None else options.tls
        scheme = ("mutual TLS" if tls.client_ca else "TLS") if tls else "plaintext"
        url, metrics = ((self.relay.options.url, self.relay.options.metrics_url) if self.relay is not None
                        else (options.grpc_url, options.metrics_url))
        behind = f" through the relay (Triton on {options.grpc_url})" if self.relay is not None else ""
        self.say(f"ready. gRPC {url} ({scheme}; models: {models}){behind}; metrics {metrics}. "
                 f"Ctrl-C or SIGTERM stops.")
        if not options.admin_token:
            self.say(f"shared-memory, model-repository, trace and logging APIs are off (set ${ADMIN_TOKEN_VARIABLE} "
                     f"to allow them with the gRPC header triton-grpc-protocol-{ADMIN_HEADER_KEY})")
        while (event := server.watch(self.stop_requested)) in ("unhealthy", "exited"):
            if not self._restart(event):
                return Outcome.FAILED
        code = server.process.wait()  # the loop ends only on a stop request
        server.stop()
        self.say(f"stopped (Triton exit code {code})")
        return Outcome.STOPPED if code == 0 else Outcome.FAILED

    def _restart(self, event: str) -> bool:
        """Restart after an "unhealthy" or "exited" event; False once the restart budget is spent or the
        restart fails (the server is then stopped)."""
        server = self.server
        if event == "exited":  # a crash (the embedded 2.51 has segfaulted as a mixed load ended): say so, restart
            self.say(f"tritonserver exited on its own with code {server.process.returncode}; the end of its log:\n"
                     f"{server.log_tail()}", problem=True)
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
        if len(self.restarts) > MAX_RESTARTS:
            server.stop(keep_workdir=True)
            self.say(f"error: Triton failed again ({self._errors()}); it has been restarted {MAX_RESTARTS} times "
                     f"in {RESTART_WINDOW_S / 60:.0f} minutes: giving up (log {server.log_path})", problem=True)
            return False
        reason = "exited" if event == "exited" else f"is not ready ({self._errors()})"
        self.say(f"Triton {reason}; restarting it ({len(self.restarts)} of at most {MAX_RESTARTS} in "
                 f"{RESTART_WINDOW_S / 60:.0f} minutes)")
        server.stop()
        try:
            server.start()
            server.wait_until_ready(self.startup_timeout_s)
        except ServingError as exc:
            server.stop(keep_workdir=True)
            self.say(f"error: the restart failed: {exc}", problem=True)
            return False
        self.say(f"ready again (pid {server.pid}, log {server.log_path})")
        return True

    def _errors(self) -> str:
        errors = self.server.errors()
        return "; ".join(errors[-3:]) if errors else "a python-backend stub process died"
