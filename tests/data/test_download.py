"""Downloads from a loopback HTTP server serving copies of the shared files, plus a truncated and a corrupted one."""
from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest

from deepstart.data import fetch, load
from deepstart.experiments.data.download import download
from deepstart.experiments.data.registry import DATASETS

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def mirror(http_server, data_root):
    """Base URL of a server holding a copy of the shared mnist folder."""
    base, server = http_server
    shutil.copytree(data_root / "mnist", server.folder / "mnist")
    return base, server


def _sha_ok(path):
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


def test_fetch_mnist_and_load(mirror, data_root, tmp_path):
    base, server = mirror
    root = tmp_path / "root"
    paths = fetch("mnist", root=root, base_urls=[base], progress=False)
    assert sorted(p.name for p in paths) == sorted(f"{f.name}.gz" for s in ("train", "test")
                                                   for f in DATASETS["mnist"].files[s])
    for path in paths:
        assert path.read_bytes() == (data_root / "mnist" / path.name).read_bytes()
    x, y = load("mnist", "test", root=root, limit=50)
    x0, y0 = load("mnist", "test", root=data_root, limit=50)
    assert x.equal(x0) and y.equal(y0)
    n = len(server.requests)
    fetch("mnist", root=root, base_urls=[base], progress=False)  # present and valid: nothing downloaded
    assert len(server.requests) == n


def test_mirrors_tried_in_order(mirror, tmp_path, monkeypatch):
    base, server = mirror
    monkeypatch.setenv("DEEPSTART_MIRROR", f"{base}nowhere/ {base}")
    x, _ = load("mnist", "test", root=tmp_path, download=True, progress=False, limit=2)
    assert x.shape == (2, 1, 28, 28)
    tried = [p for p, _ in server.requests if p.endswith("t10k-labels-idx1-ubyte.gz")]
    assert tried == ["/nowhere/mnist/t10k-labels-idx1-ubyte.gz", "/mnist/t10k-labels-idx1-ubyte.gz"]


def _one_file(tmp_path, base, name="t10k-labels-idx1-ubyte"):
    file = next(f for f in DATASETS["mnist"].files["test"] if f.name == name)
    from deepstart.experiments.data.download import _idx_check

    return tmp_path / "dl" / f"{name}.gz", _idx_check(file), [f"{base}mnist/{name}.gz"]


def test_truncated_download_is_an_error(mirror, tmp_path):
    base, server = mirror
    served = server.folder / "mnist" / T10K[1]
    served.write_bytes(served.read_bytes()[:-100])  # truncated file, served with a consistent Content-Length
    dest, check, urls = _one_file(tmp_path, base)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz.*truncated.*deleted"):
        download(urls, dest, check, progress=False)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_corrupted_download_is_an_error(mirror, tmp_path):
    base, server = mirror
    served = server.folder / "mnist" / T10K[1]
    data = bytearray(gzip.decompress(served.read_bytes()))
    data[-1] = (data[-1] + 1) % 10  # a wrong label, still a valid IDX and a valid gzip
    served.write_bytes(gzip.compress(bytes(data)))
    dest, check, urls = _one_file(tmp_path, base)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz.*checksum.*SHA-256"):
        download(urls, dest, check, progress=False)
    assert not dest.exists()


def test_resume_partial_file(mirror, data_root, tmp_path):
    base, server = mirror
    dest, check, urls = _one_file(tmp_path, base, "t10k-images-idx3-ubyte")
    full = (data_root / "mnist" / T10K[0]).read_bytes()
    dest.parent.mkdir()
    dest.with_name(dest.name + ".part").write_bytes(full[:700_000])
    download(urls, dest, check, progress=False)
    assert server.requests[-1][1] == "bytes=700000-"
    assert dest.read_bytes() == full


def test_interrupted_transfer_keeps_part_then_resumes(mirror, data_root, tmp_path):
    base, server = mirror
    dest, check, urls = _one_file(tmp_path, base, "t10k-images-idx3-ubyte")
    server.cut[f"/mnist/{T10K[0]}"] = 500_000  # the server closes the connection after 500 kB
    with pytest.raises(OSError, match="stopped at 500000"):
        download(urls, dest, check, progress=False)
    assert dest.with_name(dest.name + ".part").stat().st_size == 500_000
    server.cut.clear()
    download(urls, dest, check, progress=False)
    assert server.requests[-1][1] == "bytes=500000-"
    assert dest.read_bytes() == (data_root / "mnist" / T10K[0]).read_bytes()


def test_server_without_range_restarts(mirror, data_root, tmp_path):
    base, server = mirror
    server.ranges = False  # answers 200 with the whole file: the stale .part must be replaced, not appended to
    dest, check, urls = _one_file(tmp_path, base)
    dest.parent.mkdir()
    dest.with_name(dest.name + ".part").write_bytes(b"garbage")
    download(urls, dest, check, progress=False)
    assert dest.read_bytes() == (data_root / "mnist" / T10K[1]).read_bytes()


def test_no_mirror_works(http_server, tmp_path):
    base, _ = http_server
    with pytest.raises(OSError, match=r"(?s)could not download .*404"):
        fetch("fashion-mnist", root=tmp_path, base_urls=base, progress=False)


def test_fetch_cifar_from_mirror(http_server, data_root, tmp_path):
    base, server = http_server
    (server.folder / "cifar10-jpg.tar.gz").symlink_to(data_root / "cifar10-jpg.tar.gz")
    [path] = fetch("cifar10", root=tmp_path, base_urls=[base], progress=False)
    assert path.name == "cifar10-jpg.tar.gz" and path.stat().st_size == 19765597
    assert [p for p, _ in server.requests] == ["/cifar-10-python.tar.gz", "/cifar10-jpg.tar.gz"]


def test_present_but_corrupt_file_is_an_error_not_success(mirror, data_root, tmp_path, capsys):
    """fetch never reports a bad local file as present: a truncated and a corrupted one are each named."""
    from deepstart.cli import main

    base, server = mirror
    root = tmp_path / "root"
    fetch("mnist", root=root, base_urls=[base], progress=False)
    labels = root / "mnist" / T10K[1]
    good = labels.read_bytes()
    labels.write_bytes(good[:-50])  # truncated gzip
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz is already present but corrupt or truncated"
                                         r".*delete it and run `deepstart data fetch mnist`"):
        fetch("mnist", root=root, base_urls=[base], progress=False)
    data = bytearray(gzip.decompress(good))
    data[-1] = (data[-1] + 1) % 10  # valid gzip, valid IDX, wrong content
    labels.write_bytes(gzip.compress(bytes(data)))
    n = len(server.requests)
    assert main(["data", "fetch", "mnist", "--root", str(root), "--mirror", base, "--no-progress"]) == 2
    assert "SHA-256 of its content" in capsys.readouterr().err
    assert len(server.requests) == n  # nothing was downloaded over the bad file
    labels.unlink()  # the advice works: delete and fetch again
    fetch("mnist", root=root, base_urls=[base], progress=False)
    assert labels.read_bytes() == good
