"""SQLite store: one transaction per trial, no duplicates, status, export."""
from __future__ import annotations

import csv
import sqlite3

import pytest

from deepstart.experiments.metrics import TrialResult
from deepstart.experiments.store import Store, environment
from deepstart.experiments.trial import Trial


def _result(seed, diverged=False):
    t = Trial(dataset="toy", depth=2, seed=seed)
    hist = ({"step": 0, "epoch": 0.0, "train_loss": None, "train_acc": None, "test_loss": 2.3, "test_acc": 0.1,
             "time": 0.0}, {"step": 10, "epoch": 1.0, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.1,
                            "test_acc": 0.4 + seed / 100, "time": 0.5})
    return TrialResult(t.id, t.to_dict(), hist if not diverged else hist[:1], diverged, 3 if diverged else None,
                       2 if diverged else 10, 0.5, 2)


def test_write_read_status_and_no_duplicates(tmp_path):
    path = tmp_path / "r.db"
    results = [_result(0), _result(1), _result(2, diverged=True)]
    with Store(path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.register_sweep("s", "h", {"name": "s"}, [r.trial_id for r in results] + ["pending-id"])
        env = environment()
        assert store.write(results[0], env, "s") is True
        assert store.write(results[0], env, "s") is False  # same id: ignored, never duplicated
        for r in results[1:]:
            store.write(r, env, "s")
        assert store.status("s") == {"sweep": "s", "planned": 4, "finished": 3, "diverged": 1, "pending": 1}
        back = store.results("s")
        assert [r.trial_id for r in back] == [r.trial_id for r in results]
        assert back[0].history == results[0].history and back[0].config == results[0].config
        assert back[2].diverged and back[2].diverged_at_step == 3 and back[2].steps_run == 2
        assert back[0].extra["environment"]["torch"] == env["torch"]
        assert store.integrity_check() == "ok"
        with pytest.raises(ValueError, match="no sweep named 'x'"):
            store.status("x")
    rows = sqlite3.connect(path).execute("SELECT COUNT(*), COUNT(DISTINCT trial_id) FROM trials").fetchone()
    assert rows == (3, 3)


def test_export_csv(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.register_sweep("s", "h", {}, [_result(0).trial_id])
        store.write(_result(0), {"device": "cpu"}, "s")
        assert store.export_csv(tmp_path / "out.csv", "s") == 1
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert rows[0]["config.seed"] == "0" and float(rows[0]["final_test_acc"]) == pytest.approx(0.4)
    assert rows[0]["env.device"] == "cpu" and rows[0]["epochs_to_20"] == "1.0"
