"""The relay's and the python backend's pieces that need no server: which methods are relayed, which metadata
is forwarded, the shared-memory size of a full batch, and ending a Triton's leftovers by its region prefix."""

from __future__ import annotations

import subprocess
import sys
import time

from serving.python_backend_shm import (MIB, REGION_PREFIX, SHM_DIR, batch_bytes, default_shm_bytes, end_leftovers,
                                        region_prefix, regions, session_prefix, stubs)
from serving.relay import _forwarded, service_methods
from stanet.constants import CONFIG_FILE

CONFIG = """name: "m"
backend: "python"
max_batch_size: 8
input [ { name: "clip" data_type: TYPE_UINT8 dims: [ 16, 64, 64, 3 ] } ]
output [ { name: "p" data_type: TYPE_FP32 dims: [ 10 ] }, { name: "s" data_type: TYPE_FP32 dims: [ 16, 8, 8 ] } ]
"""


def test_every_inference_method_is_relayed_and_only_the_stream_streams():
    methods = service_methods()
    assert len(methods) == 20 and [name for name, streams in methods.items() if streams] == ["ModelStreamInfer"]


def test_admin_headers_are_forwarded_and_grpc_own_metadata_is_not():
    metadata = (("triton-grpc-protocol-stanet-admin", "t"), ("grpc-timeout", "5S"), ("user-agent", "x"),
                (":authority", "h"), ("trace-bin", b"\x00"))
    assert _forwarded(metadata) == (("triton-grpc-protocol-stanet-admin", "t"), ("trace-bin", b"\x00"))


def test_the_default_region_holds_a_full_batch_twice_plus_a_mib(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / CONFIG_FILE).write_text(CONFIG)
    clip = 16 * 64 * 64 * 3 + (10 + 16 * 8 * 8) * 4  # bytes per clip, inputs and outputs
    assert batch_bytes(tmp_path) == 8 * clip
    assert default_shm_bytes(tmp_path) == -(-(2 * 8 * clip + MIB) // MIB) * MIB == 5 * MIB


def test_leftovers_are_found_by_their_region_prefix_and_ended():
    prefix = region_prefix()
    assert prefix.startswith(session_prefix()) and prefix.startswith(REGION_PREFIX)
    # Stands in for a stub reparented to init: the stub's name and its region on the command line.
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "triton_python_backend_stub",
                              f"{prefix}0000-test"])
    region = SHM_DIR / f"{prefix}0000-test"
    region.write_bytes(b"\0" * 64)
    try:
        deadline = time.monotonic() + 10
        while not stubs(prefix) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stubs(prefix) == [stray.pid] and regions(prefix) == [region]
        assert end_leftovers(prefix) == (1, 1)
        assert stray.wait(timeout=10) != 0 and stubs(prefix) == [] and not region.exists()
    finally:
        stray.kill()
        region.unlink(missing_ok=True)
