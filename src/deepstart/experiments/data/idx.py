"""IDX files (MNIST / Fashion-MNIST format, LeCun et al.), raw or gzipped, read with checksum verification.

Format: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions ``d``, then ``d`` big-endian uint32 sizes,
then the data in C order.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
           0x0E: np.dtype(">f8")}


def _fix_advice(path: Path) -> str:
    return f"delete {path} and re-fetch it (`deepstart data fetch <dataset>`), or point DEEPSTART_DATA at a good copy"


def read_bytes(path: str | Path, *, gzipped: bool | None = None) -> bytes:
    """The uncompressed bytes of ``path`` (gunzipped when ``gzipped``, default: name ends in ``.gz``).

    A truncated or corrupt gzip stream is a ValueError naming the file.
    """
    path = Path(path)
    if not (path.suffix == ".gz" if gzipped is None else gzipped):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{path} is truncated or not a valid gzip file ({exc}); {_fix_advice(path)}") from exc


def parse_idx(data: bytes, *, source: str | Path = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array; a bad header or a size that disagrees with it is a ValueError."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{source} is not an IDX file (bad magic {data[:4]!r}); {_fix_advice(Path(str(source)))}")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(v) for v in np.frombuffer(data[4:header], dtype=">u4")) if len(data) >= header else ()
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(shape) != ndim or len(data) != expected:
        raise ValueError(f"{source} has {len(data)} bytes but its IDX header {shape} needs {expected} "
                         f"(truncated or corrupt); {_fix_advice(Path(str(source)))}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx(path: str | Path, *, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``); with ``sha256`` the uncompressed bytes must match it (else ValueError)."""
    path = Path(path)
    data = read_bytes(path)
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise ValueError(f"{path}: SHA-256 of the uncompressed data is {digest}, expected {sha256} "
                             f"(corrupt or a different file); {_fix_advice(path)}")
    return parse_idx(data, source=path)


def find_idx(directory: Path, name: str) -> Path | None:
    """``directory/name`` or ``directory/name.gz``, whichever exists (raw first), else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None
