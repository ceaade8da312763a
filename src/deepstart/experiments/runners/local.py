"""Local backend: batches in this process (``workers=1``) or in a pool of ``workers`` spawned processes.

Results stream back in completion order; the driver (``run_sweep``) alone writes the store.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp

from deepstart.experiments.runners.base import execute_batch

__all__ = ["run_local"]


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_local(batches: list[list[dict]], *, workers: int = 1, data=None, progress: bool = False,
              device: str = "cpu"):
    """Yield ``(results, environment)`` for each batch of trial dicts as it finishes, trained on ``device``."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if workers == 1 or len(batches) <= 1:
        for batch in batches:
            yield execute_batch(batch, data=data, progress=progress, device=device)
        return
    import torch

    threads = max(1, torch.get_num_threads() // workers)  # the driver's budget (the CLI's --threads), shared
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                initargs=(threads,)) as pool:
        futures = [pool.submit(execute_batch, batch, data=data, device=device) for batch in batches]
        for future in cf.as_completed(futures):
            yield future.result()
