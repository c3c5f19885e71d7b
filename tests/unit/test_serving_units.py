"""The serving side's plain functions, without a server: classification parsing, repository checks, the
locked-down Triton command line, the restart policy, locating the Triton environment, rendering, and the
no-torch rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from helpers import PROJECT
from serving.errors import ServingError
from serving.infer_cli import _overlay_dirs
from serving.render import render_frames, write_overlays
from serving.repository_check import RepositoryModel, check_repository
from serving.results import ClipPrediction, LabelScore, VideoPrediction, parse_classification
from serving.server import MAX_RESTARTS, Outcome, ServerOptions, Supervisor, triton_command
from serving.triton_env import TritonInstall, find_triton
from stanet.constants import CONFIG_FILE, MODEL_NAME
from stanet.integrity import MANIFEST_FILE, manifest_text



@pytest.mark.parametrize("entry, expected", [
    (b"0.93:2:circle", LabelScore("circle", 2, 0.93)),
    ("0.5:1:a:b", LabelScore("a:b", 1, 0.5)),  # labels may contain ':'
    (b"1e-05:7", LabelScore("7", 7, 1e-5)),  # no labels file: the index stands in
])
def test_classification_entries_parse_to_score_index_label(entry, expected):
    assert parse_classification(entry) == expected


@pytest.mark.parametrize("entry", [b"circle", b"0.5", b"x:1:circle", b"0.5:one:circle"])
def test_a_malformed_classification_entry_is_named(entry):
    with pytest.raises(ValueError, match=r"is not '<score>:<index>\[:<label>\]'"):
        parse_classification(entry)


def _model(repo: Path, name: str, header: str, versions=(1,), files=("model.py",)) -> None:
    folder = repo / name
    folder.mkdir(parents=True)
    (folder / CONFIG_FILE).write_text(f'name: "{name}"\n{header}\nmax_batch_size: 4\n')
    for version in versions:
        (folder / str(version)).mkdir()
        for file in files:
            (folder / str(version) / file).write_text("")
        manifest = manifest_text({file: b"" for file in files})
        (folder / str(version) / MANIFEST_FILE).write_text(manifest)


def test_repository_check_accepts_python_models(tmp_path):
    _model(tmp_path, "stanet", 'backend: "python"', versions=(1, 2))
    (tmp_path / ".stanet-export-tmp").mkdir()  # an export in progress is not a model
    (models,) = check_repository(tmp_path)
    assert (models.name, models.backend, models.versions) == ("stanet", "python", (1, 2))


@pytest.mark.parametrize("header, runtime", [('platform: "onnxruntime_onnx"', "onnxruntime"),
                                             ('backend: "onnxruntime"', "onnxruntime"),
                                             ('platform: "tensorrt_plan"', "TensorRT")])
def test_repository_check_names_models_this_triton_cannot_run_and_how_to_export(tmp_path, header, runtime):
    _model(tmp_path, "stanet_gpu", header, files=("model.onnx",))
    with pytest.raises(ServingError) as caught:
        check_repository(tmp_path)
    message = str(caught.value)
    assert f"stanet_gpu: a model for the {runtime} backend" in message
    assert f"--repository {tmp_path} --name stanet_gpu --target python" in message


def test_repository_check_names_every_problem(tmp_path):
    with pytest.raises(ServingError, match="is not a directory"):
        check_repository(tmp_path / "absent")
    with pytest.raises(ServingError, match="holds no model"):
        check_repository(tmp_path)
    (tmp_path / "no_config").mkdir()
    _model(tmp_path, "no_version", 'backend: "python"', versions=())
    _model(tmp_path, "no_model_py", 'backend: "python"', files=("other.py",))
    with pytest.raises(ServingError) as caught:
        check_repository(tmp_path)
    message = str(caught.value)
    assert "no_config: no config.pbtxt" in message
    assert "no_version: no version folder" in message
    assert "no_model_py: version(s) [1] lack model.py" in message
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / CONFIG_FILE).write_text("name: {{{")
    with pytest.raises(ServingError, match="broken/config.pbtxt is not a readable Triton model config"):
        check_repository(tmp_path)


def test_repository_check_refuses_changed_unlisted_or_escaping_files(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    _model(tmp_path, "stanet", 'backend: "python"', files=("model.py", "model.onnx"))
    version = tmp_path / "stanet" / "1"
    (version / "model.py").write_text("import os  # changed after export\n")
    (version / "extra.so").write_bytes(b"\0")
    with pytest.raises(ServingError) as caught:
        check_repository(tmp_path)
    message = str(caught.value)
    assert "model.py: SHA-256 differs from SHA256SUMS" in message and "files not in SHA256SUMS: ['extra.so']" in message
    # an ONNX file whose weights live outside the model folder
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("float_data")
    weight.external_data.add(key="location", value="../../../../etc/passwd")
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [weight])
    data = helper.make_model(graph).SerializeToString()
    (version / "model.onnx").write_bytes(data)
    (version / "model.py").write_text("")
    (version / "extra.so").unlink()
    (version / MANIFEST_FILE).write_text(manifest_text({"model.py": b"", "model.onnx": data}))
    with pytest.raises(ServingError, match=r"tensor 'w' stores its data at '../../../../etc/passwd', outside"):
        check_repository(tmp_path)
    assert onnx.load_from_string(data).graph.initializer[0].name == "w"


def _install(tmp_path: Path) -> TritonInstall:
    return TritonInstall(env=tmp_path / "env", binary=tmp_path / "tritonserver", libraries=tmp_path / "libs",
                         python_libdir=tmp_path / "pylib", backend_source=tmp_path / "python", stub=tmp_path / "stub")


def test_triton_runs_locked_down_on_loopback(tmp_path):
    options = ServerOptions(repository=tmp_path / "repo", grpc_port=9001, metrics_port=9002)
    command = triton_command(_install(tmp_path), options, tmp_path / "backends", "secret-token",
                             "triton_python_backend_shm_region_stanet_s1_p2_0_", 3 << 20)
    flags = set(command[1:])
    for flag in ("--allow-http=false", "--grpc-address=127.0.0.1", "--grpc-port=9001", "--metrics-address=127.0.0.1",
                 "--metrics-port=9002", "--model-control-mode=none", "--strict-readiness=true", "--exit-on-error=true",
                 "--disable-auto-complete-config", "--allow-gpu-metrics=false", "--metrics-config=summary_latencies=true",
                 f"--model-repository={(tmp_path / 'repo').absolute()}", f"--backend-directory={tmp_path / 'backends'}",
                 "--backend-config=python,shm-region-prefix-name=triton_python_backend_shm_region_stanet_s1_p2_0_",
                 "--backend-config=python,shm-default-byte-size=3145728"):
        assert flag in flags, flag
    (restricted,) = [f for f in command if f.startswith("--grpc-restricted-protocol=")]
    groups, header = restricted.split("=", 1)[1].split(":")
    assert {"shared-memory", "model-repository"} <= set(groups.split(","))
    assert header == "stanet-admin=secret-token"
    assert not any(f.startswith("--http-address") for f in command)


class _FakeTriton:
    """Stands in for TritonServer under the Supervisor: watch() returns `events` in turn, start() raises
    `start_error` once it is given."""

    def __init__(self, events, start_error: ServingError | None = None):
        self.options = ServerOptions(repository=Path("repo"), exit_timeout_s=7)
        self.events, self.start_error = list(events), start_error
        self.models = [RepositoryModel(MODEL_NAME, "python", (1,))]
        self.process = SimpleNamespace(returncode=-11, wait=lambda: 0)
        self.pid, self.log_path, self.starts, self.terminated = 4321, Path("triton.log"), 0, 0

    def start(self):
        if self.start_error is not None:
            raise self.start_error
        self.starts += 1

    def wait_until_ready(self, timeout_s):
        pass

    def watch(self, stop):
        return self.events.pop(0)

    def stop(self, keep_workdir=False):
        pass

    def terminate(self):
        self.terminated += 1

    def errors(self):
        return []

    def log_tail(self):
        return "Signal (11) received"


def _supervise(server: _FakeTriton) -> tuple[Outcome, list[tuple[str, bool]]]:
    said = []
    outcome = Supervisor(server, lambda message, problem=False: said.append((message, problem))).run()
    return outcome, said


def test_the_supervisor_restarts_a_crashed_or_unhealthy_triton_then_stops_on_request():
    server = _FakeTriton(["exited", "unhealthy", "stopped"])
    outcome, said = _supervise(server)
    assert outcome == Outcome.STOPPED and server.starts == 3
    assert ("tritonserver exited on its own with code -11; the end of its log:\nSignal (11) received", True) in said
    assert ("Triton exited; restarting it (1 of at most 5 in 10 minutes)", False) in said
    assert ("Triton is not ready (a python-backend stub process died); restarting it (2 of at most 5 in 10 "
            "minutes)", False) in said
    assert said[-2:] == [("ready again (pid 4321, log triton.log)", False), ("stopped (Triton exit code 0)", False)]


def test_the_supervisor_gives_up_after_max_restarts_in_the_window():
    server = _FakeTriton(["unhealthy"] * (MAX_RESTARTS + 1))
    outcome, said = _supervise(server)
    assert outcome == Outcome.FAILED and server.starts == 1 + MAX_RESTARTS
    message, problem = said[-1]
    assert problem and message.startswith("error: Triton failed again (a python-backend stub process died)")
    assert message.endswith(f"restarted {MAX_RESTARTS} times in 10 minutes: giving up (log triton.log)")


def test_the_supervisor_reports_bad_input_and_a_stop_request_once():
    outcome, said = _supervise(_FakeTriton([], start_error=ServingError("no model")))
    assert outcome == Outcome.BAD_INPUT and said == [("error: no model", True)]
    server, said = _FakeTriton([]), []
    supervisor = Supervisor(server, lambda message, problem=False: said.append(message))
    supervisor.request_stop("SIGTERM")
    supervisor.request_stop("SIGINT")
    assert said == ["SIGTERM: finishing in-flight requests (at most 7 s)..."] and server.terminated == 2


def test_triton_environment_finds_its_libraries_and_hides_the_clients_packages(tmp_path):
    install = _install(tmp_path)
    env = install.environment({"PATH": "/usr/bin", "PYTHONPATH": "/somewhere", "LD_LIBRARY_PATH": "/opt/lib"})
    assert env["LD_LIBRARY_PATH"].split(":") == [str(tmp_path / "libs"), str(tmp_path / "pylib"), "/opt/lib"]
    assert env["PATH"].split(":")[0] == str(tmp_path / "env" / "bin")
    assert "PYTHONPATH" not in env


def test_a_missing_or_wrong_triton_environment_says_how_to_install_it(tmp_path):
    with pytest.raises(ServingError, match=r"no Triton environment at .*make triton-env"):
        find_triton(tmp_path / "absent")
    # The test environment itself has numpy 2: the python backend would answer with empty tensors.
    with pytest.raises(ServingError, match=r"numpy 2\.\d+\.\d+, expected numpy<2"):
        find_triton(Path(sys.prefix))


def test_the_project_triton_environment_is_complete():
    install = find_triton()  # what `make test` installs; the end-to-end tests need it
    assert install.binary.is_file() and install.stub.is_file()
    assert any(install.python_libdir.glob("libpython3.11.so*"))


def _answer(frame_hw=(24, 40), t_count=4) -> VideoPrediction:
    spatial = np.zeros((t_count, 3, 5), np.float32)
    spatial[:, 2, 4] = 1.0  # the bottom-right cell
    temporal = np.array([0.1, 0.6, 0.2, 0.1], np.float32)
    prediction = ClipPrediction(top_k=(LabelScore("circle", 4, 0.9), LabelScore("hop", 5, 0.05)),
                                spatial_attention=spatial, temporal_attention=temporal)
    frames = np.full((t_count, *frame_hw, 3), 128, np.uint8)
    return VideoPrediction(video="v.mp4", prediction=prediction, frame_indices=np.array([0, 3, 6, 9]),
                           num_frames=10, frame_hw=frame_hw, frames=frames)


def test_focus_is_the_strongest_cell_of_the_most_attended_frame():
    answer = _answer()
    t, x, y = answer.prediction.focus(answer.frame_hw)
    assert (t, x, y) == (1, 36.0, 20.0)  # cell (row 2, col 4) of a 3x5 grid over 24x40 pixels
    record = answer.to_dict()
    assert record["label"] == "circle" and record["frame_indices"] == [0, 3, 6, 9]
    assert np.array(record["spatial_attention"]).shape == (4, 3, 5)


def test_overlays_show_the_mask_on_the_frame_and_a_strip_per_frame(tmp_path):
    answer = _answer()
    images = render_frames(answer)
    assert len(images) == 4 and len({image.shape for image in images}) == 1
    height, width, _ = images[0].shape
    assert min(height, width) >= 256
    # the heatmap is hot (red) bottom-right and cold (blue) top-left
    top = 18  # header rows; the frame is shown at 256 x 427
    hot, cold = images[0][top + 256 - 10, width - 10], images[0][top + 10, 10]
    assert hot[0] > hot[2] and cold[2] > cold[0]
    paths = write_overlays(answer, tmp_path / "v")
    assert sorted(p.name for p in (tmp_path / "v").glob("frame_*.png")) == [f"frame_{t:02d}.png" for t in range(4)]
    with Image.open(paths["gif"]) as gif:
        assert gif.n_frames == 4
    with pytest.raises(ValueError, match="an answer with its frames is needed"):
        render_frames(VideoPrediction(video="x.mp4", error="bad"))


def test_overlay_folders_are_named_by_video_and_never_collide(tmp_path):
    dirs = _overlay_dirs([Path("a/clip.mp4"), Path("b/clip.mp4"), Path("c/other.avi")], tmp_path)
    assert [d.name for d in dirs] == ["clip", "clip-2", "other"]


def test_the_serving_side_never_imports_torch():
    code = ("import sys; import serving.client, serving.infer_cli, serving.serve_cli, serving.server, "
            "serving.render, serving.triton_env, serving.repository_check, serving.procfs, serving.tools.soak, "
            "serving.tools.cancel_race, serving.timeline, serving.timeline_cli, serving.timeline_render, "
            "stanet.timeline.pipeline, stanet.timeline.map; "
            "from serving.infer_cli import parse_args; parse_args(['x.mp4']); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'training', 'export')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=True, timeout=120)


@pytest.mark.parametrize("module, arguments, message", [
    ("serving.tools.cancel_race", ["--url", "127.0.0.1:1", "--workers", "0"],
     "--workers 0 / --seconds 180: expected at least 1 worker and a positive duration"),
    ("serving.tools.soak", ["--repository", "models", "--loads", "valid,bogus"],
     "--loads 'valid,bogus': unknown bogus; expected a comma-separated subset of "
     "valid,invalid,deadline,cancel,killed"),
])
def test_reliability_tools_name_a_bad_argument(module, arguments, message):
    result = subprocess.run([sys.executable, "-m", module, *arguments], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
