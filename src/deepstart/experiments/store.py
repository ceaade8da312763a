"""The results store: one SQLite file in WAL mode, safe against the writer being killed at any moment.

Tables
- ``sweeps(name, spec_hash, spec, created, updated)``: the spec of every sweep run into this store.
- ``sweep_trials(sweep, trial_id)``: which trials a sweep planned (for ``status``).
- ``trials(trial_id PRIMARY KEY, sweep, config, seed, diverged, diverged_at_step, metrics, history, environment,
  batch_members, seconds, finished_at, fingerprint, provenance)``: one row per *finished* trial. ``fingerprint`` and
  ``provenance`` (:mod:`deepstart.experiments.provenance`: source, data, torch, dtype, device) say what produced the
  result; stores written before they existed are migrated on opening (the columns are added, old rows get NULL,
  which counts as stale).

Guarantees: each finished trial is written by one transaction (``INSERT OR IGNORE`` on the primary key, so a trial is
never duplicated; ``replace=True`` replaces a stale row); SQLite's WAL journal makes a transaction all-or-nothing even
under SIGKILL, so killing a sweep loses only the trials in flight and never corrupts the file. Only the driver process
writes (runners stream results back to it). ``trial_id`` is :attr:`Trial.id`, the hash of the fully resolved config,
so re-running a spec skips finished trials whose fingerprint is still the current one.
"""
from __future__ import annotations

import csv
import json
import platform
import socket
import sqlite3
import time
from pathlib import Path

from deepstart._io import atomic_open
from deepstart.experiments.metrics import TrialResult

__all__ = ["Store", "environment"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps(name TEXT PRIMARY KEY, spec_hash TEXT NOT NULL, spec TEXT NOT NULL,
                                  created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sweep_trials(sweep TEXT NOT NULL, trial_id TEXT NOT NULL, PRIMARY KEY(sweep, trial_id));
CREATE TABLE IF NOT EXISTS trials(trial_id TEXT PRIMARY KEY, sweep TEXT, config TEXT NOT NULL, seed INTEGER,
                                  diverged INTEGER NOT NULL, diverged_at_step INTEGER, metrics TEXT NOT NULL,
                                  history TEXT NOT NULL, environment TEXT NOT NULL, batch_members INTEGER,
                                  seconds REAL, finished_at REAL NOT NULL, fingerprint TEXT, provenance TEXT);
"""
_COLUMNS = ("trial_id", "sweep", "config", "seed", "diverged", "diverged_at_step", "metrics", "history", "environment",
            "batch_members", "seconds", "finished_at", "fingerprint", "provenance")
_ADDED = ("fingerprint", "provenance")  # columns newer than the first stores: added by _migrate


def environment(device: str = "cpu") -> dict:
    """Versions and machine a result was produced with."""
    import numpy
    import torch

    import deepstart

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "deepstart": deepstart.__version__, "platform": platform.platform(), "host": socket.gethostname(),
            "device": device, "torch_threads": torch.get_num_threads()}


class Store:
    """SQLite results store (``Store(path)``; use as a context manager or call :meth:`close`)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:  # another file, or a read-only one: a usage error, said in one line
            self.conn.close()
            raise ValueError(f"{self.path} cannot be used as a results store ({exc}); give a new file name or an "
                             "existing deepstart store that can be written") from None
        self._migrate()

    def _migrate(self) -> None:
        """Add the columns a store from an older deepstart lacks (its rows get NULL: no fingerprint, stale)."""
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(trials)")}
        for column in _ADDED:
            if column not in have:
                try:
                    self.conn.execute(f"ALTER TABLE trials ADD COLUMN {column} TEXT")
                except sqlite3.OperationalError as exc:  # another process migrated it a moment ago
                    if "duplicate column" not in str(exc):
                        raise

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _tx(self):
        return _Transaction(self.conn)

    # -- writing -----------------------------------------------------------------------------------------------
    def register_sweep(self, name: str, spec_hash: str, spec: dict, trial_ids) -> None:
        """Record a sweep and the trials it plans (idempotent; a changed spec under the same name is updated)."""
        now = time.time()
        with self._tx() as c:
            c.execute("INSERT INTO sweeps VALUES (?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET spec_hash=excluded.spec_hash,"
                      " spec=excluded.spec, updated=excluded.updated",
                      (name, spec_hash, json.dumps(spec, sort_keys=True, default=str), now, now))
            c.executemany("INSERT OR IGNORE INTO sweep_trials VALUES (?,?)", [(name, t) for t in trial_ids])

    def write(self, result: TrialResult, env: dict, sweep: str | None = None, *, provenance=None,
              replace: bool = False) -> bool:
        """Commit one finished trial in one transaction; returns False if it was already there (and not replaced).

        ``provenance``: a :class:`~deepstart.experiments.provenance.Provenance` stored (with its fingerprint) beside
        the result; ``replace=True`` overwrites a stored row of the same trial (a stale result being redone)."""
        summary = result.summary()
        fingerprint = prov = None
        if provenance is not None:
            fingerprint, prov = provenance.fingerprint, json.dumps(provenance.to_dict(), sort_keys=True)
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._tx() as c:
            cur = c.execute(f"{verb} INTO trials ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                            (result.trial_id, sweep, json.dumps(result.config, sort_keys=True, default=str),
                             result.config.get("seed"), int(result.diverged), result.diverged_at_step,
                             json.dumps(summary), json.dumps(list(result.history)), json.dumps(env),
                             result.batch_members, result.seconds, time.time(), fingerprint, prov))
            return cur.rowcount == 1

    # -- reading -----------------------------------------------------------------------------------------------
    def finished_ids(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT trial_id FROM trials")}

    def fingerprints(self) -> dict[str, tuple[str | None, dict | None]]:
        """``{trial_id: (fingerprint, provenance dict)}`` of every finished trial; ``(None, None)`` for rows written
        before fingerprints existed."""
        return {tid: (fp, json.loads(prov) if prov else None)
                for tid, fp, prov in self.conn.execute("SELECT trial_id, fingerprint, provenance FROM trials")}

    def sweeps(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT name FROM sweeps ORDER BY created")]

    def results(self, sweep: str | None = None) -> list[TrialResult]:
        """Finished results, of one sweep's planned trials if ``sweep`` is given."""
        query = ("SELECT trial_id, config, diverged, diverged_at_step, history, batch_members, seconds, environment,"
                 " metrics, provenance FROM trials")
        args: tuple = ()
        if sweep is not None:
            self._check_sweep(sweep)
            query += " WHERE trial_id IN (SELECT trial_id FROM sweep_trials WHERE sweep=?)"
            args = (sweep,)
        out = []
        rows = self.conn.execute(query + " ORDER BY rowid", args)
        for tid, config, div, at, hist, members, secs, env, metrics, prov in rows:
            steps = json.loads(metrics).get("steps_run", 0)
            extra = {"environment": json.loads(env), "provenance": json.loads(prov) if prov else None}
            out.append(TrialResult(tid, json.loads(config), tuple(json.loads(hist)), bool(div), at, steps, secs, members,
                                   extra))
        return out

    def status(self, sweep: str | None = None) -> dict:
        """Counts: planned, finished, diverged, pending (per sweep, or for the whole store)."""
        if sweep is None:
            finished = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(diverged),0) FROM trials").fetchone()
            planned = self.conn.execute("SELECT COUNT(DISTINCT trial_id) FROM sweep_trials").fetchone()[0]
        else:
            self._check_sweep(sweep)
            finished = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(diverged),0) FROM trials WHERE trial_id IN "
                                         "(SELECT trial_id FROM sweep_trials WHERE sweep=?)", (sweep,)).fetchone()
            planned = self.conn.execute("SELECT COUNT(*) FROM sweep_trials WHERE sweep=?", (sweep,)).fetchone()[0]
        return {"sweep": sweep, "planned": planned, "finished": finished[0], "diverged": finished[1],
                "pending": max(planned - finished[0], 0)}

    def _check_sweep(self, sweep: str) -> None:
        if sweep not in self.sweeps():
            raise ValueError(f"no sweep named {sweep!r} in {self.path}; sweeps here: {self.sweeps() or 'none'}")

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def export_csv(self, path: str | Path, sweep: str | None = None) -> int:
        """One row per finished trial: config fields, summary metrics, environment; returns the number of rows."""
        rows = []
        for r in self.results(sweep):
            row = {f"config.{k}": (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.config.items()}
            row = {"trial_id": r.trial_id, **row, **r.summary()}
            row.update({f"env.{k}": v for k, v in r.extra.get("environment", {}).items()})
            rows.append(row)
        fields: list[str] = []
        for row in rows:
            fields += [k for k in row if k not in fields]
        with atomic_open(path, "w", newline="") as fh:  # an interrupted export leaves no half file
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        return len(rows)


class _Transaction:
    """``BEGIN IMMEDIATE … COMMIT`` (rollback on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, *exc) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
