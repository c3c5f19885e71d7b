"""`python -m serving.tools.cancel_race`: does a Triton survive gRPC cancellations that race with its responses?

The embedded Triton 2.51 (nvidia-pytriton 0.7.0, the newest wheel) dies of SIGSEGV (`pthread_mutex_lock` in a
gRPC handler thread) when a request's cancellation reaches the server as its response completes:
triton-inference-server/server#7368, fixed upstream by #7840 (release 24.12, Triton 2.53). The deployment images
(docker-compose.yml, deploy/k8s) are newer than that; `stanet serve` restarts an embedded server that dies.

Workers send one clip after another, each with a client deadline drawn between 0.3x and 2x the latency measured
first under the same concurrency, so many deadlines expire while the response is being completed. A control run
(`--control`) sends the same load with deadlines nobody reaches. Against the embedded server (`--repository`:
behind the relay of `stanet serve`, serving/relay.py; with `--direct`, Triton's own port) the tritonserver
process is watched; against any running server (`--url`: `stanet serve`, an upgraded deployment) liveness is
polled. Every request must get exactly one outcome, and the server must answer a good request afterwards.
Exit status 0: the server survived; 1: it died (or lost a request, or did not answer afterwards).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving.embedded import RelayedTriton
from serving.errors import status_code
from serving.server import ServerOptions, TritonServer
from stanet.constants import INPUT_CLIP, MODEL_NAME

LIVENESS_FAILURES = 3  # --url: consecutive failed liveness checks that mean the server is gone
CONTROL_DEADLINE_S = 30.0


class Race:
    def __init__(self, url: str, model: str, workers: int, control: bool):
        self.url, self.model, self.workers, self.control = url, model, workers, control
        self.codes: Counter = Counter()
        self.sent = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _clip(self, client: grpcclient.InferenceServerClient) -> grpcclient.InferInput:
        dims = client.get_model_config(self.model, as_json=True)["config"]["input"][0]["dims"]
        clip = np.random.default_rng(0).integers(0, 256, (1, *map(int, dims)), dtype=np.uint8)  # (1, T, H, W, 3)
        tensor = grpcclient.InferInput(INPUT_CLIP, list(clip.shape), "UINT8")
        tensor.set_data_from_numpy(clip)
        return tensor

    def median_latency_s(self) -> float:
        """Median latency of `workers` concurrent streams of requests without deadlines."""
        samples: list[float] = []

        def measure() -> None:
            with grpcclient.InferenceServerClient(self.url) as client:
                clip = self._clip(client)
                for _ in range(30):
                    start = time.perf_counter()
                    client.infer(self.model, [clip])
                    with self.lock:
                        samples.append(time.perf_counter() - start)

        threads = [threading.Thread(target=measure) for _ in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return float(np.median(samples))

    def _worker(self, seed: int, latency_s: float) -> None:
        rng = random.Random(seed)
        with grpcclient.InferenceServerClient(self.url) as client:
            clip = self._clip(client)
            while not self.stop.is_set():
                deadline = CONTROL_DEADLINE_S if self.control else rng.uniform(0.3, 2.0) * latency_s
                with self.lock:
                    self.sent += 1
                try:
                    client.infer(self.model, [clip], client_timeout=deadline)
                    code = "OK"
                except InferenceServerException as exc:
                    code = status_code(exc)
                with self.lock:
                    self.codes[code] += 1

    def run(self, seconds: float, latency_s: float, alive) -> float | None:
        """Seconds until `alive()` turned false, or None if the server lasted `seconds`."""
        threads = [threading.Thread(target=self._worker, args=(seed, latency_s), daemon=True)
                   for seed in range(self.workers)]
        for thread in threads:
            thread.start()
        start, died = time.monotonic(), None
        while time.monotonic() - start < seconds:
            time.sleep(0.5)
            if not alive():
                died = time.monotonic() - start
                break
        self.stop.set()
        for thread in threads:
            thread.join(timeout=15)
        return died


def _url_liveness(url: str):
    failures = 0

    def alive() -> bool:
        nonlocal failures
        try:
            with grpcclient.InferenceServerClient(url) as client:
                failures = 0 if client.is_server_live(client_timeout=2) else failures + 1
        except InferenceServerException:
            failures += 1
        return failures < LIVENESS_FAILURES

    return alive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.tools.cancel_race", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--repository", type=Path, help="start the embedded Triton on this model repository")
    where.add_argument("--url", help="HOST:PORT of a running Triton's gRPC endpoint")
    parser.add_argument("--model", default=MODEL_NAME)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--control", action="store_true", help="the same load with deadlines nobody reaches")
    parser.add_argument("--log", type=Path, help="embedded server: write Triton's log here")
    parser.add_argument("--direct", action="store_true",
                        help="embedded server: clients reach Triton's own port (no relay; the 2.51 crash test)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.seconds <= 0:
        parser.error(f"--workers {args.workers} / --seconds {args.seconds:g}: expected at least 1 worker and a "
                     "positive duration")
    if args.repository is not None:
        options = ServerOptions(repository=args.repository, grpc_port=18621, metrics_port=18622, exit_timeout_s=5)
        server_class = TritonServer if args.direct else RelayedTriton
        context, url = server_class(options, log_path=args.log), options.grpc_url
    else:
        context, url = nullcontext(), args.url
    with context as server:
        alive = (lambda: server.process.poll() is None) if server is not None else _url_liveness(url)
        race = Race(url, args.model, args.workers, args.control)
        latency_s = race.median_latency_s()
        kind = "control: no deadline reached" if args.control else "deadlines 0.3x-2x the median latency"
        print(f"cancel_race: median latency {latency_s * 1e3:.2f} ms at {args.workers} workers; {kind}, "
              f"up to {args.seconds:g} s...", flush=True)
        died = race.run(args.seconds, latency_s, alive)
        after_error = _answer_error(url, args.model) if died is None else None
    codes = ", ".join(f"{code} {n}" for code, n in race.codes.most_common())
    lost = race.sent - sum(race.codes.values())
    if died is not None:
        print(f"cancel_race: the server died after {died:.1f} s ({codes}; {race.sent} sent)")
        return 1
    print(f"cancel_race: the server survived {args.seconds:g} s ({codes}; {race.sent} sent, {lost} without an "
          f"outcome); a good request afterwards: {'OK' if after_error is None else f'FAILED ({after_error})'}")
    return 0 if lost == 0 and after_error is None else 1


def _answer_error(url: str, model: str) -> str | None:
    """None when a good request is answered, else what went wrong (its status and message)."""
    try:
        with grpcclient.InferenceServerClient(url) as client:
            client.infer(model, [Race(url, model, 1, True)._clip(client)], client_timeout=CONTROL_DEADLINE_S)
        return None
    except InferenceServerException as exc:
        return f"{exc.status()}: {exc.message()}"


if __name__ == "__main__":
    sys.exit(main())
