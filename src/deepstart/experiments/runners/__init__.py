"""Run a sweep into a store: plan, skip what is finished, train the rest in vectorized batches, commit as they land.

Public API (stable)::

    from deepstart.experiments.runners import run_sweep
    summary = run_sweep("examples/sweeps/quick.toml", "results.db", backend="local", workers=1, progress=True)

``spec_or_trials`` is a path to a TOML spec, a :class:`~deepstart.experiments.spec.SweepSpec`, or a list of
:class:`~deepstart.experiments.trial.Trial` (then give ``name=``). Pending trials (those whose id is not in the store,
and *stale* ones: stored with a different provenance fingerprint, :mod:`deepstart.experiments.provenance`) are grouped
by shape into batches of at most ``max_members`` networks; each batch runs on the backend (``"local"``: this process
or ``workers`` processes; ``"ray"``: one Ray task per batch), and every finished trial is committed by the driver in
its own transaction. A sweep bar (trials, with ETA) and per-batch step bars (local, one worker) show progress.

Stale results are never reused silently: by default they are trained again and their rows replaced; with
``reuse_stale=True`` they are kept. Either way a warning (logger ``deepstart.experiments``) names how many and what
changed, and the summary counts them (``stale``, ``reused_stale``). ``device`` (``"cpu"`` default, ``"cuda"``,
``"cuda:N"``, ``"mps"``) is where the backends train; it is part of the fingerprint.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from deepstart.experiments.runners.base import SweepSummary, execute_batch

__all__ = ["run_sweep", "plan_batches", "SweepSummary", "execute_batch", "BACKENDS"]

log = logging.getLogger("deepstart.experiments")

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


def _check_provenance(trials, stored: dict, expected: dict, reuse_stale: bool, name: str):
    """``(finished ids to skip, stale ids)``: stored results whose fingerprint is not the expected one are stale."""
    fresh, stale, why = set(), set(), {}
    for t in trials:
        if t.id not in stored:
            continue
        fingerprint, prov = stored[t.id]
        if fingerprint == expected[t.id].fingerprint:
            fresh.add(t.id)
        else:
            stale.add(t.id)
            for change in expected[t.id].changes(prov):
                why[change] = why.get(change, 0) + 1
    if stale:
        changed = ", ".join(f"{k} ({n})" for k, n in sorted(why.items()))
        action = ("kept as they are (reuse_stale)" if reuse_stale else
                  "trained again and replaced (pass reuse_stale=True / --reuse-stale to keep them)")
        log.warning("sweep %s: %d stored result(s) are stale, produced with a different %s; %s",
                    name, len(stale), changed, action)
    return (fresh | stale if reuse_stale else fresh), stale


def _device(device, backend: str) -> tuple[str, str]:
    """``(device name for the workers, its label in the fingerprint)``. A Ray driver may have no GPU of its own:
    there "cuda…" is checked on the workers and labelled "cuda" (the GPU model is not known to the driver)."""
    from deepstart.experiments.provenance import device_label
    from deepstart.experiments.train import resolve_device

    if backend == "ray" and isinstance(device, str) and device.split(":")[0] == "cuda":
        return device, "cuda"
    dev = resolve_device(device)
    return str(dev), device_label(dev)


def run_sweep(spec_or_trials, store, *, backend: str = "local", workers: int = 1, max_members: int | None = None,
              progress: bool = True, name: str | None = None, data=None, ray_address: str | None = None,
              max_retries: int = 3, device=None, reuse_stale: bool = False,
              _fail_once: str | None = None) -> SweepSummary:
    """Run every pending or stale trial of a sweep on ``device`` and commit each result to ``store`` (a Store or a
    path). Stale results (different provenance fingerprint) are rerun and replaced, or kept with ``reuse_stale``."""
    from deepstart.experiments.provenance import provenance
    from deepstart.experiments.store import Store

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    device, label = _device(device, backend)
    own = not isinstance(store, Store)
    store = Store(store) if own else store
    t0 = time.perf_counter()
    try:
        name, trials, spec_hash, spec_dict, max_members = _resolve(spec_or_trials, name, max_members)
        store.register_sweep(name, spec_hash, spec_dict, [t.id for t in trials])
        by_dataset = {ds: dataclasses.replace(provenance(ds, data=data), device=label)
                      for ds in {t.dataset for t in trials}}
        expected = {t.id: by_dataset[t.dataset] for t in trials}
        finished, stale = _check_provenance(trials, store.fingerprints(), expected, reuse_stale, name)
        batches = plan_batches(trials, finished, max_members)
        n_pending = sum(len(b) for b in batches)
        dicts = [[t.to_dict() for t in b] for b in batches]
        if backend == "local":
            from deepstart.experiments.runners.local import run_local

            stream = run_local(dicts, workers=workers, data=data, progress=progress and workers == 1, device=device)
        else:
            from deepstart.experiments.runners.ray_backend import run_ray

            stream = run_ray(dicts, address=ray_address, workers=workers, max_retries=max_retries,
                             fail_once=_fail_once, device=device)
        ran = diverged = 0
        bar = _sweep_bar(progress, len(trials), len(trials) - n_pending, name, len(stale))
        try:
            from deepstart.experiments.metrics import TrialResult

            for results, env in stream:
                for r in results:
                    result = TrialResult.from_dict(r)
                    store.write(result, env, sweep=name, provenance=expected[result.trial_id],
                                replace=result.trial_id in stale)
                    ran += 1
                    diverged += result.diverged
                if bar is not None:
                    bar.update(len(results))
        finally:
            if bar is not None:
                bar.close()
        return SweepSummary(name, len(trials), len(trials) - n_pending, ran, diverged, len(batches),
                            time.perf_counter() - t0, backend, len(stale), len(stale) if reuse_stale else 0)
    finally:
        if own:
            store.close()


def _sweep_bar(progress, total, initial, name, stale=0):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"sweep {name}" + (f" ({stale} stale)" if stale else ""),
                unit="trial")
