"""Latency statistics and open-loop pacing, shared by every benchmark runner."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Summary:
    requests: int
    clips: int
    seconds: float
    clips_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def percentiles(samples_s, qs=PERCENTILES) -> list[float]:
    """Percentiles of latency samples (seconds) in milliseconds, by linear interpolation between order
    statistics (numpy's default); NaN for no samples."""
    samples = np.asarray(samples_s, dtype=np.float64)
    if samples.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) * 1000.0 for v in np.percentile(samples, qs)]


def summarize(latencies_s, clips: int, seconds: float) -> Summary:
    p50, p90, p99 = percentiles(latencies_s)
    return Summary(requests=len(latencies_s), clips=clips, seconds=seconds,
                   clips_per_s=clips / seconds if seconds > 0 else 0.0, p50_ms=p50, p90_ms=p90, p99_ms=p99,
                   max_ms=max(latencies_s) * 1000.0 if len(latencies_s) else float("nan"))
