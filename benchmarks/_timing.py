"""Shared timing helper of the benchmarks (run as scripts: ``python benchmarks/bench_*.py`` puts this folder on the
import path)."""
from __future__ import annotations

import resource
import time

import torch


def best_of(fn, repeats: int, *, warmup: bool = False, device=None):
    """``(min seconds over repeats, last result)``; the minimum is the least noisy estimate on a shared machine.
    With a CUDA ``device`` each timing waits for the queued GPU work."""
    cuda = device is not None and torch.device(device).type == "cuda"
    if warmup:
        fn()
    times, out = [], None
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return min(times), out


def rss_mb() -> float:
    """Current resident set size (``VmRSS`` of ``/proc/self/status``), MB (NaN where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return float("nan")


def peak_mb() -> float:
    """Peak resident set size of this process so far (``ru_maxrss`` is KiB on Linux), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
