"""Artifact integrity: `stanet export` writes a SHA256SUMS manifest into every version folder it creates, and
`stanet serve` checks it (and every ONNX file's external-data references) before Triton may load anything.
The manifest is in `sha256sum` format, so `sha256sum -c SHA256SUMS` checks it by hand too."""

from __future__ import annotations

import hashlib
from pathlib import Path

MANIFEST_FILE = "SHA256SUMS"


def manifest_text(files: dict[str, bytes]) -> str:
    """The manifest of a version folder's files (name -> content), sorted by name."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_version_folder(folder: str | Path) -> list[str]:
    """Problems with one version folder (empty if none): a missing or malformed manifest, a listed file that
    is missing or differs, a file present but not listed, a file name escaping the folder."""
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return [f"{folder}: no {MANIFEST_FILE} (export it again with `stanet export`, which writes the hashes)"]
    problems, listed = [], set()
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name in (".", ".."):
            problems.append(f"{manifest}:{number}: not '<sha256>  <file name>': {line!r}")
            continue
        listed.add(name)
        path = folder / name
        if not path.is_file() or path.is_symlink():
            problems.append(f"{path}: listed in {MANIFEST_FILE} but missing (or a link)")
        elif file_sha256(path) != digest:
            problems.append(f"{path}: SHA-256 differs from {MANIFEST_FILE} (changed after export)")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in listed | {MANIFEST_FILE, "__pycache__"})
    if extra:
        problems.append(f"{folder}: files not in {MANIFEST_FILE}: {extra}")
    return problems


def external_data_problems(onnx_path: str | Path) -> list[str]:
    """External-data references of an ONNX file that escape its folder (absolute, '..', or through a link)."""
    import onnx  # the serving side has onnx; only this check needs it

    onnx_path = Path(onnx_path)
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        return [f"{onnx_path}: not a readable ONNX model ({type(exc).__name__})"]
    folder = onnx_path.parent.resolve()
    problems = []
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        target = (folder / location).resolve()
        if Path(location).is_absolute() or ".." in Path(location).parts or folder not in target.parents:
            problems.append(f"{onnx_path}: tensor {tensor.name!r} stores its data at {location!r}, outside the "
                            f"model folder")
    return problems
