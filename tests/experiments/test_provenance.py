"""Stored results know where they came from (issue 12): a changed code/data/device fingerprint is never reused
silently; old stores without fingerprints open and count as stale; ``device=`` is checked (issue 14)."""
from __future__ import annotations

import logging
import sqlite3

import pytest
import torch

from deepstart.experiments import models
from deepstart.experiments import provenance as prov
from deepstart.experiments.runners import run_sweep
from deepstart.experiments.store import Store
from deepstart.experiments.trial import Trial

TRIAL = Trial(dataset="toy", depth=1, width=8, batch_size=64, steps=6, lr=0.1, test_limit=128, seed=3)


def _run(db, **kw):
    return run_sweep([TRIAL], db, name="p", progress=False, **kw)


def _acc(db):
    with Store(db) as store:
        (r,) = store.results("p")
    return r.final["test_acc"], r.extra["provenance"]


def _zero_mlp(monkeypatch):
    """The code "changed": the MLP factory now zeroes every weight, and the source hash says so."""
    original = models.mlp

    def zeroed(*args, **kwargs):
        net = original(*args, **kwargs)
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(0.0)
        return net

    monkeypatch.setattr(models, "mlp", zeroed)
    monkeypatch.setattr(prov, "source_hash", lambda: "changed-source")


def test_unchanged_rerun_skips(tmp_path):
    db = tmp_path / "r.db"
    first = _run(db)
    assert (first.ran, first.skipped, first.stale) == (1, 0, 0)
    second = _run(db)
    assert (second.ran, second.skipped, second.stale, second.reused_stale) == (0, 1, 0, 0)
    acc, stored = _acc(db)
    assert stored == prov.provenance("toy").to_dict() and stored["device"] == "cpu"


def _rerun_after_code_change(db, monkeypatch, caplog, **kwargs):
    """Train once, change the MLP factory (and the source hash), rerun: (summary, old accuracy, old provenance)."""
    _run(db)
    old_acc, old_prov = _acc(db)
    _zero_mlp(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="deepstart.experiments"):
        return _run(db, **kwargs), old_acc, old_prov


def test_changed_code_reruns_and_replaces(tmp_path, monkeypatch, caplog):
    db = tmp_path / "r.db"
    summary, old_acc, _ = _rerun_after_code_change(db, monkeypatch, caplog)
    assert (summary.ran, summary.skipped, summary.stale, summary.reused_stale) == (1, 0, 1, 0)
    assert "1 stored result(s) are stale" in caplog.text and "source (1)" in caplog.text
    new_acc, stored = _acc(db)
    assert stored["source"] == "changed-source"
    assert new_acc != old_acc  # zero weights: every logit equal, one class predicted (the old result was trained)
    with Store(db) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 1  # replaced, not duplicated
    again = _run(db)
    assert (again.ran, again.stale) == (0, 0)  # the fresh result is current now


def test_reuse_stale_keeps_the_old_result_and_says_so(tmp_path, monkeypatch, caplog):
    db = tmp_path / "r.db"
    summary, old_acc, old_prov = _rerun_after_code_change(db, monkeypatch, caplog, reuse_stale=True)
    assert (summary.ran, summary.skipped, summary.stale, summary.reused_stale) == (0, 1, 1, 1)
    assert "kept as they are" in caplog.text
    assert _acc(db) == (old_acc, old_prov)


def test_old_schema_store_opens_and_its_rows_are_stale(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)  # the schema of stores written before fingerprints existed
    conn.executescript("""
        CREATE TABLE trials(trial_id TEXT PRIMARY KEY, sweep TEXT, config TEXT NOT NULL, seed INTEGER,
                            diverged INTEGER NOT NULL, diverged_at_step INTEGER, metrics TEXT NOT NULL,
                            history TEXT NOT NULL, environment TEXT NOT NULL, batch_members INTEGER,
                            seconds REAL, finished_at REAL NOT NULL);""")
    conn.execute("INSERT INTO trials VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (TRIAL.id, "p", "{}", 3, 0, None, '{"steps_run": 6}',
                  '[{"step": 6, "epoch": 1.0, "test_acc": 0.99}]', "{}", 1, 0.1, 0.0))
    conn.commit()
    conn.close()
    with Store(db) as store:
        assert store.fingerprints() == {TRIAL.id: (None, None)}
    summary = _run(db)
    assert (summary.ran, summary.stale) == (1, 1)
    acc, stored = _acc(db)
    assert acc != 0.99 and stored is not None


def test_fingerprint_covers_data_and_device(tmp_path):
    from deepstart.experiments.trial import load_data

    toy = prov.provenance("toy")
    assert prov.Provenance.from_dict(toy.to_dict()) == toy
    assert toy.fingerprint != prov.provenance("mnist").fingerprint  # registry checksums, not the toy generator
    data = load_data(TRIAL)
    passed = prov.data_hash("toy", data)
    assert passed.startswith("toy:tensors:") and passed == prov.data_hash("toy", {"toy": data})
    assert toy.changes({**toy.to_dict(), "device": "cuda (X)"}) == ["device"]
    assert toy.changes(None) == ["no fingerprint"]
    assert len(prov.source_hash()) == 16


def test_device_cpu_works_and_bad_devices_give_advice(tmp_path):
    summary = _run(tmp_path / "r.db", device="cpu")
    assert summary.ran == 1
    with pytest.raises(ValueError, match="unknown device 'gpu'; valid: cpu, cuda"):
        _run(tmp_path / "r.db", device="gpu")
    with pytest.raises(TypeError, match="device must be a string"):
        _run(tmp_path / "r.db", device=0.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA GPU.*device='cpu'"):
            _run(tmp_path / "r.db", device="cuda")


def test_cli_device_and_reuse_stale(tmp_path, capsys):
    import json

    from deepstart.cli import main

    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nname = "p"\n\n[base]\ndataset = "toy"\ndepth = 1\nwidth = 8\nsteps = 4\n'
                    'test_limit = 64\n\n[grid]\nseed = [0]\n')
    db = str(tmp_path / "r.db")
    assert main(["sweep", "run", str(spec), "--store", db, "--no-progress", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ran"] == 1
    assert main(["sweep", "run", str(spec), "--store", db, "--no-progress", "--reuse-stale"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == 1
    assert main(["sweep", "run", str(spec), "--store", db, "--device", "gpu"]) == 2
    assert "cpu, cuda, cuda:N or mps" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["sweep", "run", str(spec), "--store", db, "--device", "cuda"]) == 2
        assert "no usable CUDA GPU" in capsys.readouterr().err
