"""Process and machine statistics for the benchmarks (Linux /proc where available): memory, CPU
shares, load average, latency summaries, and a heartbeat for long silent calls."""
from __future__ import annotations

import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

from eval.progress import Log


def memory() -> dict[str, float]:
    """Current resident memory in MiB: total, anonymous and file-backed (Linux /proc)."""
    out = {"rss_mb": float("nan"), "anon_mb": float("nan"), "file_mb": float("nan")}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                name = {"VmRSS": "rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb"}.get(key)
                if name:
                    out[name] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def is_mapped(path: Path) -> bool | None:
    """Is ``path`` memory-mapped into this process right now? (None where /proc is unavailable.)"""
    try:
        with open("/proc/self/maps") as fh:
            target = str(Path(path).resolve())
            return any(line.rstrip("\n").endswith(target) for line in fh)
    except OSError:
        return None


def peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def memory_delta(after: dict, before: dict) -> dict[str, float]:
    return {k: round(after[k] - before[k], 1) for k in before}


def latency_stats(seconds: list[float]) -> dict:
    """Latency summary in milliseconds."""
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    return {
        "n": int(len(ms)), "mean_ms": round(float(ms.mean()), 3), "median_ms": round(float(np.median(ms)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "min_ms": round(float(ms.min()), 3), "max_ms": round(float(ms.max()), 3),
    }


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_sample() -> tuple[float, int, int] | None:
    """(wall seconds, busy ticks of the whole machine, ticks used by this process and its finished
    children, e.g. a benchmark's server processes) from /proc."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:9]]
        with open("/proc/self/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return time.perf_counter(), f[0] + f[1] + f[2] + f[5] + f[6] + f[7], sum(int(x) for x in rest[11:15])
    except (OSError, ValueError, IndexError):
        return None


def others_cpu_share(before, after) -> float | None:
    """Fraction of all CPUs used by OTHER processes between two samples (contention from outside the bench)."""
    if not before or not after:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    wall = after[0] - before[0]
    if wall <= 0:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(0.0, others / tick / (wall * (os.cpu_count() or 1))), 3)


class Heartbeat:
    """Logs "still <label>" every ``every`` seconds while a long, silent call runs."""

    def __init__(self, label: str, log: Log, every: float = 20.0):
        self.label, self.log, self.every = label, log, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.wait(self.every):
            self.log(f"  ... still {self.label} ({time.perf_counter() - started:.0f}s)")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=1)
