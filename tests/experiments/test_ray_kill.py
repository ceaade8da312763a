"""A Ray worker killed (SIGKILL) mid-sweep loses nothing: the batch is retried, or a rerun finishes the sweep.

The kill is deterministic: ``ray_backend._task`` is swapped for a wrapper that, in the one task that first creates a
marker file (``O_CREAT | O_EXCL``, so exactly one task wins even with two workers racing), trains its batch and then
SIGKILLs its own worker process before returning — the batch's work is done but never reaches the driver.
"""
from __future__ import annotations

import os
import signal
import time
import warnings

import pytest

ray = pytest.importorskip("ray")

from deepstart.experiments.runners import ray_backend, run_sweep  # noqa: E402
from deepstart.experiments.spec import SweepSpec  # noqa: E402
from deepstart.experiments.store import Store  # noqa: E402

# 12 trials in 6 batches of 2 (3 shapes); the batch of the deepest shape is the one whose worker dies.
SPEC = SweepSpec(name="kill", max_members=2,
                 base={"dataset": "toy", "width": 8, "steps": 10, "batch_size": 64, "lr": 0.05},
                 grid={"depth": [1, 2, 3], "seed": [0, 1, 2, 3]})
KILL_DEPTH = 3


def _killing_task(marker: str, original):
    """A Ray task body: ``original``, except that the first batch of depth KILL_DEPTH to claim ``marker`` writes its
    pid and trial ids there, then SIGKILLs its worker. A nested function, so Ray pickles it by value."""
    def task(batch, *args, **kwargs):
        out = original(batch, *args, **kwargs)
        if batch[0]["depth"] == KILL_DEPTH:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return out
            from deepstart.experiments.trial import Trial

            os.write(fd, " ".join([str(os.getpid())] + [Trial.from_dict(t).id for t in batch]).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return task


def _pid_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _trial_ids(spec: SweepSpec) -> set[str]:
    return {t.id for t in spec.trials()}


@pytest.fixture(scope="module")
def ray_session():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=ResourceWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="ray.*")
        # "local": a private instance, never one that another test process (pytest-xdist) has running
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()


@pytest.mark.ray
def test_killed_worker_is_retried_and_nothing_is_lost(tmp_path, monkeypatch, ray_session):
    marker = tmp_path / "killed"
    monkeypatch.setattr(ray_backend, "_task", _killing_task(str(marker), ray_backend._task))
    summary = run_sweep(SPEC, tmp_path / "r.db", backend="ray", max_retries=1, progress=False)
    pid, *killed_ids = marker.read_text().split()
    assert len(killed_ids) == 2 and _pid_gone(int(pid))  # a worker really died, after training its batch ...
    assert summary.ran == 12 and summary.batches == 6  # ... whose retry then ran: each trial written exactly once
    with Store(tmp_path / "r.db") as store:
        assert store.status("kill")["finished"] == 12
        assert {r.trial_id for r in store.results("kill")} == _trial_ids(SPEC)
        assert store.integrity_check() == "ok"


@pytest.mark.ray
def test_killed_worker_without_retry_then_rerun_completes(tmp_path, monkeypatch, ray_session):
    marker = tmp_path / "killed"
    monkeypatch.setattr(ray_backend, "_task", _killing_task(str(marker), ray_backend._task))
    with pytest.raises(ray.exceptions.RayError):  # no retry left: the sweep stops with the worker's death
        run_sweep(SPEC, tmp_path / "r.db", backend="ray", max_retries=0, progress=False)
    pid, *killed_ids = marker.read_text().split()
    assert _pid_gone(int(pid))
    with Store(tmp_path / "r.db") as store:
        before = store.finished_ids()
        assert store.integrity_check() == "ok"
    assert before < _trial_ids(SPEC) and not before & set(killed_ids)  # the killed batch is not in the store
    # the same command again (the marker exists, so nobody dies) runs exactly what is missing, once
    summary = run_sweep(SPEC, tmp_path / "r.db", backend="ray", progress=False)
    assert summary.skipped == len(before) and summary.ran == 12 - len(before)
    with Store(tmp_path / "r.db") as store:
        assert store.status("kill")["finished"] == 12
        assert {r.trial_id for r in store.results("kill")} == _trial_ids(SPEC)
        assert store.integrity_check() == "ok"
