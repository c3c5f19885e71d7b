"""`stanet serve`'s own guards: TLS and mutual TLS on the port clients reach, and a changed artifact that
stops serve before Triton starts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import free_port
from serving.client import StanetClient
from serving.errors import ServingError
from stanet.constants import MODEL_NAME, ONNX_FILE
from serve_helpers import CLIP, start_serve, stop_serve

pytestmark = pytest.mark.slow


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=stanet test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=stanet {name}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{name}.crt", *ext, cwd=folder)
    return folder


def _tls_answer(url: str, **tls) -> str:
    try:
        with StanetClient(url, timeout_s=5, retries=0, **tls) as client:
            client.infer_clips(np.zeros((1, *CLIP), np.uint8), top_k=1)
        return "OK"
    except ServingError as exc:
        return str(exc)


def test_tls_and_mutual_tls(served_repository, certificates):
    """Row S6 of docs/reliability.md."""
    c = certificates
    server_tls = ["--tls-cert", str(c / "server.crt"), "--tls-key", str(c / "server.key"), "--tls-ca", str(c / "ca.crt")]
    process, url, lines, output = start_serve(served_repository, *server_tls)
    try:
        assert "ready." in lines[-1] and "(TLS;" in lines[-1], lines
        assert _tls_answer(url, ssl=True, root_certificates=str(c / "ca.crt")) == "OK"
        assert "OK" != _tls_answer(url)  # plaintext client
    finally:
        stop_serve(process, output)
    mutual = [*server_tls, "--tls-client-ca", str(c / "ca.crt"), "--tls-probe-cert", str(c / "client.crt"),
              "--tls-probe-key", str(c / "client.key")]
    process, url, lines, output = start_serve(served_repository, *mutual)
    try:
        assert "ready." in lines[-1] and "(mutual TLS;" in lines[-1], lines
        client_cert = dict(private_key=str(c / "client.key"), certificate_chain=str(c / "client.crt"))
        assert _tls_answer(url, ssl=True, root_certificates=str(c / "ca.crt"), **client_cert) == "OK"
        assert "OK" != _tls_answer(url, ssl=True, root_certificates=str(c / "ca.crt"))  # no client certificate
        assert "OK" != _tls_answer(url)
    finally:
        rest = stop_serve(process, output)
    assert "stopped (Triton exit code 0)" in rest


def test_a_changed_artifact_stops_serve_before_triton_starts(served_repository, tmp_path, capsys):
    """Row S7 of docs/reliability.md."""
    from serving.serve_cli import main as serve_main

    repo = tmp_path / "models"
    shutil.copytree(served_repository, repo)
    with open(repo / MODEL_NAME / "1" / ONNX_FILE, "ab") as handle:
        handle.write(b"\0")
    assert serve_main(["--repository", str(repo), "--grpc-port", str(free_port()),
                       "--metrics-port", str(free_port())]) == 2
    assert "model.onnx: SHA-256 differs from SHA256SUMS" in capsys.readouterr().err
