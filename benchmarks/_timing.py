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


def threads() -> int:
    """The threads numpy's BLAS uses (``OPENBLAS_NUM_THREADS``, else one per core), for PyTorch to
    use as many."""
    return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))


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


class Worker:
    """A candidate timed in a process of its own (PyTorch: its thread pool and numpy's OpenBLAS
    threads fight when they share a process, which makes either look slower than it is).

    ``Worker([python, script, '--worker', ...])`` starts the process; ``worker.per_call(seconds)``
    asks it for one measurement (while this process waits, idle) and returns seconds per call.
    The worker's side is :func:`serve`. Use it as a candidate of :func:`compare`, whose
    interleaved rounds then alternate between the processes.
    """

    def __init__(self, command: list[str]):
        import subprocess

        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.header = self._read()  # what the worker says about itself once it is ready

    def _read(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker {self.process.args} stopped (exit code {self.process.wait()})")
        return line.strip()

    def per_call(self, seconds: float) -> float:
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        return float(self._read())

    def fastest(self, calls: int) -> float:
        """The fastest of ``calls`` single calls, in seconds."""
        self.process.stdin.write(f"fastest {calls}\n")
        self.process.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def serve(function: Callable[[], object], header: str = "ready") -> None:
    """The worker's side of :class:`Worker`: warm ``function`` up, then time it on each request."""
    import sys

    for _ in range(3):
        function()
    print(header, flush=True)
    for line in sys.stdin:
        if line.startswith("fastest"):
            print(repr(fastest(function, int(line.split()[1]))), flush=True)
        else:
            print(repr(per_call(function, float(line))), flush=True)


def fastest(function: Callable[[], object], calls: int) -> float:
    """The fastest of ``calls`` single calls of ``function``, in seconds: on a loaded machine, the
    calls that nothing interrupted."""
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def compare_with_workers(
    candidates: dict[str, Callable[[], object]],
    workers: dict[str, Worker],
    rounds: int,
    seconds: float,
    fastest_of: int = 0,
) -> dict[str, float]:
    """:func:`compare` of in-process candidates and of workers (each timed in its own process),
    in interleaved rounds; with ``fastest_of``, each round takes the fastest of that many single
    calls instead of the mean over ``seconds`` (for a loaded machine)."""
    samples: dict[str, list[float]] = {name: [] for name in [*candidates, *workers]}
    for _ in range(rounds):
        for name, function in candidates.items():
            samples[name].append(fastest(function, fastest_of) if fastest_of else per_call(function, seconds))
        for name, worker in workers.items():
            samples[name].append(worker.fastest(fastest_of) if fastest_of else worker.per_call(seconds))
    return {name: statistics.median(values) for name, values in samples.items()}
