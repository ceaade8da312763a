"""What every backend runs for one vectorized batch, and the sweep summary.

:func:`execute_batch` takes plain dicts (picklable, so it runs in a subprocess or a Ray worker just as well as in
the driver), trains them with :func:`deepstart.experiments.train.train_batch` and returns result dicts plus the
environment of the machine that ran them. Backends never touch the store: the driver writes what they return.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

__all__ = ["execute_batch", "SweepSummary"]


def execute_batch(trial_dicts: list[dict], *, data=None, progress: bool = False, fail_once: str | None = None,
                  device: str = "cpu"):
    """Train one batch of trial configs on ``device``; returns ``(list of TrialResult.to_dict(), environment dict)``.

    ``fail_once`` (tests of retries): a file path; if it does not exist yet the call creates it and raises
    ``RuntimeError``, so the first attempt fails and a retry succeeds."""
    if fail_once is not None and not os.path.exists(fail_once):
        with open(fail_once, "w") as fh:
            fh.write("failed once\n")
        raise RuntimeError(f"injected failure (fail_once={fail_once})")
    from deepstart.experiments.store import environment
    from deepstart.experiments.train import Trial, train_batch

    trials = [Trial.from_dict(d) for d in trial_dicts]
    results = train_batch(trials, data, progress=progress, device=device)
    return [r.to_dict() for r in results], environment(str(device))


@dataclass(frozen=True)
class SweepSummary:
    """Counts of one :func:`deepstart.experiments.runners.run_sweep` call."""

    sweep: str
    total: int
    skipped: int
    ran: int
    diverged: int
    batches: int
    seconds: float
    backend: str
    stale: int = 0  # stored results whose provenance fingerprint differed (rerun, or kept when reuse_stale)
    reused_stale: int = 0  # of those, kept as they were (reuse_stale=True); counted in skipped

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SweepSummary:
        return cls(**data)
