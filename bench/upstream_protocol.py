"""`python -m bench.upstream_protocol --repository DIR`: which of Triton's frontends the relay of `stanet serve`
should call (docs/benchmark.md, "The relay"): the embedded Triton with its HTTP frontend also on (a private
loopback port, this measurement only), called side by side, alternating, in rounds, with tritonclient's gRPC
client and with a keep-alive HTTP/1.1 client sending the KServe v2 binary-tensor extension (tritonclient's own
HTTP client needs its `http` extra, which this project does not install): concurrency-1 p50 and the requests
per second of a few closed-loop workers."""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from serving.server import ServerOptions, TritonServer
from stanet.constants import INPUT_CLIP, MODEL_NAME


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WithHttp(TritonServer):
    """The embedded Triton with its HTTP frontend on `http_port` (loopback) as well."""

    http_port = 0

    def command(self, backend_dir: Path, token: str) -> list[str]:
        flags = [f for f in super().command(backend_dir, token) if f != "--allow-http=false"]
        return [*flags, "--allow-http=true", "--http-address=127.0.0.1", f"--http-port={self.http_port}"]


class GrpcCaller:
    def __init__(self, url: str, model: str, shape):
        self.client, self.model = grpcclient.InferenceServerClient(url), model
        self.tensor = grpcclient.InferInput(INPUT_CLIP, [1, *shape], "UINT8")
        self.tensor.set_data_from_numpy(np.zeros((1, *shape), np.uint8))

    def __call__(self) -> None:
        self.client.infer(self.model, [self.tensor])


class HttpCaller:
    """POST /v2/models/<model>/infer with the binary-tensor extension: a JSON header, then the raw bytes."""

    def __init__(self, port: int, model: str, shape):
        self.connection, self.path = http.client.HTTPConnection("127.0.0.1", port), f"/v2/models/{model}/infer"
        data = np.zeros((1, *shape), np.uint8).tobytes()
        header = json.dumps({"inputs": [{"name": INPUT_CLIP, "shape": [1, *shape], "datatype": "UINT8",
                                         "parameters": {"binary_data_size": len(data)}}],
                             "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
        self.body, self.headers = header + data, {"Inference-Header-Content-Length": str(len(header)),
                                                  "Content-Type": "application/octet-stream"}

    def __call__(self) -> None:
        self.connection.request("POST", self.path, self.body, self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")


def p50_ms(make, requests: int) -> float:
    call = make()
    call()
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return float(np.percentile(samples, 50)) * 1e3


def rate(make, workers: int, seconds: float) -> float:
    done, lock, stop = [0], threading.Lock(), time.monotonic() + seconds

    def work() -> None:
        call = make()
        while time.monotonic() < stop:
            call()
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0] / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream_protocol", description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, required=True)
    parser.add_argument("--model", default=MODEL_NAME)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300, help="concurrency-1 requests per round")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0, help="loaded point per round")
    args = parser.parse_args(argv)
    options = ServerOptions(repository=args.repository, grpc_port=_port(), metrics_port=_port(), exit_timeout_s=5)
    server = WithHttp(options)
    server.http_port = _port()
    with server:
        with grpcclient.InferenceServerClient(options.grpc_url) as probe:
            shape = [int(d) for d in probe.get_model_config(args.model, as_json=True)["config"]["input"][0]["dims"]]
        callers = {"grpc": lambda: GrpcCaller(options.grpc_url, args.model, shape),
                   "http": lambda: HttpCaller(server.http_port, args.model, shape)}
        for number in range(args.rounds):
            for name in (("grpc", "http") if number % 2 == 0 else ("http", "grpc")):
                latency = p50_ms(callers[name], args.requests)
                loaded = rate(callers[name], args.workers, args.seconds)
                print(f"round {number + 1} {name}: c1 p50 {latency:.2f} ms, {args.workers} workers {loaded:.1f} "
                      f"requests/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
