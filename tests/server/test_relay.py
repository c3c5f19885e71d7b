"""The relay of `stanet serve` (serving/relay.py) in front of the real Triton: every call the client uses answers
as Triton's own port does, the admin restriction holds through it, no client cancellation reaches Triton, its
metrics join Triton's on one page, and keepalive abuse is answered by the policy."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from helpers import PROJECT, free_port, http_get, metric_sum, wait_for
from serving.embedded import RelayedTriton
from serving.relay import service_methods
from serving.server import ADMIN_HEADER_KEY, ServerOptions
from stanet.constants import INPUT_CLIP, MODEL_NAME, OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION
from serve_helpers import CLIP

pytestmark = pytest.mark.slow
ADMIN_TOKEN = "relay-test-token"


@pytest.fixture(scope="module")
def server(served_repository):
    options = ServerOptions(repository=served_repository, grpc_port=free_port(), metrics_port=free_port(),
                            exit_timeout_s=5, admin_token=ADMIN_TOKEN)
    with RelayedTriton(options) as running:
        yield running


def _clip(batch: int = 1, seed: int = 0) -> grpcclient.InferInput:
    data = np.random.default_rng(seed).integers(0, 256, (batch, *CLIP), dtype=np.uint8)
    tensor = grpcclient.InferInput(INPUT_CLIP, list(data.shape), "UINT8")
    tensor.set_data_from_numpy(data)
    return tensor


def _both(server):
    """(direct client, relayed client)."""
    return (grpcclient.InferenceServerClient(server.triton.options.grpc_url),
            grpcclient.InferenceServerClient(server.options.grpc_url))


def _outcome(call):
    try:
        return "OK", call()
    except InferenceServerException as exc:
        return exc.status(), exc.message()


def test_every_service_method_is_relayed():
    names = set(service_methods())
    assert {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelConfig",
            "ModelInfer", "ModelStreamInfer", "ModelStatistics", "RepositoryIndex", "SystemSharedMemoryStatus",
            "TraceSetting", "LogSettings"} <= names
    assert service_methods()["ModelStreamInfer"] and not service_methods()["ModelInfer"]


def test_metadata_config_and_health_answer_as_triton_does(server):
    direct, relayed = _both(server)
    with direct, relayed:
        for call in (lambda c: c.is_server_live(), lambda c: c.is_server_ready(),
                     lambda c: c.is_model_ready(MODEL_NAME),
                     lambda c: c.is_model_ready("nope"), lambda c: c.get_server_metadata(as_json=True),
                     lambda c: c.get_model_metadata(MODEL_NAME, as_json=True),
                     lambda c: c.get_model_config(MODEL_NAME, as_json=True),
                     lambda c: c.get_model_metadata("nope"), lambda c: c.get_model_config(MODEL_NAME, "7")):
            assert _outcome(lambda: call(direct)) == _outcome(lambda: call(relayed))


def test_inference_and_classification_answer_byte_for_byte_as_triton_does(server):
    direct, relayed = _both(server)
    outputs = [grpcclient.InferRequestedOutput(OUTPUT_PROBABILITIES, class_count=3),
               grpcclient.InferRequestedOutput(OUTPUT_SPATIAL_ATTENTION)]
    with direct, relayed:
        for batch in (1, 4):
            a = direct.infer(MODEL_NAME, [_clip(batch)], outputs=outputs).get_response()
            b = relayed.infer(MODEL_NAME, [_clip(batch)], outputs=outputs).get_response()
            a.ClearField("id"), b.ClearField("id")
            assert a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
        bad = grpcclient.InferInput(INPUT_CLIP, [1, 3, 32, 32, 3], "UINT8")
        bad.set_data_from_numpy(np.zeros((1, 3, 32, 32, 3), np.uint8))
        assert _outcome(lambda: direct.infer(MODEL_NAME, [bad])) == _outcome(lambda: relayed.infer(MODEL_NAME, [bad]))


def test_streaming_inference_is_relayed(server):
    answers = []
    done = threading.Event()

    def callback(result, error):
        answers.append(error or result.as_numpy(OUTPUT_PROBABILITIES).shape)
        if len(answers) == 3:
            done.set()

    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        client.start_stream(callback)
        for seed in range(3):
            client.async_stream_infer(MODEL_NAME, [_clip(seed=seed)])
        assert done.wait(30)
        client.stop_stream()
    assert answers == [(1, 8)] * 3


def test_statistics_count_the_relayed_calls(server):
    direct, relayed = _both(server)
    with direct, relayed:
        before = direct.get_inference_statistics(MODEL_NAME, as_json=True)["model_stats"][0]
        relayed.infer(MODEL_NAME, [_clip()])
        through = relayed.get_inference_statistics(MODEL_NAME, as_json=True)["model_stats"][0]
    assert int(through["inference_count"]) == int(before.get("inference_count", 0)) + 1
    assert set(through) == set(before) | {"inference_count", "execution_count"}


def test_the_admin_restriction_holds_through_the_relay(server):
    header = {f"triton-grpc-protocol-{ADMIN_HEADER_KEY}": ADMIN_TOKEN}
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        for call in (client.get_system_shared_memory_status, client.get_model_repository_index,
                     client.get_log_settings, client.get_trace_settings,
                     lambda: client.register_system_shared_memory("region", "/stanet_test", 64)):
            with pytest.raises(InferenceServerException, match="This protocol is restricted"):
                call()
        wrong = {f"triton-grpc-protocol-{ADMIN_HEADER_KEY}": "guess"}
        with pytest.raises(InferenceServerException, match="This protocol is restricted"):
            client.get_system_shared_memory_status(headers=wrong)
        assert client.get_system_shared_memory_status(headers=header, as_json=True) == {}
        assert MODEL_NAME in str(client.get_model_repository_index(headers=header, as_json=True))


def test_no_client_cancellation_reaches_triton_and_every_call_is_answered_once(server):
    """Deadlines around the response time and explicit cancels: the clients get DEADLINE_EXCEEDED or CANCELLED
    at once, Triton sees no cancellation (its CANCELED failures stay 0), and the relay's counters account for
    every call exactly once."""
    page = server.relay.options.metrics_url
    before = http_get(page)
    rng, codes = random.Random(0), []
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            client.infer(MODEL_NAME, [_clip()])
            samples.append(time.perf_counter() - start)
        latency = float(np.median(samples))
        for _ in range(60):
            codes.append(_outcome(lambda: client.infer(MODEL_NAME, [_clip()],
                                                       client_timeout=rng.uniform(0.1, 1.5) * latency))[0])
        for _ in range(20):
            answered = threading.Event()
            call = client.async_infer(MODEL_NAME, [_clip()], lambda result, error: (
                codes.append("OK" if error is None else error.status()), answered.set()), client_timeout=30)
            time.sleep(0.002)
            call.cancel()
            assert answered.wait(10)
    assert set(codes) <= {"OK", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED"}, codes
    assert "StatusCode.DEADLINE_EXCEEDED" in codes and "StatusCode.CANCELLED" in codes
    wait_for(lambda: server.relay.upstream_in_flight == 0, 30, what="every upstream call answered")
    after = http_get(page)

    def delta(name, **labels):
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    assert delta("nv_inference_request_failure", reason="CANCELED") == 0
    relayed = delta("stanet_relay_requests_total", method="ModelInfer")
    gone = delta("stanet_relay_client_gone_total", method="ModelInfer")
    forwarded = delta("stanet_relay_upstream_latency_seconds_count", method="ModelInfer")
    # Every call a relay thread read went upstream once, ran to completion there and was counted once, answered
    # or gone. A call that its client ended before a relay thread read it (gRPC then never calls the handler)
    # went nowhere: of the 85 (5 latency probes, 60 deadlines, 20 cancels), every OK one at least was forwarded.
    assert gone > 0 and relayed + gone == forwarded
    assert 5 + codes.count("OK") <= forwarded <= 85
    assert delta("nv_inference_request_success", model=MODEL_NAME) == forwarded


def test_the_metrics_page_serves_triton_and_relay_metrics(server):
    text = http_get(server.relay.options.metrics_url)
    assert metric_sum(text, "nv_inference_request_success", model=MODEL_NAME) > 0
    assert "# TYPE stanet_relay_upstream_latency_seconds histogram" in text
    assert "stanet_relay_upstream_in_flight" in text


ABUSER = """
import sys, time, grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc
channel = grpc.insecure_channel(sys.argv[1], options=[("grpc.keepalive_time_ms", 10),
    ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_time_between_pings_ms", 10)])
stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=5)
time.sleep(3)
"""


def test_keepalive_abuse_is_answered_by_the_policy_and_the_server_is_unharmed(server):
    """A client pinging every 10 ms (the policy allows one per 5 minutes without data, 2 strikes): the relay
    answers with GOAWAY too_many_pings, and keeps serving everyone else."""
    environment = {**os.environ, "GRPC_VERBOSITY": "debug", "GRPC_TRACE": "http_keepalive"}
    result = subprocess.run([sys.executable, "-c", ABUSER, server.options.grpc_url], cwd=PROJECT, env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "too_many_pings" in result.stderr, result.stderr[-2000:]
    with grpcclient.InferenceServerClient(server.options.grpc_url) as client:
        assert client.infer(MODEL_NAME, [_clip()]).as_numpy(OUTPUT_PROBABILITIES).shape == (1, 8)


def test_raw_health_check_is_relayed(server):
    channel = grpc.insecure_channel(server.options.grpc_url)
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    try:
        assert check(b"", timeout=10) == b"\x08\x01"  # HealthCheckResponse{status: SERVING}
    finally:
        channel.close()


def test_stop_accepting_refuses_new_calls_and_lets_the_accepted_ones_finish(served_repository):
    """What `stanet serve` does on SIGTERM before it stops Triton: new calls are refused with UNAVAILABLE (a
    clear retry signal), every call already accepted gets its answer from a Triton still serving, and
    wait_drained says when none is left."""
    options = ServerOptions(repository=served_repository, grpc_port=free_port(), metrics_port=free_port(),
                            exit_timeout_s=5)
    with RelayedTriton(options) as running:
        relay, stopped = running.relay, threading.Event()
        outcomes, lock = [], threading.Lock()  # (thread, stop_accepting had been called when it ended, status)

        def caller(index: int) -> None:
            with grpcclient.InferenceServerClient(running.options.grpc_url) as client:
                while True:
                    status, message = _outcome(lambda: client.infer(MODEL_NAME, [_clip(batch=4, seed=index)]))
                    with lock:
                        outcomes.append((index, stopped.is_set(), status, message))
                    if status != "OK":
                        return

        threads = [threading.Thread(target=caller, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(outcomes) >= 12 and relay.upstream_in_flight > 0, timeout_s=60, interval_s=0.001,
                 what="calls in flight through the relay")
        relay.stop_accepting()
        stopped.set()
        assert relay.wait_drained(30) and relay.upstream_in_flight == 0
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        for index in range(6):
            mine = [o for o in outcomes if o[0] == index]
            # Every call answered until the refusal, which names why: never a CANCELLED or NOT_FOUND.
            assert all(status == "OK" for _, _, status, _ in mine[:-1]), mine
            assert mine[-1][1:3] == (True, "StatusCode.UNAVAILABLE") and "shutting down" in mine[-1][3], mine[-1]
        # At least one call accepted before stop_accepting was answered after it (the drain did happen).
        assert any(after and status == "OK" for _, after, status, _ in outcomes), outcomes[-12:]
