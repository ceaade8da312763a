"""IDX parsing on synthetic files: round trip, raw == gz, and bad files raising ValueError naming the file."""
from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest

from deepstart.experiments.data.idx import find_idx, parse_idx, read_idx


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)


def test_round_trip_raw_and_gz(tmp_path, images):
    data = _idx_bytes(images)
    (tmp_path / "a-idx3-ubyte").write_bytes(data)
    (tmp_path / "b-idx3-ubyte.gz").write_bytes(gzip.compress(data))
    sha = hashlib.sha256(data).hexdigest()
    raw = read_idx(tmp_path / "a-idx3-ubyte", sha256=sha)
    gz = read_idx(tmp_path / "b-idx3-ubyte.gz", sha256=sha)
    np.testing.assert_array_equal(raw, images)
    np.testing.assert_array_equal(gz, images)
    assert find_idx(tmp_path, "b-idx3-ubyte") == tmp_path / "b-idx3-ubyte.gz"
    assert find_idx(tmp_path, "missing") is None


def test_truncated_raw_names_file(tmp_path, images):
    path = tmp_path / "t-idx3-ubyte"
    path.write_bytes(_idx_bytes(images)[:-10])
    with pytest.raises(ValueError, match="t-idx3-ubyte.*truncated or corrupt.*delete"):
        read_idx(path)


def test_truncated_gzip_names_file(tmp_path, images):
    path = tmp_path / "t-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(images))[:-20])
    with pytest.raises(ValueError, match="t-idx3-ubyte.gz is truncated"):
        read_idx(path)


def test_checksum_mismatch_names_file(tmp_path, images):
    data = bytearray(_idx_bytes(images))
    sha = hashlib.sha256(bytes(data)).hexdigest()
    data[-1] ^= 0xFF  # one flipped pixel: header still consistent, so only the checksum catches it
    path = tmp_path / "c-idx3-ubyte"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="c-idx3-ubyte: SHA-256.*re-fetch"):
        read_idx(path, sha256=sha)


def test_bad_magic():
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x01\x00\x08\x01\x00\x00\x00\x01\x00")
