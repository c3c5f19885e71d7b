"""What a model repository holds, read before Triton starts: the embedded CPU Triton runs python-backend models
only, so an onnxruntime or TensorRT model is named with the export command that fits, instead of Triton's
own load failure deep in its log; and every version folder must match the SHA-256 manifest its export wrote,
with no ONNX data stored outside it (stanet.integrity)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from serving.errors import ServingError
from stanet.constants import CONFIG_FILE, PYTHON_MODEL_FILE
from stanet.integrity import external_data_problems, verify_version_folder

EMBEDDED_BACKENDS = ("python",)  # what the wheel's Triton carries
# platform / backend -> the name users know it by
OTHER_RUNTIMES = {"onnxruntime_onnx": "onnxruntime", "onnxruntime": "onnxruntime",
                  "tensorrt_plan": "TensorRT", "tensorrt": "TensorRT", "openvino": "OpenVINO"}
# The embedded Triton's export command for a model of another backend: the same runtime inside the python backend
# where one exists.
EMBEDDED_EQUIVALENT = {"OpenVINO": "--target python --runtime openvino"}


@dataclass(frozen=True)
class RepositoryModel:
    name: str
    backend: str
    versions: tuple[int, ...]


def read_model_config(path: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(path.read_text(), config)
    except (OSError, UnicodeDecodeError, text_format.ParseError) as exc:
        raise ServingError(f"{path} is not a readable Triton model config: {exc}") from None
    return config


def check_repository(repository: str | Path) -> list[RepositoryModel]:
    """The models of `repository` the embedded Triton can serve; ServingError naming every model it cannot
    (with the export command for this Triton) or an empty / missing repository."""
    repository = Path(repository)
    if not repository.is_dir():
        raise ServingError(f"model repository {repository} is not a directory; create one with `stanet export "
                           f"--checkpoint CKPT --repository {repository} --target python`")
    models, problems = [], []
    for model_dir in sorted(p for p in repository.iterdir() if p.is_dir() and not p.name.startswith(".")):
        config_path = model_dir / CONFIG_FILE
        if not config_path.is_file():
            problems.append(f"{model_dir.name}: no {CONFIG_FILE} (every model folder needs one; this server does "
                            f"not auto-complete configs)")
            continue
        config = read_model_config(config_path)
        backend = config.backend or config.platform
        versions = tuple(sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()))
        if backend in OTHER_RUNTIMES:
            problems.append(
                f"{model_dir.name}: a model for the {OTHER_RUNTIMES[backend]} backend ({CONFIG_FILE} says {backend!r}), which the "
                f"embedded CPU Triton cannot run (it has the python backend only). Export for it with "
                f"`stanet export --checkpoint CKPT --repository {repository} --name {model_dir.name} "
                f"{EMBEDDED_EQUIVALENT.get(OTHER_RUNTIMES[backend], '--target python')}`, or serve this repository with the NGC Triton container (deploy/, docker-compose.yml)")
        elif backend not in EMBEDDED_BACKENDS:
            problems.append(f"{model_dir.name}: backend {backend!r} is not available in the embedded Triton "
                            f"(it has {', '.join(EMBEDDED_BACKENDS)})")
        elif not versions:
            problems.append(f"{model_dir.name}: no version folder (expected {model_dir.name}/1/model.py)")
        else:
            missing = [v for v in versions if not (model_dir / str(v) / PYTHON_MODEL_FILE).is_file()]
            if missing:
                problems.append(f"{model_dir.name}: version(s) {missing} lack model.py")
            for version in versions:
                folder = model_dir / str(version)
                problems += verify_version_folder(folder)
                for onnx_file in sorted(folder.glob("*.onnx")):
                    problems += external_data_problems(onnx_file)
            models.append(RepositoryModel(model_dir.name, backend, versions))
    if problems:
        raise ServingError(f"model repository {repository} cannot be served by the embedded Triton:\n  "
                           + "\n  ".join(problems))
    if not models:
        raise ServingError(f"model repository {repository} holds no model; create one with `stanet export "
                           f"--checkpoint CKPT --repository {repository} --target python`")
    return models
