"""Output paths are checked before any work (exit 2, one line naming the path and the reason) and written atomically
(an interrupted write leaves the old file, never half a file); ``--ray-address`` without a cluster is a usage error."""
from __future__ import annotations

import errno
import os
import socket
import stat

import pytest

from deepstart import _io
from deepstart.cli import main


@pytest.fixture
def no_work(monkeypatch):
    """Every command's expensive step raises: a refused path must be refused before it."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the work started although an output path was unusable")

    import deepstart.cli.check as cli_check
    import deepstart.experiments.reproduce as reproduce
    import deepstart.experiments.runners as runners
    import deepstart.theory as theory

    monkeypatch.setattr(cli_check, "_load", forbidden)
    monkeypatch.setattr(runners, "run_sweep", forbidden)
    monkeypatch.setattr(reproduce, "reproduce", forbidden)
    monkeypatch.setattr(theory, "phase_diagram", forbidden)


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _store(tmp_path):
    from deepstart.experiments.store import Store

    path = tmp_path / "s.db"
    Store(path).close()
    return path


@pytest.mark.parametrize("option", ["--html", "--json"])
def test_check_refuses_a_missing_folder_and_a_directory_before_measuring(tmp_path, no_work, capsys, option):
    missing = tmp_path / "no-such-folder" / "r.out"
    assert main(["check", "mlp:depth=3", option, str(missing)]) == 2
    _one_line_error(capsys, f"{option} {missing}", "does not exist", "mkdir -p")
    assert main(["check", "mlp:depth=3", option, str(tmp_path)]) == 2
    _one_line_error(capsys, f"{option} {tmp_path}", "is a directory")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_is_named_with_the_reason(tmp_path, no_work, capsys, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(_io.tempfile, "mkstemp", denied)  # what a read-only folder does, also for root
    assert main(["check", "mlp:depth=3", "--html", str(tmp_path / "r.html")]) == 2
    _one_line_error(capsys, str(tmp_path / "r.html"), f"cannot write in folder {tmp_path}", "Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(tmp_path, no_work, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert main(["check", "mlp:depth=3", "--json", str(ro / "r.json")]) == 2
        _one_line_error(capsys, "cannot write in folder")
    finally:
        ro.chmod(stat.S_IRWXU)


def test_same_file_for_json_and_html_is_refused(tmp_path, no_work, capsys):
    path = str(tmp_path / "r.txt")
    assert main(["check", "mlp:depth=3", "--json", path, "--html", path]) == 2
    _one_line_error(capsys, "both name")


def test_sweep_commands_check_their_outputs_first(tmp_path, no_work, capsys):
    assert main(["sweep", "run", "examples/sweeps/quick.toml", "--store", str(tmp_path / "a" / "s.db")]) == 2
    _one_line_error(capsys, "--store", "does not exist")
    assert main(["sweep", "run", "examples/sweeps/quick.toml", "--store", str(tmp_path)]) == 2
    _one_line_error(capsys, "is a directory")
    other = tmp_path / "notes.db"
    other.write_text("not a database\n")
    for argv in (["sweep", "status", "--store", str(other)], ["sweep", "export", "--store", str(other), "--csv",
                                                               str(tmp_path / "t.csv")]):
        assert main(argv) == 2
        _one_line_error(capsys, f"{other} cannot be used as a results store (file is not a database)")
    assert other.read_text() == "not a database\n"
    store = _store(tmp_path)
    assert main(["sweep", "export", "--store", str(store), "--csv", str(tmp_path)]) == 2
    _one_line_error(capsys, f"--csv {tmp_path}", "is a directory")
    assert main(["sweep", "plot", "--store", str(store), "--out", str(store)]) == 2
    _one_line_error(capsys, f"--out {store}", "is a file")


def test_probe_checks_its_outputs_first(tmp_path, monkeypatch, capsys):
    import deepstart.probe

    def forbidden(*args, **kwargs):
        raise AssertionError("trained although an output path was unusable")

    monkeypatch.setattr(deepstart.probe, "probe", forbidden)
    monkeypatch.setattr("deepstart.cli.check._load", forbidden)
    assert main(["probe", "mlp:depth=3", "--plot", str(tmp_path / "x" / "p.png")]) == 2
    _one_line_error(capsys, "--plot", "does not exist")
    assert main(["probe", "mlp:depth=3", "--json", str(tmp_path)]) == 2
    _one_line_error(capsys, "--json", "is a directory")


def test_reproduce_and_theory_check_their_outputs_first(tmp_path, no_work, capsys):
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    assert main(["reproduce", "pennington", "--tiny", "--out", str(afile)]) == 2
    _one_line_error(capsys, f"--out {afile}", "is a file")
    assert main(["reproduce", "pennington", "--tiny", "--out", str(afile / "sub")]) == 2
    _one_line_error(capsys, "cannot be created")
    assert main(["reproduce", "pennington", "--tiny", "--out", str(tmp_path / "o"),
                 "--store", str(tmp_path / "x" / "r.db")]) == 2
    _one_line_error(capsys, "--store", "does not exist")
    with pytest.raises(AssertionError, match="the work started"):  # a store inside the new --out folder is fine
        main(["reproduce", "pennington", "--tiny", "--out", str(tmp_path / "o"), "--store", str(tmp_path / "o" / "r.db")])
    assert main(["reproduce", "pennington", "--tiny", "--out", str(tmp_path / "o"), "--gallery", str(tmp_path)]) == 2
    _one_line_error(capsys, "--gallery", "is a directory")
    assert main(["theory", "phase", "--out", str(tmp_path / "x" / "p.png")]) == 2
    _one_line_error(capsys, "--out", "does not exist")
    assert not (tmp_path / "o").exists()


def test_check_output_folder_creates_nothing(tmp_path):
    deep = tmp_path / "a" / "b"
    assert _io.check_output_folder(deep, "--out") == deep
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ atomic writes
class _Interrupted(Exception):
    pass


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    _io.atomic_write(path, "old")
    path.chmod(0o640)
    with pytest.raises(_Interrupted):
        with _io.atomic_open(path, "w", encoding="utf-8") as fh:
            fh.write("half of the new cont")
            raise _Interrupted
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]
    _io.atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640  # the mode is kept
    fresh = _io.atomic_write(tmp_path / "fresh.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~mask  # as plain open() would create it


def test_interrupted_figure_and_csv_leave_nothing(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png = _io.atomic_savefig(fig, tmp_path / "f.png", dpi=50)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def broken(self, fh, **kwargs):
        fh.write(b"\x89PNG partial")
        raise _Interrupted

    monkeypatch.setattr(type(fig), "savefig", broken)
    with pytest.raises(_Interrupted):
        _io.atomic_savefig(fig, tmp_path / "g.png")
    plt.close(fig)
    assert sorted(os.listdir(tmp_path)) == ["f.png"]


def test_sweep_export_writes_the_csv_atomically(tmp_path, monkeypatch):
    import csv

    store = _store(tmp_path)

    class Boom(csv.DictWriter):
        def writerows(self, rows):
            raise _Interrupted

    (tmp_path / "t.csv").write_text("previous\n")
    monkeypatch.setattr(csv, "DictWriter", Boom)
    with pytest.raises(_Interrupted):
        main(["sweep", "export", "--store", str(store), "--csv", str(tmp_path / "t.csv")])
    assert (tmp_path / "t.csv").read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["s.db", "t.csv"]


# ------------------------------------------------------------------ Ray addresses
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_address_without_a_cluster_is_a_usage_error(tmp_path, no_work, capsys, monkeypatch):
    pytest.importorskip("ray")
    store = str(tmp_path / "s.db")
    port = _closed_port()
    argv = ["sweep", "run", "examples/sweeps/quick.toml", "--store", store, "--backend", "ray", "--ray-address"]
    assert main(argv + [f"127.0.0.1:{port}"]) == 2
    _one_line_error(capsys, f"no Ray cluster answers at 127.0.0.1:{port}")
    pytest.importorskip("grpc")  # Ray Client's transport, brought by the ray extra (ray[client])
    assert main(argv + [f"ray://127.0.0.1:{port}"]) == 2
    _one_line_error(capsys, f"--ray-address ray://127.0.0.1:{port}: no Ray cluster answers at 127.0.0.1:{port}")

    import ray._private.services as services

    def none_running(address):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(services, "canonicalize_bootstrap_address_or_die", none_running)
    assert main(argv + ["auto"]) == 2
    _one_line_error(capsys, "--ray-address auto", "no running Ray instance", "ray start --head")
    assert main(["sweep", "run", "examples/sweeps/quick.toml", "--store", store, "--ray-address", "auto"]) == 2
    _one_line_error(capsys, "--backend ray only")
    assert not os.path.exists(store)


def test_ray_extra_brings_ray_client():
    """The docs' ``--ray-address ray://HOST:10001`` path needs ray[client] (grpcio): the extra must bring it, and
    constraints.txt must pin what it brings."""
    from pathlib import Path

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.replace(" ", "").startswith("ray[client]") for r in extras["ray"]), extras["ray"]
    pins = {line.split("==")[0].lower() for line in (root / "constraints.txt").read_text().splitlines() if "==" in line}
    assert {"ray", "grpcio"} <= pins


def test_library_writers_are_atomic_too(tmp_path, monkeypatch):
    """Report.to_json, report_html and a reproduction's PaperReport.write go through deepstart._io: interrupted
    before the rename, each leaves the previous file whole and no temporary beside it."""
    import torch

    from deepstart.diagnose import check
    from deepstart.diagnose.html import report_html
    from deepstart.experiments.models import mlp
    from deepstart.experiments.reproduce.report import PaperReport

    report = check(mlp(4, 2, depth=2, width=8), input_shape=(4,), n_inits=2, jacobian=False,
                   generator=torch.Generator().manual_seed(0))
    paper = PaperReport(paper="p", title="t", citation="c", mode="tiny", settings={})
    for name in ("r.json", "r.html", "p.html"):
        (tmp_path / name).write_text("previous")

    def interrupted(fd):
        raise _Interrupted

    monkeypatch.setattr(_io.os, "fsync", interrupted)
    for write in (lambda: report.to_json(tmp_path / "r.json"), lambda: report_html(report, tmp_path / "r.html"),
                  lambda: paper.write(tmp_path)):
        with pytest.raises(_Interrupted):
            write()
    assert all((tmp_path / n).read_text() == "previous" for n in ("r.json", "r.html", "p.html"))
    assert sorted(os.listdir(tmp_path)) == ["p.html", "r.html", "r.json"]
