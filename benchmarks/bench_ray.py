"""The Ray backend against the local one on the quick sweep (``examples/sweeps/quick.toml``), on a 2-CPU local cluster.

Target (issue 14): Ray's overhead at most 10% of the local run. Both sides run the whole sweep through ``run_sweep``
into a fresh SQLite store. Measured, in one process, alternating, best of ``--repeats``:

- ``local``: ``backend="local"`` with ``workers=2`` (two spawned processes, one torch thread each: the same
  parallelism as the Ray cluster; this is the baseline), and with ``workers=1`` (this process, ``--threads``
  torch threads, default 1: on a loaded 2-core machine two intra-op threads are several times slower; the data
  cached in this process beforehand);
- ``ray.init(num_cpus=2)`` alone (start-up) and ``ray.shutdown()``, and between them the sweep on that session twice:
  *cold* (the workers Ray started import torch and load the data in their first task) and *warm* (same workers
  again, data cached in them);
- the *ideal* two-worker time: each batch timed in this process on one thread, scheduled longest first on two
  workers (the training alone, with zero start-up or scheduling cost);
- a Ray round trip of an empty task (the per-task floor).

Overhead = Ray (cold) − local (``workers=2``), per trial and as a fraction of the local run; *with start-up* adds
``ray.init`` and ``ray.shutdown`` (what ``run_sweep(backend="ray")`` pays when no Ray session is running).
Prints human lines, then one JSON line.

    DEEPSTART_DATA=/path/to/data python benchmarks/bench_ray.py [--repeats 3]
    python benchmarks/bench_ray.py --toy            # no MNIST needed: the same grid on the toy dataset
    python benchmarks/bench_ray.py --steps 2000 --repeats 1   # 10x longer training: the fixed costs amortized
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import torch

from deepstart.experiments.runners import plan_batches, run_sweep
from deepstart.experiments.runners.base import execute_batch
from deepstart.experiments.spec import SweepSpec, load_spec
from deepstart.experiments.trial import load_data

QUICK = Path(__file__).resolve().parent.parent / "examples" / "sweeps" / "quick.toml"


def _sweep(spec: SweepSpec, tmp: str, tag: str, **kwargs) -> float:
    t0 = time.perf_counter()
    summary = run_sweep(spec, Path(tmp) / f"{tag}.db", progress=False, **kwargs)
    seconds = time.perf_counter() - t0
    if summary.ran != summary.total:
        raise RuntimeError(f"{tag}: ran {summary.ran} of {summary.total} trials")
    return seconds


def _ideal_two_workers(spec: SweepSpec) -> tuple[float, list[float]]:
    """Each batch on one thread in this process (data cached), then longest-first onto two workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for batch in plan_batches(spec.trials(), set(), spec.max_members):
            t0 = time.perf_counter()
            execute_batch([t.to_dict() for t in batch])
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    loads = [0.0, 0.0]
    for t in sorted(times, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads), times


def _noop():
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default=str(QUICK))
    p.add_argument("--toy", action="store_true", help="run the spec on the toy dataset (no MNIST needed)")
    p.add_argument("--steps", type=int, default=None, help="override the spec's steps (a longer sweep)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads of this process (local workers=1)")
    args = p.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import ray

    spec = load_spec(args.spec)
    if args.toy:
        spec = SweepSpec.from_dict({**spec.to_dict(), "base": {**spec.base, "dataset": "toy"}})
    if args.steps is not None:
        spec = SweepSpec.from_dict({**spec.to_dict(), "base": {**spec.base, "steps": args.steps}})
    torch.set_num_threads(args.threads)
    best = _measure(spec, args.repeats, args.workers)
    _report(spec, args, best, *_ideal_two_workers(spec), ray.__version__)


def _measure(spec: SweepSpec, repeats: int, workers: int) -> dict:
    """Best-of-``repeats`` seconds: local workers=1 and =N, ray.init, ray cold and warm, shutdown, empty task."""
    import ray

    best = {k: float("inf") for k in ("local1", "local2", "init", "cold", "warm", "noop", "shutdown")}
    with tempfile.TemporaryDirectory() as tmp:
        load_data(spec.trials()[0])  # into this process's cache, as a warm local run has it
        for r in range(repeats):
            best["local1"] = min(best["local1"], _sweep(spec, tmp, f"l1-{r}"))
            best["local2"] = min(best["local2"], _sweep(spec, tmp, f"l2-{r}", workers=workers))
            t0 = time.perf_counter()
            ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
            best["init"] = min(best["init"], time.perf_counter() - t0)
            try:
                best["cold"] = min(best["cold"], _sweep(spec, tmp, f"rc-{r}", backend="ray"))
                best["warm"] = min(best["warm"], _sweep(spec, tmp, f"rw-{r}", backend="ray"))
                noop = ray.remote(num_cpus=1)(_noop)
                ray.get([noop.remote() for _ in range(50)])
                t0 = time.perf_counter()
                for _ in range(20):
                    ray.get(noop.remote())
                best["noop"] = min(best["noop"], (time.perf_counter() - t0) / 20)
            finally:
                t0 = time.perf_counter()
                ray.shutdown()
                best["shutdown"] = min(best["shutdown"], time.perf_counter() - t0)
    return best


def _report(spec: SweepSpec, args, best: dict, ideal: float, batch_times: list[float], ray_version: str) -> None:
    n = len(spec.trials())
    local, cold, warm = best["local2"], best["cold"], best["warm"]
    startup = best["init"] + best["shutdown"]
    over = {"cold": cold - local, "cold_with_startup": cold + startup - local, "warm": warm - local}
    print(f"quick sweep ({n} trials, {len(batch_times)} batches, dataset {spec.base.get('dataset')}, "
          f"{spec.base.get('steps')} steps), {args.workers} workers, {os.cpu_count()} CPUs, best of {args.repeats}:")
    print(f"  local workers={args.workers} {local:.2f} s (baseline) | local workers=1 ({args.threads} thread) "
          f"{best['local1']:.2f} s | ideal {args.workers}-worker {ideal:.2f} s (batches on 1 thread: "
          f"{', '.join(f'{t:.2f}' for t in batch_times)} s)")
    print(f"  ray.init {best['init']:.2f} s + shutdown {best['shutdown']:.2f} s | ray cold {cold:.2f} s | "
          f"ray warm {warm:.2f} s | empty-task round trip {best['noop'] * 1e3:.2f} ms")
    for k, v in over.items():
        print(f"  overhead {k:17s} {v:+7.2f} s = {v / n:+.3f} s/trial = {v / local:+.1%} of local (target <= 10%)")
    vs_serial = cold + startup - best["local1"]
    print(f"  warm ray vs ideal {args.workers}-worker training: {warm - ideal:+.2f} s; ray with start-up vs local "
          f"workers=1: {vs_serial:+.2f} s")
    print(json.dumps({
        "name": "ray_backend_quick_sweep", "ratio": round(local / cold, 3), "baseline_s": round(local, 3),
        "ours_s": round(cold, 3), "overhead_per_trial_s": round(over["cold"] / n, 4),
        "overhead_fraction": round(over["cold"] / local, 4), "device": "cpu", "target_overhead_fraction": 0.10,
        "ray_init_s": round(best["init"], 3), "ray_shutdown_s": round(best["shutdown"], 3),
        "ours_with_startup_s": round(cold + startup, 3),
        "overhead_per_trial_with_startup_s": round(over["cold_with_startup"] / n, 4),
        "overhead_fraction_with_startup": round(over["cold_with_startup"] / local, 4),
        "ray_warm_s": round(warm, 3), "overhead_fraction_warm": round(over["warm"] / local, 4),
        "local_workers1_s": round(best["local1"], 3), "local_workers1_threads": args.threads,
        "overhead_fraction_with_startup_vs_workers1": round(vs_serial / best["local1"], 4),
        "ideal_two_workers_s": round(ideal, 3), "batch_seconds_one_thread": [round(t, 3) for t in batch_times],
        "noop_task_ms": round(best["noop"] * 1e3, 3), "steps": spec.base.get("steps"), "trials": n,
        "batches": len(batch_times), "workers": args.workers, "repeats": args.repeats,
        "dataset": spec.base.get("dataset"), "ray": ray_version, "torch": torch.__version__,
        "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}))

if __name__ == "__main__":
    main()
