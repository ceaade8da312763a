"""CIFAR-10 decoding on a small tarball streamed from the real JPEG copy, python batches, and the decode cache."""
from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from deepstart.experiments.data import cifar
from deepstart.experiments.data.cifar import CLASSES, cifar_arrays, decode_jpeg_dir, decode_jpeg_tar, decode_python

N_PER_SPLIT = 30  # members taken from each split of the real tarball: enough for two classes, fast to decode


@pytest.fixture(scope="module")
def small_tar(data_root, tmp_path_factory):
    """A tarball with the first N_PER_SPLIT train and test JPEGs of the real copy (streamed, not extracted)."""
    out = tmp_path_factory.mktemp("cifar") / "small.tar.gz"
    counts = {"train": 0, "test": 0}
    with tarfile.open(data_root / "cifar10-jpg.tar.gz", "r|gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src:
            split = member.name.split("/")[0]
            if not member.isfile() or counts.get(split, N_PER_SPLIT) >= N_PER_SPLIT:
                if all(c >= N_PER_SPLIT for c in counts.values()):
                    break
                continue
            dst.addfile(member, io.BytesIO(src.extractfile(member).read()))
            counts[split] += 1
    return out


def _members(path):
    with tarfile.open(path) as tar:
        return sorted(m.name for m in tar if m.isfile())


def test_decode_small_tarball(small_tar):
    arrays = decode_jpeg_tar(small_tar, progress=False)
    names = _members(small_tar)
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        expected = [n for n in names if n.startswith(split)]
        assert x.shape == (len(expected), 3, 32, 32) and x.dtype == np.uint8
        # order is by (file number, class), so a `limit=` prefix is balanced over classes
        keys = sorted((int(n.split("/")[2][:-4]), CLASSES.index(n.split("/")[1])) for n in expected)
        assert y.tolist() == [label for _, label in keys]
        # JPEG photos are not flat: every image has spread in its pixels
        assert (x.reshape(len(x), -1).std(axis=1) > 5).all()


def test_jpeg_dir_matches_tarball(small_tar, tmp_path):
    with tarfile.open(small_tar) as tar:
        tar.extractall(tmp_path / "cifar10-jpg", filter="data")
    from_dir = decode_jpeg_dir(tmp_path / "cifar10-jpg", progress=False)
    from_tar = decode_jpeg_tar(small_tar, progress=False)
    for key in from_tar:
        np.testing.assert_array_equal(from_dir[key], from_tar[key])


def test_cache_is_reused_and_keyed_by_content(small_tar, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = cifar_arrays(small_tar, cache=cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(cifar, "decode_jpeg_tar", fail)
    again = cifar_arrays(small_tar, cache=cache, progress=False)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    # a copy under another data root, with a new mtime, is the same content: the same cache, nothing added
    copy = tmp_path / "other-root" / small_tar.name
    copy.parent.mkdir()
    copy.write_bytes(small_tar.read_bytes())
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    cifar_arrays(copy, cache=cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 1
    # a changed content is decoded again and replaces that source's cache (the other copy keeps the old one)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="decoded again"):
        cifar_arrays(copy, cache=cache, progress=False)


def test_a_changed_source_replaces_its_cache(small_tar, tmp_path):
    cache = tmp_path / "cache"
    src = tmp_path / small_tar.name
    src.write_bytes(small_tar.read_bytes())
    cifar_arrays(src, cache=cache, progress=False)
    before = {p.name for p in cache.glob("*.npz")}
    with open(src, "ab") as fh:  # appended bytes: a new size, new content
        fh.write(b"\0" * 1024)
    cifar_arrays(src, cache=cache, progress=False)
    after = {p.name for p in cache.glob("*.npz")}
    assert len(after) == 1 and after != before  # one cache per source, the old one removed


def test_fingerprint_reads_content_not_path(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    payload = bytes(range(256)) * 4096  # 1 MiB: all 16 samples overlap real content
    a.write_bytes(payload)
    b.write_bytes(payload)
    assert cifar.fingerprint(a) == cifar.fingerprint(b)
    for where in (0, len(payload) // 2, len(payload) - 1):  # first, a middle and the last byte are sampled
        changed = bytearray(payload)
        changed[where] ^= 1
        b.write_bytes(bytes(changed))
        assert cifar.fingerprint(a) != cifar.fingerprint(b), where
    folder = tmp_path / "d"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "1.jpg").write_bytes(b"12")
    first = cifar.fingerprint(folder)
    (folder / "x" / "2.jpg").write_bytes(b"3")
    assert cifar.fingerprint(folder) != first


def test_checksum_checked_before_decode(small_tar, tmp_path):
    with pytest.raises(ValueError, match=r"small.tar.gz: SHA256 .*delete .*re-fetch"):
        cifar_arrays(small_tar, expected=("sha256", "0" * 64), cache=tmp_path, progress=False)


def test_truncated_tarball_is_an_error(small_tar, tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(small_tar.read_bytes()[: small_tar.stat().st_size // 2])
    with pytest.raises(ValueError, match="bad.tar.gz is truncated or corrupt"):
        decode_jpeg_tar(bad, progress=False)


def _write_batches(folder, rng):
    folder.mkdir()
    data = {}
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": y}, f)
        data[name] = (x, y)
    return data


def test_python_batches_dir_and_tar(tmp_path, rng):
    data = _write_batches(tmp_path / "cifar-10-batches-py", rng)
    tar_path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    for source in (tmp_path / "cifar-10-batches-py", tar_path):
        arrays = decode_python(source)
        assert arrays["train_x"].shape == (20, 3, 32, 32)
        np.testing.assert_array_equal(arrays["train_x"][:4].reshape(4, -1), data["data_batch_1"][0])
        np.testing.assert_array_equal(arrays["test_y"], data["test_batch"][1])
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ValueError, match="cifar-10-batches-py.*re-fetch"):
        decode_python(tmp_path / "cifar-10-batches-py")


def test_load_cifar_from_python_layout(tmp_path, rng, monkeypatch):
    pytest.importorskip("torch")
    from deepstart.data import load

    data = _write_batches(tmp_path / "cifar-10-batches-py", rng)
    monkeypatch.setenv("DEEPSTART_CACHE", str(tmp_path / "cache"))
    x, y = load("cifar10", "test", root=tmp_path, normalize=False)
    assert x.shape == (3, 3, 32, 32) and y.tolist() == data["test_batch"][1]
    np.testing.assert_allclose(x.reshape(3, -1).numpy() * 255, data["test_batch"][0], atol=1e-4)
