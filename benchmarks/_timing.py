"""Shared timing helper of the benchmarks (run as scripts: ``python benchmarks/bench_*.py`` puts this folder on the
import path)."""
from __future__ import annotations

import time


def best_of(fn, repeats: int, *, warmup: bool = False):
    """``(min seconds over repeats, last result)``; the minimum is the least noisy estimate on a shared machine."""
    if warmup:
        fn()
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out
