"""Resource use of server processes read from /proc (Linux): what the soak and the benchmark report."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def memory_mb(pids: list[int], field: str = "VmRSS") -> float:
    """The sum of a /proc/<pid>/status memory field over `pids`, in MB: VmRSS (resident now) or VmHWM (peak
    resident). Processes that have gone are skipped."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(next((line.split()[1] for line in status.splitlines() if line.startswith(field)), 0))
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time consumed so far by `pids`."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (after "pid (comm)")
    return total / TICKS
