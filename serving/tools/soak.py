"""`make soak` (python -m serving.tools.soak): the embedded Triton under a mixed load for a while (default 10
minutes), then checked: no restart, no unexpected status code, exactly one outcome per request, no request
left pending, resident memory growth after warm-up under a budget, and the server still answering.

Workers (docs/reliability.md, rows O5-O7): valid clips (OK, or UNAVAILABLE when the queue is full),
malformed clips (INVALID_ARGUMENT), deadlines too short to meet (DEADLINE_EXCEEDED or OK), requests cancelled
right after sending (CANCELLED or OK), and client processes killed mid-request by SIGKILL. `--loads` picks a
subset. The clients reach Triton through the relay of `stanet serve` (serving/relay.py), which keeps their
cancellations away from Triton 2.51's crashing gRPC path (triton-inference-server/server#7368; `python -m
serving.tools.cancel_race`); `--direct` sends them to Triton's own port, which makes the full mix a crash test.
The memory budget covers Triton and its stubs (the relay runs in this process, with the clients).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving.embedded import RelayedTriton
from serving.procfs import memory_mb
from serving.errors import status_code
from serving.server import ServerOptions, TritonServer
from stanet.constants import INPUT_CLIP, MODEL_NAME

# Through the relay a request whose client gave up still runs to completion in Triton, so it holds its place in
# the model's bounded queue: a full queue answers any load UNAVAILABLE ("Exceeds maximum queue size").
EXPECTED = {"valid": {"OK", "UNAVAILABLE"}, "invalid": {"INVALID_ARGUMENT"},
            "deadline": {"DEADLINE_EXCEEDED", "OK", "UNAVAILABLE"}, "cancel": {"CANCELLED", "OK", "UNAVAILABLE"}}
LOADS = ("valid", "invalid", "deadline", "cancel", "killed")
RSS_BUDGET_MB = 20.0


class Soak:
    def __init__(self, server: TritonServer, model: str, clip_shape: tuple[int, ...], loads: tuple[str, ...] = LOADS):
        self.server, self.model, self.shape, self.loads = server, model, clip_shape, loads
        self.outcomes: dict[str, Counter] = {kind: Counter() for kind in EXPECTED}
        self.sent: Counter = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.killed_clients = 0

    def _record(self, kind: str, code: str) -> None:
        with self.lock:
            self.outcomes[kind][code] += 1

    def _input(self, shape) -> grpcclient.InferInput:
        data = np.random.default_rng().integers(0, 256, shape, dtype=np.uint8)
        tensor = grpcclient.InferInput(INPUT_CLIP, list(shape), "UINT8")
        tensor.set_data_from_numpy(data)
        return tensor

    def _sync_worker(self, kind: str, shape, timeout_s: float) -> None:
        with grpcclient.InferenceServerClient(self.server.options.grpc_url) as client:
            while not self.stop.is_set():
                with self.lock:
                    self.sent[kind] += 1
                try:
                    client.infer(self.model, [self._input(shape)], client_timeout=timeout_s)
                    self._record(kind, "OK")
                except InferenceServerException as exc:
                    self._record(kind, status_code(exc))
                if kind != "valid":
                    time.sleep(0.05)

    def _cancel_worker(self) -> None:
        with grpcclient.InferenceServerClient(self.server.options.grpc_url) as client:
            while not self.stop.is_set():
                answered = threading.Event()

                def callback(result, error):
                    self._record("cancel", "OK" if error is None else status_code(error))
                    answered.set()

                with self.lock:
                    self.sent["cancel"] += 1
                call = client.async_infer(self.model, [self._input((1, *self.shape))], callback, client_timeout=30)
                time.sleep(0.002)
                call.cancel()
                answered.wait(timeout=30)
                time.sleep(0.05)

    def _crashing_clients(self, project: Path) -> None:
        while not self.stop.wait(7.0):
            client = subprocess.Popen([sys.executable, "-m", "stanet", "load", "--url", self.server.options.grpc_url,
                                       "--model", self.model, "--duration", "60", "--metrics-port", "0"],
                                      cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(3.0)
            client.send_signal(signal.SIGKILL)
            client.wait()
            self.killed_clients += 1

    def run(self, seconds: float, project: Path) -> None:
        workers = {"valid": [(self._sync_worker, ("valid", (1, *self.shape), 10.0))] * 3,
                   "invalid": [(self._sync_worker, ("invalid", (1, 3, *self.shape[1:]), 10.0))],
                   "deadline": [(self._sync_worker, ("deadline", (1, *self.shape), 0.002))],
                   "cancel": [(self._cancel_worker, ())],
                   "killed": [(self._crashing_clients, (project,))]}
        threads = [threading.Thread(target=target, args=args) for load in self.loads for target, args in workers[load]]
        for thread in threads:
            thread.start()
        self.stop.wait(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)


def _metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.tools.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--model", default=MODEL_NAME)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument("--loads", default=",".join(LOADS),
                        help=f"comma-separated subset of {','.join(LOADS)} (default: all)")
    parser.add_argument("--output", type=Path, help="write the report as JSON here")
    parser.add_argument("--direct", action="store_true", help="clients reach Triton's own port (no relay)")
    args = parser.parse_args(argv)
    loads = tuple(name.strip() for name in args.loads.split(",") if name.strip())
    unknown = [name for name in loads if name not in LOADS]
    if unknown or not loads:
        parser.error(f"--loads {args.loads!r}: unknown {', '.join(unknown) or 'nothing given'}; "
                     f"expected a comma-separated subset of {','.join(LOADS)}")
    project = Path(__file__).resolve().parents[2]  # serving/tools/soak.py
    options = ServerOptions(repository=args.repository, grpc_port=18601, metrics_port=18602, exit_timeout_s=10)
    log_path = args.output.parent / "triton.log" if args.output else None  # kept: a failed soak's evidence
    with (TritonServer if args.direct else RelayedTriton)(options, log_path=log_path) as server:
        with grpcclient.InferenceServerClient(options.grpc_url) as client:
            config = client.get_model_config(args.model, as_json=True)["config"]
        shape = tuple(int(d) for d in config["input"][0]["dims"])
        pids = lambda: [server.pid, *server.stub_pids()]  # noqa: E731
        stubs_at_start = server.stub_pids()
        warm = Soak(server, args.model, shape, loads)
        warm.run(args.warmup, project)
        rss_start = memory_mb(pids())
        print(f"soak: warm-up done, server RSS {rss_start:.1f} MB; mixed load for {args.minutes:g} min...", flush=True)
        soak = Soak(server, args.model, shape, loads)
        soak.run(args.minutes * 60, project)
        time.sleep(5)
        rss_end = memory_mb(pids())
        pending = _metric(options.metrics_url, "nv_inference_pending_request_count")
        after = Counter()
        with grpcclient.InferenceServerClient(options.grpc_url) as client:
            for _ in range(100):
                try:
                    client.infer(args.model, [soak._input((1, *shape))], client_timeout=10)
                    after["OK"] += 1
                except InferenceServerException as exc:
                    after[status_code(exc)] += 1
        restarted = server.process.poll() is not None or server.stub_pids() != stubs_at_start
    unexpected = {kind: {c: n for c, n in counts.items() if c not in EXPECTED[kind]}
                  for kind, counts in soak.outcomes.items()}
    lost = {kind: soak.sent[kind] - sum(counts.values()) for kind, counts in soak.outcomes.items()}
    report = {"minutes": args.minutes, "loads": list(loads), "sent": dict(soak.sent), "outcomes": {k: dict(v) for k, v in soak.outcomes.items()},
              "unexpected": {k: v for k, v in unexpected.items() if v}, "lost": {k: v for k, v in lost.items() if v},
              "killed_clients": soak.killed_clients, "rss_mb": {"after_warmup": round(rss_start, 1),
                                                                 "end": round(rss_end, 1)},
              "rss_growth_mb": round(rss_end - rss_start, 1), "pending_at_end": pending,
              "sequential_after": dict(after), "restarted": restarted, "relay": not args.direct}
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    ok = (not report["unexpected"] and not report["lost"] and pending == 0 and after == Counter(OK=100)
          and not restarted and report["rss_growth_mb"] < RSS_BUDGET_MB * args.minutes / 10)
    print(f"soak: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
