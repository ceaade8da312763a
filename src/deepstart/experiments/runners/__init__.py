"""Run a sweep into a store: plan, skip what is finished, train the rest in vectorized batches, commit as they land.

Public API (stable)::

    from deepstart.experiments.runners import run_sweep
    summary = run_sweep("examples/sweeps/quick.toml", "results.db", backend="local", workers=1, progress=True)

``spec_or_trials`` is a path to a TOML spec, a :class:`~deepstart.experiments.spec.SweepSpec`, or a list of
:class:`~deepstart.experiments.trial.Trial` (then give ``name=``). Pending trials (those whose id is not in the store)
are grouped by shape into batches of at most ``max_members`` networks; each batch runs on the backend
(``"local"``: this process or ``workers`` processes; ``"ray"``: one Ray task per batch), and every finished trial
is committed by the driver in its own transaction. A sweep bar (trials, with ETA) and per-batch step bars (local,
one worker) show progress.
"""
from __future__ import annotations

import time
from pathlib import Path

from deepstart.experiments.runners.base import SweepSummary, execute_batch

__all__ = ["run_sweep", "plan_batches", "SweepSummary", "execute_batch", "BACKENDS"]

BACKENDS = ("local", "ray")


def _resolve(spec_or_trials, name, max_members):
    from deepstart.experiments.spec import SweepSpec, load_spec
    from deepstart.experiments.trial import Trial

    if isinstance(spec_or_trials, (str, Path)):
        spec_or_trials = load_spec(spec_or_trials)
    if isinstance(spec_or_trials, SweepSpec):
        spec = spec_or_trials
        return name or spec.name, spec.trials(), spec.hash, spec.to_dict(), max_members or spec.max_members
    trials = list(spec_or_trials)
    if not trials or not all(isinstance(t, Trial) for t in trials):
        raise TypeError("run_sweep expects a spec path, a SweepSpec, or a non-empty list of Trial objects")
    if not name:
        raise ValueError("run_sweep with a list of trials needs name='...' to file them under")
    import hashlib

    ids = sorted(t.id for t in trials)
    return name, trials, hashlib.sha256(",".join(ids).encode()).hexdigest()[:16], \
        {"name": name, "trials": [t.to_dict() for t in trials]}, max_members


def plan_batches(trials, finished: set, max_members: int | None = None) -> list[list]:
    """Pending trials (id not in ``finished``) grouped into vectorized batches (lists of Trials)."""
    from deepstart.experiments.train import group_trials

    pending = [t for t in trials if t.id not in finished]
    return [[pending[i] for i in idx] for idx in group_trials(pending, max_members)]


def run_sweep(spec_or_trials, store, *, backend: str = "local", workers: int = 1, max_members: int | None = None,
              progress: bool = True, name: str | None = None, data=None, ray_address: str | None = None,
              max_retries: int = 3, _fail_once: str | None = None) -> SweepSummary:
    """Run every pending trial of a sweep and commit each result to ``store`` (a Store or a path)."""
    from deepstart.experiments.store import Store

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    own = not isinstance(store, Store)
    store = Store(store) if own else store
    t0 = time.perf_counter()
    try:
        name, trials, spec_hash, spec_dict, max_members = _resolve(spec_or_trials, name, max_members)
        store.register_sweep(name, spec_hash, spec_dict, [t.id for t in trials])
        batches = plan_batches(trials, store.finished_ids(), max_members)
        n_pending = sum(len(b) for b in batches)
        dicts = [[t.to_dict() for t in b] for b in batches]
        if backend == "local":
            from deepstart.experiments.runners.local import run_local

            stream = run_local(dicts, workers=workers, data=data, progress=progress and workers == 1)
        else:
            from deepstart.experiments.runners.ray_backend import run_ray

            stream = run_ray(dicts, address=ray_address, workers=workers, max_retries=max_retries,
                             fail_once=_fail_once)
        ran = diverged = 0
        bar = _sweep_bar(progress, len(trials), len(trials) - n_pending, name)
        try:
            from deepstart.experiments.metrics import TrialResult

            for results, env in stream:
                for r in results:
                    result = TrialResult.from_dict(r)
                    store.write(result, env, sweep=name)
                    ran += 1
                    diverged += result.diverged
                if bar is not None:
                    bar.update(len(results))
        finally:
            if bar is not None:
                bar.close()
        return SweepSummary(name, len(trials), len(trials) - n_pending, ran, diverged, len(batches),
                            time.perf_counter() - t0, backend)
    finally:
        if own:
            store.close()


def _sweep_bar(progress, total, initial, name):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"sweep {name}", unit="trial")
