"""`deepstart sweep run|status|plot|export` end to end, and resuming after SIGKILL of a real sweep process."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from deepstart.cli import main
from deepstart.experiments.runners import run_sweep
from deepstart.experiments.spec import load_spec

SPEC = """\
[sweep]
name = "{name}"
max_members = {members}

[base]
dataset = "toy"
width = 16
batch_size = 64
steps = {steps}
eval_every = 20
lr = 0.05
momentum = 0.9

[grid]
depth = [1, 2]
init = ["he", "orthogonal"]
seed = {seeds}
"""


def _spec(tmp_path, name="cli", members=4, steps=40, seeds="[0, 1]"):
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, members=members, steps=steps, seeds=seeds))
    return path


def test_cli_run_status_plot_export(tmp_path, capsys):
    spec, db = _spec(tmp_path), tmp_path / "r.db"
    assert main(["sweep", "run", str(spec), "--store", str(db), "--no-progress"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (first["total"], first["ran"], first["skipped"], first["batches"]) == (8, 8, 0, 2)
    assert main(["sweep", "run", str(spec), "--store", str(db), "--no-progress"]) == 0  # resume: nothing to do
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (second["ran"], second["skipped"]) == (0, 8)
    assert main(["sweep", "status", "--store", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0] == {"sweep": "cli", "planned": 8, "finished": 8, "diverged": 0,
                                                      "pending": 0}
    assert main(["sweep", "plot", "--store", str(db), "--out", str(tmp_path / "fig"), "--format", "svg"]) == 0
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == ["all_curves.svg", "all_heatmap.svg"]
    assert main(["sweep", "export", "--store", str(db), "--csv", str(tmp_path / "o.csv")]) == 0
    assert len((tmp_path / "o.csv").read_text().strip().splitlines()) == 1 + 8


def test_cli_errors(tmp_path, capsys):
    assert main(["sweep", "status", "--store", str(tmp_path / "missing.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep]\nname = 'b'\n[base]\ndepht = 3\n")
    assert main(["sweep", "run", str(bad), "--store", str(tmp_path / "b.db"), "--no-progress"]) == 2
    assert f"{bad}:4: unknown key 'depht'" in capsys.readouterr().err


def test_run_sweep_local_workers_matches_in_process(tmp_path):
    # Two worker processes produce the same metrics as the in-process run (results are deterministic per trial).
    spec = load_spec(_spec(tmp_path, steps=20, members=2))
    a = run_sweep(spec, tmp_path / "a.db", progress=False)
    b = run_sweep(spec, tmp_path / "b.db", workers=2, progress=False)
    assert a.ran == b.ran == 8
    from deepstart.experiments.store import Store

    with Store(tmp_path / "a.db") as sa, Store(tmp_path / "b.db") as sb:
        ra = {r.trial_id: r.summary()["final_test_acc"] for r in sa.results()}
        rb = {r.trial_id: r.summary()["final_test_acc"] for r in sb.results()}
    assert ra == pytest.approx(rb)


def test_sigkill_mid_sweep_then_resume(tmp_path):
    """Kill a real `deepstart sweep run` with SIGKILL after its first commits; the rerun completes the sweep with
    every trial exactly once and an intact database."""
    spec = _spec(tmp_path, name="kill", members=1, steps=150, seeds="[0, 1, 2, 3]")  # 16 one-network batches
    db = tmp_path / "k.db"
    cmd = [sys.executable, "-m", "deepstart", "sweep", "run", str(spec), "--store", str(db), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    finished, deadline = 0, time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(db, timeout=1)
                    finished = con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
                    con.close()
                except sqlite3.OperationalError:  # table not created yet
                    finished = 0
            if finished >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"sweep ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(db)
    at_kill = con.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    con.close()
    assert 2 <= at_kill < 16
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == at_kill and summary["ran"] == 16 - at_kill
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    total, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT trial_id) FROM trials").fetchone()
    planned = {row[0] for row in con.execute("SELECT trial_id FROM sweep_trials WHERE sweep='kill'")}
    done = {row[0] for row in con.execute("SELECT trial_id FROM trials")}
    con.close()
    assert total == distinct == 16 and done == planned == {t.id for t in load_spec(spec).trials()}


def test_progress_bars_per_sweep_and_per_batch_with_eta(tmp_path, capsys, monkeypatch):
    import functools
    import re

    import tqdm.auto
    import tqdm.std

    # draw on every update (tqdm's default redraws at most every 0.1 s, which a fast batch can beat)
    monkeypatch.setattr(tqdm.auto, "tqdm", functools.partial(tqdm.std.tqdm, mininterval=0, miniters=1))
    spec = load_spec(_spec(tmp_path, name="bars", steps=20, members=4))
    summary = run_sweep(spec, tmp_path / "p.db", progress=True)
    assert summary.ran == 8
    err = capsys.readouterr().err
    # tqdm's "[elapsed<remaining, rate]": the remaining time is the ETA
    eta = r"\[\d\d:\d\d<\d\d:\d\d"
    assert re.search(rf"sweep bars: .*8/8 {eta}", err), err[-500:]
    for depth in (1, 2):  # one step bar per batch
        assert re.search(rf"batch of 4 \(mlp d={depth} w=16\): .*20/20 {eta}, .*step", err), err[-500:]
