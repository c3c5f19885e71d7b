"""Where the embedded Triton lives: the `tritonserver` binary, its python backend and the Python stub that the
PyPI wheel nvidia-pytriton==0.7.0 carries, inside their own virtual environment (`.venv-triton`, made by
`make triton-env`; requirements-triton.txt says why it is separate).

The binary needs on LD_LIBRARY_PATH the wheel's bundled libraries and the folder holding libpython3.11.so;
the python backend needs the 3.11 stub copied beside it, in a backend folder passed with
--backend-directory; the stub must find the environment's `python` first on PATH so it imports that
environment's numpy and onnxruntime.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from serving.errors import ServingError

TRITON_ENV_VARIABLE = "STANET_TRITON_ENV"  # overrides the default environment folder
DEFAULT_TRITON_ENV = Path(__file__).resolve().parents[1] / ".venv-triton"
PYTHON_VERSION = "3.11"  # the stub's Python must be the environment's Python
INSTALL_HINT = ("run `make triton-env` in the stanet checkout (or create a Python 3.11 virtual environment and "
                "`pip install --no-deps -r requirements-triton.txt` into it) and point --triton-env or "
                f"${TRITON_ENV_VARIABLE} at it")


@dataclass(frozen=True)
class TritonInstall:
    env: Path  # the virtual environment
    binary: Path  # tritonserver
    libraries: Path  # the wheel's bundled shared libraries
    python_libdir: Path  # holds libpython3.11.so
    backend_source: Path  # backends/python: libtriton_python.so + triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub for Python 3.11

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The process environment for tritonserver: bundled libraries and libpython found, the
        environment's bin/ first on PATH (so the stub imports that environment's packages)."""
        env = dict(os.environ if base is None else base)
        library_path = [str(self.libraries), str(self.python_libdir)]
        if env.get("LD_LIBRARY_PATH"):
            library_path.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(library_path)
        env["PATH"] = os.pathsep.join([str(self.env / "bin"), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(self.env)
        env.pop("PYTHONPATH", None)  # the stub must not import the client's numpy 2
        env.pop("PYTHONHOME", None)
        return env


def default_env() -> Path:
    return Path(os.environ.get(TRITON_ENV_VARIABLE) or DEFAULT_TRITON_ENV)


def _site_packages(env: Path) -> Path:
    return env / "lib" / f"python{PYTHON_VERSION}" / "site-packages"


def _python_libdir(python: Path) -> Path:
    """The folder holding libpython3.11.so for the environment's interpreter."""
    query = ("import sysconfig, sys; "
             "print(sysconfig.get_config_var('LIBDIR')); print('%d.%d' % sys.version_info[:2]); "
             "import numpy; print(numpy.__version__)")
    try:
        out = subprocess.run([str(python), "-c", query], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise ServingError(f"the Triton environment's Python {python} does not run or lacks numpy: "
                           f"{detail.strip().splitlines()[-1] if detail.strip() else exc}; {INSTALL_HINT}") from None
    libdir, version, numpy_version = out.stdout.split()
    if version != PYTHON_VERSION:
        raise ServingError(f"the Triton environment's Python is {version}, expected {PYTHON_VERSION} (the stub "
                           f"shipped for this Triton); {INSTALL_HINT}")
    if int(numpy_version.split(".")[0]) >= 2:
        raise ServingError(f"the Triton environment has numpy {numpy_version}, expected numpy<2: with numpy 2 this "
                           f"Triton's python backend returns empty outputs; {INSTALL_HINT}")
    for candidate in (Path(libdir), Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib")):
        if any(candidate.glob(f"libpython{PYTHON_VERSION}.so*")):
            return candidate
    raise ServingError(f"libpython{PYTHON_VERSION}.so was not found (looked in {libdir}); the Python backend stub "
                       f"links against it: install the shared library (Debian: apt-get install "
                       f"libpython{PYTHON_VERSION})")


def find_triton(env: str | Path | None = None) -> TritonInstall:
    """Locate the embedded Triton in `env` (default: $STANET_TRITON_ENV or .venv-triton); raise ServingError
    naming what is missing and how to install it."""
    env = Path(env) if env is not None else default_env()
    python = env / "bin" / "python"
    if not python.exists():
        raise ServingError(f"no Triton environment at {env} (expected a virtual environment with "
                           f"nvidia-pytriton installed); {INSTALL_HINT}")
    root = _site_packages(env) / "pytriton" / "tritonserver"
    install = TritonInstall(
        env=env.absolute(),
        binary=root / "bin" / "tritonserver",
        libraries=_site_packages(env) / "nvidia_pytriton.libs",
        python_libdir=_python_libdir(python),
        backend_source=root / "backends" / "python",
        stub=root / "python_backend_stubs" / PYTHON_VERSION / "triton_python_backend_stub",
    )
    for path in (install.binary, install.libraries, install.backend_source, install.stub):
        if not path.exists():
            raise ServingError(f"the Triton environment {env} lacks {path} (is nvidia-pytriton==0.7.0 installed "
                               f"there?); {INSTALL_HINT}")
    return install


def prepare_backends(install: TritonInstall, destination: Path) -> Path:
    """A backend folder for --backend-directory: a copy of the wheel's python backend with the 3.11 stub
    beside it (the wheel keeps stubs for several Pythons apart). Returns `destination`."""
    python_backend = destination / "python"
    shutil.copytree(install.backend_source, python_backend, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(install.stub, python_backend / install.stub.name)
    return destination
