"""Row O8 of docs/reliability.md: the python backend's shared memory is sized so a full batch of the largest
model fits without growth (serving/python_backend_shm.py, `stanet serve --python-shm-bytes`); the growth that
the backend's 1 MiB default needs for the same batch is measured."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from google.protobuf import text_format

from helpers import free_port
from serving.python_backend_shm import MIB, batch_bytes, default_shm_bytes, regions
from serving.repository_check import read_model_config
from serving.server import ServerOptions, TritonServer
from stanet.constants import CONFIG_FILE, INPUT_CLIP, MODEL_NAME, OUTPUT_PROBABILITIES
from serve_helpers import CLIP

pytestmark = pytest.mark.slow
MAX_BATCH = 32  # 32 clips of 16 x 32 x 32 x 3: more than the backend's default 1 MiB


@pytest.fixture(scope="module")
def repository(served_repository, tmp_path_factory):
    repo = tmp_path_factory.mktemp("shm") / "models"
    shutil.copytree(served_repository, repo)
    config = read_model_config(repo / MODEL_NAME / CONFIG_FILE)
    config.max_batch_size = MAX_BATCH
    config.dynamic_batching.default_queue_policy.max_queue_size = 4 * MAX_BATCH
    (repo / MODEL_NAME / CONFIG_FILE).write_text(text_format.MessageToString(config))
    return repo


def _region_sizes_after_a_full_batch(repository, shm_bytes) -> tuple[int, list[int]]:
    options = ServerOptions(repository=repository, grpc_port=free_port(), metrics_port=free_port(), exit_timeout_s=5,
                            python_shm_bytes=shm_bytes)
    with TritonServer(options) as server:
        clip = np.zeros((MAX_BATCH, *CLIP), np.uint8)
        tensor = grpcclient.InferInput(INPUT_CLIP, list(clip.shape), "UINT8")
        tensor.set_data_from_numpy(clip)
        with grpcclient.InferenceServerClient(options.grpc_url) as client:
            for _ in range(3):  # both instances get one
                answer = client.infer(MODEL_NAME, [tensor], client_timeout=60)
        assert answer.as_numpy(OUTPUT_PROBABILITIES).shape == (MAX_BATCH, 8)
        return server.shm_bytes, sorted(region.stat().st_size for region in regions(server.shm_prefix))


def test_a_full_batch_fits_the_default_region_and_grows_the_backends_1_mib(repository, capsys):
    assert batch_bytes(repository) > MIB  # the batch does not fit the backend's own default
    size, sized = _region_sizes_after_a_full_batch(repository, None)
    assert size == default_shm_bytes(repository) and sized == [size, size]  # no growth
    _, small = _region_sizes_after_a_full_batch(repository, MIB)
    assert max(small) > MIB  # the 1 MiB region had to grow
    with capsys.disabled():
        print(f"\npython-backend regions after a batch of {MAX_BATCH} ({batch_bytes(repository) / MIB:.2f} MiB of "
              f"tensors): sized {[s / MIB for s in sized]} MiB, 1 MiB default grown to {[s / MIB for s in small]} MiB")
