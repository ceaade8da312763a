"""Ray backend on a local Ray instance: batches as tasks, a failing task retried, the driver writes the store."""
from __future__ import annotations

import warnings

import pytest

ray = pytest.importorskip("ray")

from deepstart.experiments.runners import run_sweep  # noqa: E402
from deepstart.experiments.spec import SweepSpec  # noqa: E402
from deepstart.experiments.store import Store  # noqa: E402


@pytest.mark.ray
def test_ray_backend_with_retry(tmp_path):
    spec = SweepSpec(name="ray", max_members=2,
                     base={"dataset": "toy", "width": 8, "steps": 10, "batch_size": 64, "lr": 0.05},
                     grid={"depth": [1, 2], "seed": [0, 1, 2]})
    marker = tmp_path / "failed-once"
    with warnings.catch_warnings():
        # Ray's own start-up may emit these from its internals; they are not ours to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=ResourceWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="ray.*")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            summary = run_sweep(spec, tmp_path / "r.db", backend="ray", progress=False, _fail_once=str(marker))
        finally:
            ray.shutdown()
    assert marker.exists()  # the first attempt of the first batch failed ...
    assert summary.ran == 6 and summary.batches == 4  # ... and was retried: every trial arrived
    with Store(tmp_path / "r.db") as store:
        assert store.status("ray")["finished"] == 6
        results = store.results("ray")
        assert {r.trial_id for r in results} == {t.id for t in spec.trials()}
        assert all(r.extra["environment"]["torch_threads"] == 1 for r in results)  # ran in Ray workers
        assert store.integrity_check() == "ok"
    # the same sweep on the local backend gives the same numbers (same trial, same seed)
    local = run_sweep(spec, tmp_path / "l.db", progress=False)
    assert local.ran == 6
    with Store(tmp_path / "l.db") as a, Store(tmp_path / "r.db") as b:
        la = {r.trial_id: r.summary()["final_train_loss"] for r in a.results()}
        lb = {r.trial_id: r.summary()["final_train_loss"] for r in b.results()}
    assert la == pytest.approx(lb, rel=1e-5)
