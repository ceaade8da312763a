"""The machine's limits, measured in the benchmark's own process, and the fraction of them a benchmark reaches.

A benchmark's ratio against the obvious user code says how much faster deepstart is; the roofline fraction says
how much faster it could still get. Two limits (Williams, Waterman & Patterson 2009, *Roofline*):

- ``gemm_rate(m, k, n, dtype)``: FLOP/s of ``torch.mm`` on ``[m, k] @ [k, n]`` at exactly the benchmark's sizes
  (2·m·k·n FLOP per product), best of a few; the practical compute ceiling of dense work.
- ``bandwidth()``: bytes/s of a large out-of-place add ``c = a + b`` (reads 2, writes 1 array), best of a few; the
  ceiling of memory-bound work such as matrix–vector products.

``fraction(flop=..., seconds=..., rate=...)`` or ``fraction(nbytes=..., seconds=..., bandwidth=...)`` turns work and
time into the fraction of the limit; :func:`report` prints the human line and returns the JSON record every benchmark
ends with (fields ``name, ratio, baseline_s, ours_s, roofline_fraction, limit, device``). One-line use::

    from _roofline import gemm_rate, report
    report("check", baseline_s=tb, ours_s=to, flop=2 * m * k * n * layers, rate=gemm_rate(m, k, n), device="cpu")

Rates are measured once per process per shape and cached; on a GPU the timings synchronize.
"""
from __future__ import annotations

import functools
import json
import time

import torch

__all__ = ["bandwidth", "fraction", "gemm_rate", "mlp_train_flop", "mlp_train_limit_seconds", "report", "sync"]


def sync(device) -> None:
    """Wait for queued work on ``device`` (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device, repeats: int, min_seconds: float = 0.05) -> float:
    """Minimum over ``repeats`` timings of ``fn`` (each timing runs ``fn`` enough times to last ``min_seconds``)."""
    fn()
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    inner = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


@functools.lru_cache(maxsize=None)
def gemm_rate(m: int, k: int, n: int, dtype: torch.dtype = torch.float32, device: str = "cpu",
              repeats: int = 3, batch: int = 1) -> float:
    """FLOP/s of one ``[m, k] @ [k, n]`` product (``torch.bmm`` of ``batch`` of them when ``batch > 1``) in
    ``dtype`` on ``device`` (2·batch·m·k·n FLOP), best of ``repeats``."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(batch, m, k, dtype=dtype, device=device, generator=g)
    b = torch.randn(batch, k, n, dtype=dtype, device=device, generator=g)
    out = torch.empty(batch, m, n, dtype=dtype, device=device)
    fn = (lambda: torch.bmm(a, b, out=out)) if batch > 1 else (lambda: torch.mm(a[0], b[0], out=out[0]))
    return 2.0 * batch * m * k * n / _best_seconds(fn, device, repeats)


@functools.lru_cache(maxsize=None)
def bandwidth(nbytes: int = 1 << 28, device: str = "cpu", repeats: int = 3) -> float:
    """Bytes/s of ``c = a + b`` on float32 arrays of ``nbytes`` each (3·nbytes moved), best of ``repeats``;
    the default 256 MiB per array is far beyond any cache."""
    n = nbytes // 4
    a = torch.ones(n, device=device)
    b = torch.ones(n, device=device)
    c = torch.empty(n, device=device)
    return 3.0 * nbytes / _best_seconds(lambda: torch.add(a, b, out=c), device, repeats, min_seconds=0.2)


def mlp_train_flop(widths, n_examples: int, n_models: int = 1) -> float:
    """FLOP of forward + backward of MLPs with layer widths ``widths`` over ``n_examples``: 2·n·in·out per layer
    forward, twice that backward (input and weight gradients), so 3× the forward GEMMs."""
    fwd = sum(2.0 * n_examples * a * b for a, b in zip(widths[:-1], widths[1:]))
    return 3.0 * fwd * n_models


def mlp_train_limit_seconds(widths, n_examples: int, batch_size: int, n_models: int = 1,
                            dtype: torch.dtype = torch.float32, device: str = "cpu") -> float:
    """Seconds the GEMMs of :func:`mlp_train_flop` take at the rate measured for each layer's own shape
    (``n_models`` batched ``[batch_size, in] @ [in, out]`` products; the two backward products of a layer have the
    same FLOPs and are charged at the same rate)."""
    seconds = 0.0
    for a, b in zip(widths[:-1], widths[1:]):
        rate = gemm_rate(batch_size, a, b, dtype, device, batch=n_models)
        seconds += mlp_train_flop((a, b), n_examples, n_models) / rate
    return seconds


def fraction(*, seconds: float, flop: float | None = None, rate: float | None = None,
             nbytes: float | None = None, bandwidth: float | None = None) -> tuple[float, str]:
    """``(fraction of the limit, "gemm" | "bandwidth")`` for work of ``flop`` at GEMM ``rate`` FLOP/s, or of
    ``nbytes`` moved at ``bandwidth`` bytes/s, done in ``seconds``."""
    if flop is not None and rate is not None:
        return flop / seconds / rate, "gemm"
    if nbytes is not None and bandwidth is not None:
        return nbytes / seconds / bandwidth, "bandwidth"
    raise ValueError("pass flop= and rate= (compute-bound work) or nbytes= and bandwidth= (memory-bound work)")


def report(name: str, *, baseline_s: float, ours_s: float, device: str = "cpu", extra: dict | None = None,
           **work) -> dict:
    """Print ``name``'s ratio and roofline fraction and then one JSON line; return the record. ``work`` is passed to
    :func:`fraction` (``flop=, rate=`` or ``nbytes=, bandwidth=``); ``extra`` fields are appended."""
    frac, limit = fraction(seconds=ours_s, **work)
    record = {"name": name, "ratio": baseline_s / ours_s, "baseline_s": baseline_s, "ours_s": ours_s,
              "roofline_fraction": frac, "limit": limit, "device": str(device), **(extra or {})}
    print(f"{name}: {baseline_s / ours_s:.2f}x the baseline, {100 * frac:.3g}% of the measured {limit} limit")
    print(json.dumps(record))
    return record
