"""``deepstart data fetch`` / ``deepstart data where`` through ``main(argv)``."""
from __future__ import annotations

import json
import shutil

from deepstart.cli import main


def test_where_json(tmp_path, capsys):
    assert main(["data", "where", "--root", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["root"] == str(tmp_path) and out["root_source"] == "argument"
    assert set(out["datasets"]) == {"mnist", "fashion-mnist", "cifar10"}
    assert out["datasets"]["cifar10"] == "missing"


def test_where_text_on_shared_root(data_root, capsys):
    assert main(["data", "where", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert f"found: {data_root / 'mnist'}" in out and "cifar10-jpg.tar.gz" in out


def test_fetch_via_mirror(http_server, data_root, tmp_path, capsys):
    base, server = http_server
    shutil.copytree(data_root / "fashion-mnist", server.folder / "fashion-mnist")
    root = tmp_path / "root"
    assert main(["data", "fetch", "fashion-mnist", "--root", str(root), "--mirror", base, "--no-progress"]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 4 and all(p.startswith(str(root)) for p in printed)


def test_fetch_errors(http_server, tmp_path, capsys):
    base, _ = http_server
    assert main(["data", "fetch", "svhn", "--root", str(tmp_path)]) == 2
    assert "unknown dataset 'svhn'" in capsys.readouterr().err
    assert main(["data", "fetch", "mnist", "--root", str(tmp_path), "--mirror", base, "--no-progress"]) == 1
    assert "could not download" in capsys.readouterr().err
