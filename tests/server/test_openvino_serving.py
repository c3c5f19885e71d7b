"""Both runtimes of the python backend in the embedded Triton: the tiny trained run exported with onnxruntime, with
OpenVINO fp32 and (on a CPU with bf16) OpenVINO bf16, served side by side, each answering held-out clips with
PyTorch's labels and maps within its precision's tolerance; and a version folder whose OpenVINO files are
missing, changed or another model's is refused with the file named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from export import quantize
from export.onnx_graph import serving_module
from export.openvino_ir import bf16_support
from export.parity import PARITY_ATOL, pearson, run_torch
from helpers import free_port
from serve_helpers import sign
from serving.errors import ServingError
from serving.repository_check import check_repository
from serving.server import ServerOptions, TritonServer
from stanet.checkpoint import load_checkpoint
from stanet.constants import (INPUT_CLIP, MODEL_NAME, OPENVINO_BIN_FILE, OPENVINO_XML_FILE, OUTPUT_PROBABILITIES,
                              OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)
from stanet.dataset_format import load_dataset
from stanet.sampling import sample_clip
from stanet.video import read_video

pytestmark = pytest.mark.slow
OUTPUTS = (OUTPUT_PROBABILITIES, OUTPUT_SPATIAL_ATTENTION, OUTPUT_TEMPORAL_ATTENTION)
CLIPS = 16
MODELS = {"stanet_ort": ("--runtime", "onnxruntime"), "stanet_ov": ("--runtime", "openvino", "--precision", "fp32")}
if bf16_support().available:
    MODELS["stanet_ov_bf16"] = ("--runtime", "openvino", "--precision", "bf16")


@pytest.fixture(scope="module")
def runtimes_repository(trained_run, tiny_dataset, tmp_path_factory) -> Path:
    from export.cli import main as export_main

    repository = tmp_path_factory.mktemp("runtimes") / "models"
    for name, extra in MODELS.items():
        assert export_main(["--checkpoint", str(trained_run / "best.pt"), "--repository", str(repository),
                            "--name", name, "--target", "python", "--max-batch-size", "4", "--instances", "1",
                            "--data", str(tiny_dataset), *extra]) == 0
    return repository


@pytest.fixture(scope="module")
def held_out_clips(runtimes_repository, trained_run, tiny_dataset):
    """(clips, PyTorch's outputs on them) for the first CLIPS test videos, decoded as the client does."""
    dataset = load_dataset(tiny_dataset)
    videos = [tiny_dataset / c.video for c in dataset.split("test")[:CLIPS]]
    checkpoint = load_checkpoint(trained_run / "best.pt")
    config = checkpoint.model_config
    clips = np.stack([sample_clip(read_video(v).frames, config.clip_length, config.height, config.width)[0]
                      for v in videos])  # as the client does
    module, _ = serving_module(checkpoint.build_model().eval())
    return clips, run_torch(module, clips, 4, module.output_names)


def _served(url: str, model: str, clips: np.ndarray) -> dict[str, np.ndarray]:
    with grpcclient.InferenceServerClient(url) as client:
        chunks = []
        for start in range(0, len(clips), 4):
            clip = grpcclient.InferInput(INPUT_CLIP, list(clips[start:start + 4].shape), "UINT8")
            clip.set_data_from_numpy(clips[start:start + 4])
            result = client.infer(model, [clip], outputs=[grpcclient.InferRequestedOutput(n) for n in OUTPUTS],
                                  client_timeout=60)
            chunks.append({name: result.as_numpy(name) for name in OUTPUTS})
    return {name: np.concatenate([c[name] for c in chunks]) for name in OUTPUTS}


def test_both_runtimes_answer_as_pytorch_does(runtimes_repository, held_out_clips):
    clips, expected = held_out_clips
    options = ServerOptions(repository=runtimes_repository, grpc_port=free_port(), metrics_port=free_port(),
                            exit_timeout_s=10)
    with TritonServer(options) as server:
        answers = {name: _served(server.options.grpc_url, name, clips) for name in MODELS}
    for name, got in answers.items():
        labels = got[OUTPUT_PROBABILITIES].argmax(-1)
        assert (labels == expected[OUTPUT_PROBABILITIES].argmax(-1)).all(), name
        if name.endswith("bf16"):  # the drift gate's bounds (export/quantize.py)
            drift = np.abs(got[OUTPUT_TEMPORAL_ATTENTION] - expected[OUTPUT_TEMPORAL_ATTENTION]).max()
            assert drift <= quantize.MAX_TEMPORAL_DRIFT, (name, drift)
            correlation = pearson(got[OUTPUT_SPATIAL_ATTENTION], expected[OUTPUT_SPATIAL_ATTENTION])
            assert correlation >= quantize.MIN_SPATIAL_CORRELATION, (name, correlation)
        else:  # fp32: the parity gate's tolerance
            for output in OUTPUTS:
                np.testing.assert_allclose(got[output], expected[output], rtol=0, atol=PARITY_ATOL,
                                           err_msg=f"{name} {output}")


def _copy(runtimes_repository: Path, tmp_path: Path, name: str) -> Path:
    repository = tmp_path / name
    repository.mkdir()
    shutil.copytree(runtimes_repository / "stanet_ov", repository / "stanet_ov")
    return repository


def test_missing_or_changed_openvino_files_are_refused_naming_the_file(runtimes_repository, tmp_path):
    missing = _copy(runtimes_repository, tmp_path, "missing")
    (missing / "stanet_ov" / "1" / OPENVINO_BIN_FILE).unlink()
    with pytest.raises(ServingError, match=r"model\.bin: listed in SHA256SUMS but missing"):
        check_repository(missing)
    changed = _copy(runtimes_repository, tmp_path, "changed")
    xml = changed / "stanet_ov" / "1" / OPENVINO_XML_FILE
    xml.write_text(xml.read_text().replace('element_type="f32"', 'element_type="f16"', 1))
    with pytest.raises(ServingError, match=r"model\.xml: SHA-256 differs from SHA256SUMS"):
        check_repository(changed)


def test_the_ir_of_another_model_stops_startup_naming_it(runtimes_repository, tiny_checkpoint, tmp_path, capsys):
    from export.cli import main as export_main
    from serving.serve_cli import main as serve_main

    other = tmp_path / "other"
    assert export_main(["--checkpoint", str(tiny_checkpoint), "--repository", str(other), "--target", "python",
                        "--runtime", "openvino"]) == 0
    capsys.readouterr()
    repository = _copy(runtimes_repository, tmp_path, "foreign")
    version = repository / "stanet_ov" / "1"
    for name in (OPENVINO_XML_FILE, OPENVINO_BIN_FILE):
        shutil.copy(other / MODEL_NAME / "1" / name, version / name)
    sign(version)  # consistent hashes: only the model itself can tell
    code = serve_main(["--repository", str(repository), "--grpc-port", str(free_port()), "--metrics-port",
                       str(free_port()), "--startup-timeout", "60"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "config.pbtxt declares input 'clip' [8, 32, 32, 3] but model.xml takes 'clip' [4, 32, 32, 3]" in err
