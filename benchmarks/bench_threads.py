"""``--threads``: the quick sweep (``examples/sweeps/quick.toml``) through the CLI with one torch thread against the
default (``$OMP_NUM_THREADS`` when set, else the machine's physical cores), in one process, alternating, each run
into a fresh store; the ratio default / one thread is what a user of a shared machine gains from ``--threads 1``.

On an idle machine the default is the faster one (more cores work); on a machine whose cores are busy with other
processes the default is much slower: torch's intra-op threads meet at a barrier after every operation, and one
thread that waits for a core stalls all of them (issue 21: 107.6 s vs 5.3 s). Prints human lines, then one JSON line.

    DEEPSTART_DATA=/path/to/data python benchmarks/bench_threads.py [--repeats 2] [--threads-default N]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

from deepstart.cli import main
from deepstart.cli._args import default_threads

SPEC = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "quick.toml"


def _sweep(threads: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(["sweep", "run", str(SPEC), "--store", f"{folder}/quick.db", "--threads", str(threads),
                         "--no-progress"])
        seconds = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"sweep run exited {code}")
    return seconds


def run(repeats: int, many: int) -> dict:
    times = {many: [], 1: []}
    for _ in range(repeats):
        for n in (many, 1):
            times[n].append(_sweep(n))
            print(f"  {n} thread(s): {times[n][-1]:.1f} s", flush=True)
    return {"name": "threads_quick_sweep", "threads_default": many, "seconds_default": times[many],
            "seconds_one": times[1], "ratio_default_over_one": sum(times[many]) / sum(times[1]),
            "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads-default", type=int, default=default_threads())
    args = parser.parse_args()
    out = run(args.repeats, args.threads_default)
    print(f"quick sweep: {out['threads_default']} threads {min(out['seconds_default']):.1f} s, 1 thread "
          f"{min(out['seconds_one']):.1f} s: ratio {out['ratio_default_over_one']:.2f} (load average "
          f"{out['load_average']:.1f} on {out['cpus']} CPUs)")
    print(json.dumps(out))
