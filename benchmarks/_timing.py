"""Timing helpers shared by the benchmarks: interleaved repetitions, medians, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np


def machine() -> str:
    """One line naming the machine, numpy and the BLAS-relevant environment."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas_env = [name for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ]
    warning = f"  WARNING: {', '.join(blas_env)} set (slows numpy's BLAS)" if blas_env else ""
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}{warning}"


def per_call(function: Callable[[], object], seconds: float = 0.2) -> float:
    """Seconds per call of ``function``, from a loop long enough to last about ``seconds``."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 10 or loops >= 1 << 24:
            break
        loops *= 4
    loops = max(1, int(loops * seconds / max(elapsed, 1e-9) / 5))
    start = time.perf_counter()
    for _ in range(loops):
        function()
    return (time.perf_counter() - start) / loops


def compare(candidates: dict[str, Callable[[], object]], rounds: int = 7, seconds: float = 0.2) -> dict[str, float]:
    """Median seconds per call of each candidate, measured in interleaved rounds so that a
    disturbance of the machine hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, function in candidates.items():
            samples[name].append(per_call(function, seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def format_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
