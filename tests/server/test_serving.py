"""End to end against the real Triton binary (the nvidia-pytriton wheel's tritonserver 2.51, CPU, python
backend): a model trained on the easy synthetic data, exported with `stanet export --target python`, served on
loopback ports of its own, called over gRPC by the stanet client and by plain tritonclient."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from export.cli import main as export_main
from serving.client import StanetClient
from serving.errors import ServerUnavailableError, ServingError
from serving.infer_cli import main as infer_main
from serving.python_backend.stanet_backend import PHASES
from serving.results import parse_classification
from serving.server import ServerOptions, TritonServer
from stanet.constants import (INPUT_CLIP, MODEL_NAME, ONNX_FILE, OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION,
                              OUTPUT_TEMPORAL_ATTENTION)
from stanet.dataset_format import load_dataset
from stanet.video import write_video
from helpers import PROJECT, free_port, metric_sum, wait_for

pytestmark = pytest.mark.slow
MAX_BATCH = 4  # the served_repository fixture's max_batch_size
OUTPUTS = (OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)


@pytest.fixture(scope="module")
def repository(served_repository) -> Path:
    return served_repository


@pytest.fixture(scope="module")
def server(repository):
    options = ServerOptions(repository=repository, grpc_port=free_port(), metrics_port=free_port(), exit_timeout_s=10)
    with TritonServer(options) as running:
        yield running


@pytest.fixture(scope="module")
def session(repository) -> ort.InferenceSession:
    """The same model.onnx, run in this process."""
    return ort.InferenceSession(str(repository / MODEL_NAME / "1" / ONNX_FILE), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def held_out(easy_dataset):
    """(video paths, true labels, class names) of the test split."""
    dataset = load_dataset(easy_dataset)
    clips = dataset.split("test")
    return [easy_dataset / c.video for c in clips], [c.label for c in clips], dataset.class_names


def client_for(server, **kwargs) -> StanetClient:
    return StanetClient(server.options.grpc_url, **{"model": MODEL_NAME, **kwargs})


def raw_infer(server, batch: np.ndarray, *, top_k: int | None = None):
    """A request with plain tritonclient: raw outputs, or top-k classification on the probabilities."""
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        clip = grpcclient.InferInput(INPUT_CLIP, list(batch.shape), "UINT8")
        clip.set_data_from_numpy(batch)
        outputs = [grpcclient.InferRequestedOutput(name, class_count=top_k if name == OUTPUT_PROBABILITIES and top_k
                                                   else 0) for name in OUTPUTS]
        return client.infer(MODEL_NAME, [clip], outputs=outputs, client_timeout=30)


def clips_from(server, videos) -> np.ndarray:
    with client_for(server) as client:
        return np.stack([client.prepare_video(v).clip for v in videos])  # (B, T, H, W, 3)


def metrics(server) -> str:
    with urllib.request.urlopen(server.options.metrics_url, timeout=10) as response:
        return response.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format."""
    assert name + "{" in text, f"no sample {name} {labels} in the metrics"
    return metric_sum(text, name, **labels)


def test_served_labels_are_right_on_held_out_clips(server, held_out, session):
    videos, labels, _ = held_out
    with client_for(server) as client:
        answers = [client.infer_video(v, top_k=3) for v in videos[:48]]
    predicted = [a.prediction.label for a in answers]
    accuracy = np.mean([p == t for p, t in zip(predicted, labels)])
    assert accuracy >= 0.7, accuracy  # the model reaches about 0.85 on this split
    for answer in answers:
        p = answer.prediction
        assert [s.score for s in p.top_k] == sorted((s.score for s in p.top_k), reverse=True)
        assert p.spatial_attention.shape == (16, 8, 8) and p.temporal_attention.shape == (16,)
        assert abs(float(p.temporal_attention.sum()) - 1.0) < 1e-5
        assert 0.0 <= p.spatial_attention.min() and p.spatial_attention.max() <= 1.0
        assert answer.frame_indices.shape == (16,) and answer.num_frames == 24


def test_triton_outputs_equal_in_process_onnxruntime(server, held_out, session):
    videos, _, class_names = held_out
    batch = clips_from(server, videos[:MAX_BATCH])
    expected = dict(zip(OUTPUTS, session.run(list(OUTPUTS), {INPUT_CLIP: batch})))
    raw = raw_infer(server, batch)
    for name in OUTPUTS:
        np.testing.assert_allclose(raw.as_numpy(name), expected[name], rtol=0, atol=1e-5, err_msg=name)
    top = raw_infer(server, batch, top_k=3).as_numpy(OUTPUT_PROBABILITIES)  # BYTES [B, 3]
    assert top.shape == (MAX_BATCH, 3)
    for row, probabilities in zip(top, expected[OUTPUT_PROBABILITIES]):
        entries = [parse_classification(entry) for entry in row]
        assert [e.index for e in entries] == list(np.argsort(-probabilities)[:3])
        for entry in entries:
            assert entry.label == class_names[entry.index]
            assert abs(entry.score - probabilities[entry.index]) < 1e-5


def test_batches_larger_than_the_model_limit_are_split_and_agree_with_single_clips(server, held_out):
    videos, _, _ = held_out
    batch = clips_from(server, videos[:MAX_BATCH + 2])  # two requests: 4 + 2
    with client_for(server) as client:
        together = client.infer_clips(batch, top_k=2)
        alone = [client.infer_clips(clip[None], top_k=2)[0] for clip in batch]
    assert len(together) == len(batch)
    for a, b in zip(together, alone):
        assert [s.index for s in a.top_k] == [s.index for s in b.top_k]
        np.testing.assert_allclose(a.spatial_attention, b.spatial_attention, atol=1e-5)
        np.testing.assert_allclose(a.temporal_attention, b.temporal_attention, atol=1e-5)


def test_concurrent_clients_get_their_own_answers(server, held_out, session):
    videos, _, _ = held_out
    batch = clips_from(server, videos[:8])
    expected = session.run([OUTPUT_TEMPORAL_ATTENTION], {INPUT_CLIP: batch})[0]

    def worker(offset: int) -> list[tuple[int, np.ndarray]]:
        with client_for(server) as client:
            out = []
            for k in range(6):
                i = (offset + k) % len(batch)
                out.append((i, client.infer_clips(batch[i:i + 1], top_k=1)[0].temporal_attention))
            return out

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = [item for part in pool.map(worker, range(6)) for item in part]
    assert len(results) == 36
    for i, temporal in results:
        np.testing.assert_allclose(temporal, expected[i], atol=1e-5)


def test_metrics_count_requests_and_show_latency_quantiles(server, held_out):
    videos, _, _ = held_out
    batch = clips_from(server, videos[:2])
    before = metrics(server)
    with client_for(server) as client:
        for _ in range(5):
            client.infer_clips(batch, top_k=1)
    labels = {"model": MODEL_NAME, "version": "1"}
    # Triton records a request's statistics as it releases the request, just after the response is sent.
    deadline = time.monotonic() + 10
    while True:
        after = metrics(server)
        done = (metric(after, "nv_inference_request_summary_us_count", **labels)
                - metric(before, "nv_inference_request_summary_us_count", **labels))
        if done >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert metric(after, "nv_inference_request_success", **labels) - metric(before, "nv_inference_request_success",
                                                                             **labels) == 5
    assert metric(after, "nv_inference_count", **labels) - metric(before, "nv_inference_count", **labels) == 10
    assert (metric(after, "nv_inference_request_summary_us_count", **labels)
            - metric(before, "nv_inference_request_summary_us_count", **labels)) == 5
    for quantile in ("0.5", "0.9", "0.95", "0.99"):
        assert metric(after, "nv_inference_request_summary_us", quantile=quantile, **labels) > 0
        assert metric(after, "nv_inference_compute_infer_summary_us", quantile=quantile, **labels) > 0


def _pinned_threads(pids: list[int]) -> list[tuple[int, ...]]:
    """The CPU sets of the threads of `pids` that are pinned to a single core."""
    pinned = []
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            cores = tuple(sorted(os.sched_getaffinity(int(task))))
            if len(cores) == 1:
                pinned.append(cores)
    return sorted(pinned)


def test_one_thread_instances_that_fill_the_cores_run_pinned_and_report_their_phases(easy_run, held_out, tmp_path):
    """The layout `make bench` serves (one onnxruntime thread per instance, as many instances as cores): each
    stub's model thread runs on a core of its own, the answers stay those of in-process onnxruntime, and the
    stub's phase counters (stanet_backend_phase_seconds) account for the executions."""
    cores = sorted(os.sched_getaffinity(0))
    repository = tmp_path / "pinned"
    assert export_main(["--checkpoint", str(easy_run / "best.pt"), "--repository", str(repository), "--target",
                        "python", "--max-batch-size", "4", "--instances", str(len(cores)),
                        "--intra-op-threads", "1"]) == 0
    local = ort.InferenceSession(str(repository / MODEL_NAME / "1" / ONNX_FILE), providers=["CPUExecutionProvider"])
    options = ServerOptions(repository=repository, grpc_port=free_port(), metrics_port=free_port(), exit_timeout_s=10)
    with TritonServer(options) as pinned:
        batch = clips_from(pinned, held_out[0][:2])
        started = time.monotonic()
        with client_for(pinned) as client:
            while time.monotonic() - started < 1.0:  # past the phase counters' hand-out interval (0.25 s)
                client.infer_clips(batch, top_k=1)
        served = raw_infer(pinned, batch)
        assert _pinned_threads(pinned.stub_pids()) == [(core,) for core in cores]
        def counted() -> str | None:
            text = metrics(pinned)
            return text if metric_sum(text, "stanet_backend_phase_seconds", phase="model") > 0 else None

        text = wait_for(counted, 10, what="the stub's phase counters on the metrics page")
    expected = local.run(None, {INPUT_CLIP: batch})
    for name, value in zip(OUTPUTS, expected):
        np.testing.assert_allclose(served.as_numpy(name), value, atol=1e-5)
    phases = {phase: metric(text, "stanet_backend_phase_seconds", model=MODEL_NAME, phase=phase)
              for phase in PHASES}
    assert phases["model"] > max(v for k, v in phases.items() if k != "model")  # the model dominates its execute
    assert all(value >= 0 for value in phases.values())


def test_liveness_and_readiness(server):
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        assert client.is_server_live(client_timeout=10)
        assert client.is_server_ready(client_timeout=10)
        assert client.is_model_ready(MODEL_NAME, client_timeout=10)
        assert client.is_model_ready(MODEL_NAME, "1", client_timeout=10)
        assert not client.is_model_ready("no_such_model", client_timeout=10)
    with client_for(server) as client:
        assert client.is_ready()
        model = client.model()
    assert (model.clip_length, model.height, model.width, model.max_batch_size) == (16, 32, 32, MAX_BATCH)


def _request(shape, dtype="UINT8", name=INPUT_CLIP, model=MODEL_NAME, version=""):
    def send(url: str):
        data = np.zeros(shape, dtype=np.uint8 if dtype == "UINT8" else np.float32)
        tensor = grpcclient.InferInput(name, list(shape), dtype)
        tensor.set_data_from_numpy(data)
        with grpcclient.InferenceServerClient(url) as client:
            client.infer(model, [tensor] if shape else [], model_version=version, client_timeout=30)
    return send


BAD_REQUESTS = {
    "wrong T": (_request((1, 8, 32, 32, 3)), "INVALID_ARGUMENT", r"Expected \[-1,16,32,32,3\], got \[1,8,32,32,3\]"),
    "wrong H": (_request((1, 16, 48, 32, 3)), "INVALID_ARGUMENT", r"Expected \[-1,16,32,32,3\]"),
    "wrong W": (_request((1, 16, 32, 64, 3)), "INVALID_ARGUMENT", r"Expected \[-1,16,32,32,3\]"),
    "float32 clip": (_request((1, 16, 32, 32, 3), "FP32"), "INVALID_ARGUMENT", r"'FP32', but model 'stanet' expects 'UINT8'"),
    "batch over the maximum": (_request((MAX_BATCH + 1, 16, 32, 32, 3)), "INVALID_ARGUMENT",
                               rf"batch-size must be <= {MAX_BATCH}"),
    "missing input": (_request(()), "INVALID_ARGUMENT", r"missing required input\(s\) \['clip'\]"),
    "unknown input name": (_request((1, 16, 32, 32, 3), name="video"), "INVALID_ARGUMENT",
                           r"unexpected inference input 'video'"),
    "unknown model": (_request((1, 16, 32, 32, 3), model="nope"), "NOT_FOUND", r"unknown model: 'nope'"),
    "unknown version": (_request((1, 16, 32, 32, 3), version="7"), "NOT_FOUND", r"'stanet' version 7 is not found"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_are_refused_with_what_was_expected_and_the_server_keeps_serving(server, held_out, case):
    send, status, pattern = BAD_REQUESTS[case]
    with pytest.raises(InferenceServerException) as caught:
        send(server.options.grpc_url)
    assert caught.value.status() == f"StatusCode.{status}"
    assert re.search(pattern, caught.value.message()), caught.value.message()
    with client_for(server) as client:  # the next request is served
        assert client.infer_video(held_out[0][0], top_k=1).ok


def test_the_client_names_a_bad_request_in_its_error(server):
    with client_for(server) as client:
        with pytest.raises(ValueError, match=r"clips must be uint8 \(B, 16, 32, 32, 3\).*float32"):
            client.infer_clips(np.zeros((1, 16, 32, 32, 3), np.float32))
        with pytest.raises(ValueError, match="top_k must be between 1 and the model's 8 classes"):
            client.infer_clips(np.zeros((1, 16, 32, 32, 3), np.uint8), top_k=9)
    with pytest.raises(ServingError, match="model 'nope' .* is not served at"):
        client_for(server, model="nope").model()


def test_admin_protocols_are_restricted_and_inference_is_not(server):
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        for call in (client.get_system_shared_memory_status, client.get_model_repository_index,
                     lambda: client.register_system_shared_memory("region", "/stanet_test", 64)):
            with pytest.raises(InferenceServerException, match="This protocol is restricted"):
                call()
        assert client.get_model_metadata(MODEL_NAME).name == MODEL_NAME


def _bad_files(tmp: Path, short_video: Path) -> dict[str, Path]:
    files = {"missing": tmp / "missing.mp4", "empty": tmp / "empty.mp4", "corrupt": tmp / "corrupt.mp4",
             "text": tmp / "notes.txt"}
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["text"].write_text("not a video\n")
    return files


def test_infer_cli_answers_good_files_and_names_each_bad_one(server, held_out, tmp_path, capsys):
    videos, labels, _ = held_out
    short = tmp_path / "short.mp4"  # 5 frames, fewer than T = 16: padded with its last frame, as in training
    write_video(short, np.full((5, 32, 32, 3), 90, np.uint8))
    bad = _bad_files(tmp_path, short)
    args = [str(videos[0]), str(bad["missing"]), str(bad["empty"]), str(short), str(bad["corrupt"]),
            str(bad["text"]), str(videos[1])]
    code = infer_main([*args, "--url", server.options.grpc_url, "--json", "--no-progress", "--top-k", "2"])
    captured = capsys.readouterr()
    assert code == 1
    results = {r["video"]: r for r in json.loads(captured.out)["results"]}
    assert list(results) == args  # in the order given
    for good in (videos[0], videos[1], short):
        answer = results[str(good)]
        assert answer["error"] is None and len(answer["top_k"]) == 2, answer
    assert results[str(short)]["frame_indices"] == [0, 1, 2, 3, 4] + [4] * 11
    assert results[str(short)]["num_frames"] == 5
    reasons = {"missing": "no such file", "empty": "the file is empty", "corrupt": "not a decodable video",
               "text": "not a decodable video"}
    for kind, path in bad.items():
        assert reasons[kind] in results[str(path)]["error"]
        assert f"stanet infer: error: {path}: cannot read video {path}: {reasons[kind]}" in captured.err
    assert "Traceback" not in captured.err


def test_infer_cli_prints_a_table_and_writes_overlays(server, held_out, tmp_path, capsys):
    videos, labels, _ = held_out
    out = tmp_path / "overlays"
    code = infer_main([str(v) for v in videos[:3]] + ["--url", server.options.grpc_url, "--overlay", str(out),
                                                       "--concurrency", "2", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].split()[:3] == ["video", "label", "score"]
    for video in videos[:3]:
        assert any(line.startswith(str(video)) for line in lines)
        folder = out / video.stem
        assert len(list(folder.glob("frame_*.png"))) == 16
        from PIL import Image

        with Image.open(folder / "attention.gif") as gif:
            assert gif.n_frames == 16
        with Image.open(folder / "sheet.png") as sheet:
            assert sheet.width > 0


def test_an_unreachable_server_is_named_with_its_url(tmp_path, held_out, capsys):
    url = f"127.0.0.1:{free_port()}"
    code = infer_main([str(held_out[0][0]), "--url", url, "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2
    assert f"Triton at {url} is not available" in captured.err and "Traceback" not in captured.err
    client = StanetClient(url, retries=2, backoff_s=0.01, timeout_s=2)
    started = time.monotonic()
    with pytest.raises(ServerUnavailableError, match=rf"{re.escape(url)}.*after 3 attempts"):
        client.model()
    assert time.monotonic() - started < 30  # bounded: 3 attempts, no endless retry


def test_serve_refuses_a_repository_this_triton_cannot_run(easy_run, tmp_path, capsys):
    from serving.serve_cli import main as serve_main

    repo = tmp_path / "repo"
    assert export_main(["--checkpoint", str(easy_run / "best.pt"), "--repository", str(repo),
                        "--target", "onnxruntime"]) == 0
    capsys.readouterr()
    assert serve_main(["--repository", str(repo), "--grpc-port", str(free_port()),
                       "--metrics-port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "stanet: a model for the onnxruntime backend" in err and "cannot run" in err
    assert "--target python" in err


def test_serve_names_a_port_in_use(repository, capsys):
    from serving.serve_cli import main as serve_main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert serve_main(["--repository", str(repository), "--grpc-port", str(port),
                           "--metrics-port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert f"gRPC port 127.0.0.1:{port} is not available" in err and "--grpc-port" in err


def test_stanet_serve_finishes_in_flight_requests_on_sigterm(repository, held_out):
    grpc_port, metrics_port = free_port(), free_port()
    url = f"127.0.0.1:{grpc_port}"
    process = subprocess.Popen([sys.executable, "-m", "stanet", "serve", "--repository", str(repository),
                                "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port),
                                "--exit-timeout", "20"], cwd=PROJECT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:  # bounded by the pytest timeout
            lines.append(line)
            if "ready." in line:
                break
        assert any(f"gRPC {url}" in line for line in lines), lines
        batch = np.stack([StanetClient(url).prepare_video(v).clip for v in held_out[0][:MAX_BATCH]])
        signalled = threading.Event()
        outcomes = []  # (sent before the signal, finished after it, error or None)
        lock = threading.Lock()

        def worker():
            with StanetClient(url, retries=0, timeout_s=30) as client:
                while True:
                    before = not signalled.is_set()
                    try:
                        client.infer_clips(batch, top_k=1)
                        error = None
                    except ServingError as exc:
                        error = str(exc)
                    with lock:
                        outcomes.append((before, signalled.is_set(), error))
                    if signalled.is_set():
                        return

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        while len(outcomes) < 16:
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        signalled.set()
        for thread in threads:
            thread.join(timeout=60)
        code = process.wait(timeout=60)
        rest = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, rest
    assert "finishing in-flight requests" in rest and "stopped (Triton exit code 0)" in rest
    in_flight = [o for o in outcomes if o[0] and o[1]]  # sent before SIGTERM, answered after it
    assert any(error is None for _, _, error in in_flight), outcomes[-16:]
    # Before the signal nothing failed; after it, only refusals of new work (never a dropped accepted request).
    assert all(error is None for before, after, error in outcomes if not after)
    for _, _, error in in_flight:
        assert error is None or "UNAVAILABLE" in error or "not available" in error or "shutting down" in error, error


def test_the_readme_tritonclient_snippet_runs_as_written(server, capsys):
    readme = (PROJECT / "README.md").read_text()
    block = readme.split("<!-- snippet: tritonclient", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert '"127.0.0.1:8001"' in block
    namespace: dict = {}
    exec(compile(block.replace('"127.0.0.1:8001"', repr(server.options.grpc_url)), "README.md", "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r"[a-z_]+: [01]\.\d{3}", line) for line in lines), lines
    assert namespace["where"].shape == (16, 8, 8) and namespace["when"].shape == (16,)


def test_load_generator_closed_and_open_loop(server, held_out):
    from serving.loadgen import ClientMetrics, closed_loop, open_loop

    clips = clips_from(server, held_out[0][:4])
    metrics = ClientMetrics()
    closed = closed_loop(server.options.grpc_url, MODEL_NAME, clips, concurrency=2, duration_s=1.0, metrics=metrics)
    opened = open_loop(server.options.grpc_url, MODEL_NAME, clips, rate_per_s=20, duration_s=1.0, metrics=metrics)
    assert closed.codes["OK"] == closed.requests > 0 and len(closed.latencies_s) == closed.requests
    assert opened.codes == {"OK": 20} and len(opened.latencies_s) == 20
    observed = metrics.registry.get_sample_value("stanet_client_request_duration_seconds_count", {"model": MODEL_NAME})
    assert observed == closed.requests + 20


def test_bench_measures_any_running_triton_by_url(server, easy_dataset, tmp_path):
    """`stanet bench --url` (the GPU path's benchmark) against this server: every batch x concurrency point
    answered, batches above the model's limit skipped, the report and plot written."""
    from bench.cli import main as bench_main

    output = tmp_path / "remote"
    assert bench_main(["--url", server.options.grpc_url, "--metrics-url", server.options.metrics_url,
                       "--data", str(easy_dataset), "--output", str(output), "--models", MODEL_NAME,
                       "--batches", f"1,2,{MAX_BATCH + 1}", "--concurrency", "1,2", "--seconds", "0.5"]) == 0
    report = json.loads((output / "report.json").read_text())
    points = report["models"][MODEL_NAME]["points"]
    assert [(p["batch"], p["concurrency"]) for p in points] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for point in points:
        assert set(point["codes"]) == {"OK"} and point["clips_per_s"] > 0 and point["p99_ms"] >= point["p50_ms"]
        assert point["server_cpu_cores"] is None  # a server elsewhere: its CPU is not ours to read
        assert point["compute_infer_ms"] > 0  # the server-side split, from the metrics page
    # The stub's own split of an execution, where its phase counters moved during the point (every 0.25 s)
    splits = [p["stub_ms"] for p in points if p["stub_ms"]]
    assert splits and all(s["model"] > 0 and s["execution"] > 0 for s in splits)
    assert report["models"][MODEL_NAME]["clip_shape"] == [16, 32, 32]
    assert (output / "latency_vs_throughput.png").stat().st_size > 0
