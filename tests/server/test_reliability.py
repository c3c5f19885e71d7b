"""Reliability and security against the real embedded Triton (docs/reliability.md, "Failure modes and their
tests", rows I, O, F and S). One server holds the normal model and variants with injected faults
(tests/fault_model.py wraps the production model.py in their version folders; the `fault_injection` config
parameter picks the fault). After every test on it: live and ready, a good request succeeds and no request is
left pending."""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from fault_injection import FAULT_PARAMETER
from helpers import PROJECT, TESTS, free_port, http_get, metric_sum, wait_for
from serve_helpers import CLIP, sign
from serving.procfs import listening_ports, status_kb
from serving.python_backend.stanet_backend import TIME_BUDGET_PARAMETER
from serving.server import ADMIN_HEADER_KEY, ServerOptions, TritonServer
from stanet.constants import CONFIG_FILE, MODEL_NAME, PYTHON_MODEL_FILE

pytestmark = pytest.mark.slow
# A fault variant's version folder: fault_model.py as model.py, the production model.py under this name (the
# one fault_model.py imports), and fault_injection.py.
PRODUCTION_MODEL = "stanet_model.py"
ADMIN_TOKEN = "reliability-admin-token"
MESSAGES: list[str] = []  # every error message a client saw (S5 scans them)


def _install_fault(version: Path) -> None:
    """The fault wrapper in place of the version folder's model.py, which it imports from beside it."""
    (version / PYTHON_MODEL_FILE).rename(version / PRODUCTION_MODEL)
    shutil.copyfile(TESTS / "fault_model.py", version / PYTHON_MODEL_FILE)
    shutil.copyfile(TESTS / "fault_injection.py", version / "fault_injection.py")
    sign(version)


def _variant(repository: Path, name: str, *, max_batch: int | None = None, parameters: dict[str, str] = None):
    """A copy of the served model under another name, with another batch limit or backend parameters; with
    a `fault_injection` parameter, the fault wrapper is installed too."""
    shutil.copytree(repository / MODEL_NAME, repository / name)
    config = model_config_pb2.ModelConfig()
    text_format.Parse((repository / name / CONFIG_FILE).read_text(), config)
    config.name = name
    config.instance_group[0].count = 1  # one instance: the overload and fault tests count on it
    if max_batch is not None:
        config.max_batch_size = max_batch
        config.dynamic_batching.default_queue_policy.max_queue_size = 4 * max_batch
    for key, value in (parameters or {}).items():
        config.parameters[key].string_value = value
    if FAULT_PARAMETER in (parameters or {}):
        del config.model_warmup[:]  # a faulty model would fail its warmup and never load
        for version in (p for p in (repository / name).iterdir() if p.name.isdigit()):
            _install_fault(version)
    (repository / name / CONFIG_FILE).write_text(text_format.MessageToString(config))


@pytest.fixture(scope="module")
def repository(served_repository, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("reliability") / "models"
    shutil.copytree(served_repository, repo)
    _variant(repo, "stanet_queue", max_batch=1, parameters={FAULT_PARAMETER: "delay:300"})
    _variant(repo, "stanet_slow", max_batch=1, parameters={FAULT_PARAMETER: "delay:3000"})
    _variant(repo, "stanet_raise", parameters={FAULT_PARAMETER: "raise"})
    _variant(repo, "stanet_nan", parameters={FAULT_PARAMETER: "nan"})
    _variant(repo, "stanet_hang", parameters={FAULT_PARAMETER: "hang", TIME_BUDGET_PARAMETER: "1500"})
    return repo


@pytest.fixture(scope="module")
def server(repository):
    options = ServerOptions(repository=repository, grpc_port=free_port(), metrics_port=free_port(),
                            exit_timeout_s=5, admin_token=ADMIN_TOKEN)
    with TritonServer(options) as running:
        yield running


def clip_input(batch: int = 1, shape=CLIP, dtype="UINT8", name="clip", data=None):
    data = np.zeros((batch, *shape), np.uint8 if dtype == "UINT8" else np.float32) if data is None else data
    tensor = grpcclient.InferInput(name, list(data.shape), dtype)
    tensor.set_data_from_numpy(data)
    return tensor


def infer(server, model=MODEL_NAME, inputs=None, **kwargs):
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        return client.infer(model, [clip_input()] if inputs is None else inputs, client_timeout=kwargs.pop(
            "client_timeout", 30), **kwargs)


def refused(server, status: str, pattern: str, **kwargs) -> str:
    with pytest.raises(InferenceServerException) as caught:
        infer(server, **kwargs)
    message = caught.value.message() or ""
    MESSAGES.append(message)
    assert caught.value.status() == f"StatusCode.{status}", (caught.value.status(), message)
    assert re.search(pattern, message), message
    return message


def metric(server, name: str, **labels: str) -> float:
    return metric_sum(http_get(server.options.metrics_url), name, **labels)


@pytest.fixture(autouse=True)
def server_still_serves(request):
    """After each test that used the shared server: live, ready, a good request answered, nothing pending."""
    yield
    if "server" not in request.fixturenames:
        return
    server = request.getfixturevalue("server")
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        assert client.is_server_live(client_timeout=10) and client.is_server_ready(client_timeout=10)
    assert infer(server).as_numpy("probabilities").shape == (1, 8)
    wait_for(lambda: all(metric(server, "nv_inference_pending_request_count", model=m) == 0
                         for m in (MODEL_NAME, "stanet_queue", "stanet_slow")), 15, what="no pending request")


# I: bad input ---------------------------------------------------------------------------------------------

def test_byte_size_that_does_not_match_the_shape_is_refused(server):
    """Row I3 of docs/reliability.md."""
    channel = grpc.insecure_channel(server.options.grpc_url)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    size = int(np.prod(CLIP))
    for contents in (b"\0" * (size - 7), b"\0" * (size + 7)):
        request = service_pb2.ModelInferRequest(model_name=MODEL_NAME)
        tensor = request.inputs.add(name="clip", datatype="UINT8")
        tensor.shape.extend([1, *CLIP])
        request.raw_input_contents.append(contents)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, timeout=30)
        MESSAGES.append(caught.value.details())
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"Expected {size}, got {len(contents)}" in caught.value.details()
    channel.close()


@pytest.mark.parametrize("shape, pattern", [
    ((0, *CLIP), r"batch-size|batch size|Expected \[-1,16,32,32,3\]|byte size"),
    ((1, 16, -1, 32, 3), r"."),
    ((1, *CLIP, 1), r"Expected \[-1,16,32,32,3\]"),
])
def test_batch_zero_negative_dims_and_wrong_rank_are_refused(server, shape, pattern):
    """Row I5 of docs/reliability.md."""
    channel = grpc.insecure_channel(server.options.grpc_url)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = service_pb2.ModelInferRequest(model_name=MODEL_NAME)
    tensor = request.inputs.add(name="clip", datatype="UINT8")
    tensor.shape.extend(shape)
    request.raw_input_contents.append(b"\0" * max(int(np.prod([abs(d) for d in shape])), 0))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=30)
    MESSAGES.append(caught.value.details())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert re.search(pattern, caught.value.details())
    channel.close()


def test_unknown_output_and_extra_input_are_named(server):
    """Row I4 of docs/reliability.md."""
    refused(server, "INVALID_ARGUMENT", r"unexpected inference output 'attention'",
            outputs=[grpcclient.InferRequestedOutput("attention")])
    refused(server, "INVALID_ARGUMENT", r"expected 1 inputs but got 2 inputs|unexpected inference input 'extra'",
            inputs=[clip_input(), clip_input(name="extra")])


def test_oversize_messages_are_refused_without_memory_growth(server):
    """Row I7 of docs/reliability.md."""
    before = status_kb(server.pid, "VmRSS")
    largest = 4 * int(np.prod(CLIP))  # the largest legal batch in bytes
    for batch in (8, 4 + (64 << 20) // int(np.prod(CLIP))):  # 2x the largest, and 64 MiB over it
        data = np.zeros((batch, *CLIP), np.uint8)
        refused(server, "INVALID_ARGUMENT", r"batch-size must be <= 4", inputs=[clip_input(data=data)])
    growth_mb = (status_kb(server.pid, "VmRSS") - before) / 1024
    assert growth_mb < 150, growth_mb  # the 64 MiB request is parsed once, not kept
    assert largest < (64 << 20)


def test_mutated_requests_and_garbage_bytes_never_break_the_server(server):
    """Row I8: Seeded bit flips of a valid serialized ModelInferRequest sent as raw bytes, and random bytes to the
    port: every call ends (answer or error) within its deadline and the server keeps serving."""
    request = service_pb2.ModelInferRequest(model_name=MODEL_NAME)
    tensor = request.inputs.add(name="clip", datatype="UINT8")
    tensor.shape.extend([1, *CLIP])
    request.raw_input_contents.append(np.random.default_rng(0).integers(0, 256, int(np.prod(CLIP)), np.uint8).tobytes())
    valid = bytearray(request.SerializeToString())
    header = len(valid) - len(request.raw_input_contents[0])  # mutate the fields, not only the pixels
    channel = grpc.insecure_channel(server.options.grpc_url)
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                               request_serializer=lambda b: bytes(b), response_deserializer=lambda b: b)
    rng = random.Random(0)
    codes: dict[str, int] = {}
    started = time.monotonic()
    for case in range(300):
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(header + 16)
            mutated[position] ^= 1 << rng.randrange(8)
        if case % 10 == 0:
            mutated = mutated[: rng.randrange(len(mutated))]  # truncated
        try:
            call(bytes(mutated), timeout=5)
            code = "OK"
        except grpc.RpcError as exc:
            code = exc.code().name
            assert code != "DEADLINE_EXCEEDED", f"case {case} hung"
            MESSAGES.append(exc.details() or "")
        codes[code] = codes.get(code, 0) + 1
    channel.close()
    for _ in range(20):  # not HTTP/2 at all
        with socket.create_connection(("127.0.0.1", server.options.grpc_port), timeout=5) as raw:
            raw.sendall(os.urandom(rng.randint(1, 4096)))
    print(f"300 mutated requests in {time.monotonic() - started:.1f} s: {codes}")
    assert sum(codes.values()) == 300


@pytest.mark.parametrize("model, version, status, pattern", [
    ("../stanet", "", "NOT_FOUND", r"unknown model: '../stanet'"),
    ("stanet/../stanet", "", "NOT_FOUND", r"unknown model: 'stanet/../stanet'"),
    (MODEL_NAME, "../1", "INVALID_ARGUMENT", r"version string '../1'.*version should be an integral value > 0"),
    (MODEL_NAME, "-1", "INVALID_ARGUMENT", r"version should be an integral value > 0"),
])
def test_path_like_model_names_and_versions_are_refused(server, model, version, status, pattern):
    """Row I9 of docs/reliability.md."""
    refused(server, status, pattern, model=model, model_version=version)


# O: overload ----------------------------------------------------------------------------------------------

def _fire(server, model: str, count: int, **kwargs) -> list[tuple[str, str]]:
    """`count` concurrent requests; (status, message) each ("OK" for an answer)."""
    outcomes: list = [None] * count

    def one(k):
        try:
            infer(server, model=model, **kwargs)
            outcomes[k] = ("OK", "")
        except InferenceServerException as exc:
            outcomes[k] = (exc.status().removeprefix("StatusCode."), exc.message())
            MESSAGES.append(exc.message())

    threads = [threading.Thread(target=one, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_a_full_queue_rejects_exactly_the_overflow(server):
    """Row O1 of docs/reliability.md."""
    first = threading.Thread(target=lambda: infer(server, model="stanet_queue"))  # occupies the instance
    first.start()
    time.sleep(0.15)
    outcomes = _fire(server, "stanet_queue", 6)  # queue holds 4 (4 x max_batch_size 1)
    first.join(timeout=30)
    rejected = [m for status, m in outcomes if status != "OK"]
    assert len(rejected) == 2, outcomes
    assert all("Exceeds maximum queue size" in m for m in rejected), rejected
    assert [s for s, _ in outcomes].count("OK") == 4


def test_a_request_waiting_past_the_queue_timeout_is_rejected(server):
    """Row O2 of docs/reliability.md."""
    before = metric(server, "nv_inference_request_failure", model="stanet_slow", reason="REJECTED")
    outcomes = _fire(server, "stanet_slow", 3)  # 3 s each, one at a time; the third waits 6 s > 5 s
    assert sorted(s for s, _ in outcomes) == ["OK", "OK", "UNAVAILABLE"], outcomes
    assert any("Request timeout expired" in m for _, m in outcomes)
    assert metric(server, "nv_inference_request_failure", model="stanet_slow", reason="REJECTED") - before == 1


def test_a_client_deadline_shorter_than_the_model_ends_the_call(server):
    """Row O3 of docs/reliability.md."""
    started = time.monotonic()
    refused(server, "DEADLINE_EXCEEDED", r"Deadline Exceeded", model="stanet_slow", client_timeout=0.5)
    assert time.monotonic() - started < 2.0


def test_a_cancelled_request_stops_the_model_call(server):
    """Row O4 of docs/reliability.md."""
    done = threading.Event()
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        call = client.async_infer("stanet_slow", [clip_input()], callback=lambda result, error: done.set())
        time.sleep(0.5)
        call.cancel()
        started = time.monotonic()
        infer(server, model="stanet_slow")  # waits for the instance: 3 s of its own
        waited = time.monotonic() - started
    # Without cancellation it would wait for the rest of the first call too (2.5 s more).
    assert waited < 4.5, waited


# F: faults ------------------------------------------------------------------------------------------------

def test_an_exception_in_the_model_fails_that_batch_only(server):
    """Row F3 of docs/reliability.md."""
    before = metric(server, "stanet_backend_errors", model="stanet_raise", code="INTERNAL")
    refused(server, "INTERNAL", r"the model failed on a batch of 1 clips: injected fault", model="stanet_raise")
    # Triton 2.51 counts an error response as a success; the model's own counter sees it.
    wait_for(lambda: metric(server, "stanet_backend_errors", model="stanet_raise", code="INTERNAL") - before == 1, 5,
             what="the error counted in stanet_backend_errors")


def test_non_finite_outputs_are_never_returned(server):
    refused(server, "INTERNAL", r"produced NaN or infinite values in \['probabilities', 'spatial_attention', "
                                r"'temporal_attention'\]", model="stanet_nan")


def test_a_hung_model_call_is_ended_by_its_time_budget(server):
    """Row F2 of docs/reliability.md."""
    for _ in range(2):  # the second call gets a fresh worker although the first is still stuck
        started = time.monotonic()
        refused(server, "INTERNAL", r"exceeded its time budget of 1.5 s", model="stanet_hang")
        assert time.monotonic() - started < 5.0


def test_cancel_race_control_load_leaves_the_server_serving(server):
    """`python -m serving.tools.cancel_race --url` (the check for a deployed Triton's cancellation fix, upstream
    triton-inference-server/server#7368) against the running server: its control load (deadlines nobody
    reaches) is answered OK throughout and the tool reports that the server survived, with every request
    answered. The racing load itself kills this 2.51 at random on its own port (docs/benchmark.md); it runs
    through the relay in tests/server/test_serve_relay.py."""
    result = subprocess.run([sys.executable, "-m", "serving.tools.cancel_race", "--url", server.options.grpc_url,
                             "--control", "--seconds", "3", "--workers", "2"],
                            cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"median latency [\d.]+ ms at 2 workers; control", result.stdout), result.stdout
    assert re.search(r"the server survived 3 s \(OK \d+; \d+ sent, 0 without an outcome\); a good request "
                     r"afterwards: OK$", result.stdout.strip()), result.stdout


# S: security ----------------------------------------------------------------------------------------------

def test_models_cannot_be_loaded_or_unloaded(server):
    """Row S1 of docs/reliability.md."""
    headers = {f"triton-grpc-protocol-{ADMIN_HEADER_KEY}": ADMIN_TOKEN}
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        for call in (lambda h: client.load_model(MODEL_NAME, headers=h), lambda h: client.unload_model(MODEL_NAME, headers=h)):
            with pytest.raises(InferenceServerException, match="This protocol is restricted"):
                call(None)  # without the admin header
            with pytest.raises(InferenceServerException) as caught:
                call(headers)  # with it: refused by --model-control-mode=none
            MESSAGES.append(caught.value.message())
            assert "not allowed" in caught.value.message() or "explicit" in caught.value.message()
        assert client.is_model_ready(MODEL_NAME, client_timeout=10)


def test_triton_listens_on_loopback_only_and_http_is_off(server):
    """Row S4 of docs/reliability.md."""
    ports = listening_ports(server.pid)
    assert ports == {("127.0.0.1", server.options.grpc_port), ("127.0.0.1", server.options.metrics_port)}, ports


def test_no_error_message_leaks_paths_shared_memory_names_or_tracebacks():
    """Row S5 of docs/reliability.md."""
    assert len(MESSAGES) >= 20
    for message in MESSAGES:
        assert "Traceback" not in message and "triton_python_backend_shm" not in message, message
        assert not re.search(r"/(tmp|work|root|home|usr)/", message), message
