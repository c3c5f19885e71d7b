"""The python backend's shared memory and stub processes, per Triton: sized so a full batch fits, and nothing
left behind when that Triton stops or dies.

Each model instance runs in a `triton_python_backend_stub` process that talks to Triton through a region
`/dev/shm/<prefix><uuid>` (python_backend `README.md`): `shm-default-byte-size` at first (1 MiB), grown in
`shm-growth-byte-size` steps when a batch does not fit. Every Triton stanet starts gets a prefix of its own
(`--backend-config=python,shm-region-prefix-name=...`), which each stub carries on its command line. A stub
outlives a Triton killed by a signal (it is reparented to init, and has spun at half a core there): the prefix
finds it, and the regions, whoever its parent is now.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
from pathlib import Path

from serving.procfs import pids_with_command
from serving.repository_check import read_model_config
from stanet.constants import CONFIG_FILE

SHM_DIR = Path("/dev/shm")
REGION_PREFIX = "triton_python_backend_shm_region_"  # the backend's default; ours extend it
STUB_COMMAND = b"triton_python_backend_stub"
MIB = 1 << 20
MIN_SHM_BYTES = MIB  # the backend refuses less
# Type sizes of the tensors our exports declare (and the other fixed-size ones).
TYPE_BYTES = {"TYPE_BOOL": 1, "TYPE_UINT8": 1, "TYPE_INT8": 1, "TYPE_UINT16": 2, "TYPE_INT16": 2, "TYPE_FP16": 2,
              "TYPE_BF16": 2, "TYPE_UINT32": 4, "TYPE_INT32": 4, "TYPE_FP32": 4, "TYPE_UINT64": 8, "TYPE_INT64": 8,
              "TYPE_FP64": 8}
STOP_GRACE_S = 3.0
_counter = itertools.count()


def region_prefix() -> str:
    """A region prefix no other Triton uses: the session of the process starting it (a test run's servers
    share it), that process, and a counter."""
    return f"{REGION_PREFIX}stanet_s{os.getsid(0)}_p{os.getpid()}_{next(_counter)}_"


def session_prefix(sid: int | None = None) -> str:
    """The prefix shared by every Triton started from one session (`sid`, default this process's)."""
    return f"{REGION_PREFIX}stanet_s{os.getsid(0) if sid is None else sid}_"


def batch_bytes(repository: str | Path) -> int:
    """The bytes of one full batch (max_batch_size clips) of every input and output, for the largest model of
    `repository`."""
    from google.protobuf.json_format import MessageToDict  # the enum names, not numbers

    largest = 0
    for config_path in sorted(Path(repository).glob(f"*/{CONFIG_FILE}")):
        config = MessageToDict(read_model_config(config_path), preserving_proto_field_name=True)
        batch = max(int(config.get("max_batch_size", 0)), 1)
        tensors = [*config.get("input", []), *config.get("output", [])]
        size = sum(math.prod(int(d) for d in tensor.get("dims", [])) * TYPE_BYTES.get(tensor.get("data_type"), 0)
                   for tensor in tensors  # a variable dim (-1) or a BYTES tensor cannot be sized: left out
                   if all(int(d) >= 0 for d in tensor.get("dims", [])))
        largest = max(largest, batch * size)
    return largest


def default_shm_bytes(repository: str | Path) -> int:
    """`shm-default-byte-size` for `repository`: a full batch's inputs and outputs twice (the stub holds a
    batch's inputs while it writes the responses), plus 1 MiB for the backend's own messages, in whole MiB."""
    return max(MIN_SHM_BYTES, math.ceil((2 * batch_bytes(repository) + MIB) / MIB) * MIB)


def regions(prefix: str) -> list[Path]:
    return sorted(SHM_DIR.glob(f"{prefix}*"))


def stubs(prefix: str) -> list[int]:
    """Live stub processes whose region name starts with `prefix`, whatever their parent."""
    return pids_with_command(lambda command: STUB_COMMAND in command and b"\0" + prefix.encode() in command)


def end_leftovers(prefix: str, group: int | None = None) -> tuple[int, int]:
    """End every stub of the Triton whose regions start with `prefix` (and, with `group`, every process left
    in that Triton's process group): SIGTERM, then SIGKILL after STOP_GRACE_S; then remove its regions.
    Returns (processes ended, regions removed)."""
    found = set(stubs(prefix))
    ended = len(found)
    if group is not None:
        try:
            os.killpg(group, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in found:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = {pid for pid in found if _alive(pid)}
    for pid in found:
        _signal(pid, signal.SIGKILL)
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    removed = 0
    for region in regions(prefix):
        try:
            region.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return ended, removed


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
