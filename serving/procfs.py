"""Processes read from /proc (Linux): the server's python-backend stubs (by parent or by command line), the
memory and CPU time the soak, the benchmark and the reliability tests report, and the TCP ports a process
listens on."""

from __future__ import annotations

import os
import socket
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after "pid (comm)": state, ppid, ... (comm may hold spaces and ')').
    OSError if the process has gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def status_kb(pid: int, field: str = "VmRSS") -> int:
    """A /proc/<pid>/status memory field in kB: VmRSS (resident now) or VmHWM (peak resident). OSError if the
    process has gone."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next((line.split()[1] for line in status.splitlines() if line.startswith(field)), 0))


def memory_mb(pids: list[int], field: str = "VmRSS") -> float:
    """The sum of a /proc/<pid>/status memory field (see status_kb) over `pids`, in MB. Processes that have gone
    are skipped."""
    total = 0
    for pid in pids:
        try:
            total += status_kb(pid, field)
        except OSError:
            continue
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time consumed so far by `pids`."""
    total = 0
    for pid in pids:
        try:
            fields = stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def pids_with_command(matches) -> list[int]:
    """Processes, not zombies, whose raw command line (arguments separated by NUL bytes) `matches(command)`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            if matches(command) and stat_fields(int(entry.name))[0] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def live_children(parent: int, command_contains: bytes) -> list[int]:
    """Processes whose parent is `parent`, not zombies, whose command line contains `command_contains`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat_fields(int(entry.name))
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z" and command_contains in command:
            found.append(int(entry.name))
    return found


def listening_ports(pid: int) -> set[tuple[str, int]]:
    """(host, port) of every TCP socket `pid` listens on, IPv4-mapped IPv6 hosts written as IPv4."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address, port = fields[1].split(":")
                # the kernel writes each 32-bit word of the address in host (little-endian) order
                raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
                host = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
                found.add((host.removeprefix("::ffff:"), int(port, 16)))
    return found
