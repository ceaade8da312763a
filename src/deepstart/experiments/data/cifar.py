"""CIFAR-10 (Krizhevsky 2009) from its python batches or from the JPEG folder/tarball layout, decoded once and cached.

Layouts accepted under a data root (first found wins):
``cifar-10-batches-py/`` (extracted python batches), ``cifar-10-python.tar.gz`` (the canonical download),
``cifar10-jpg.tar.gz`` or ``cifar10-jpg/`` (``{train,test}/<class>/NNNN.jpg``; class folders sorted give the labels).
JPEG images are ordered by (file number, class), so the first ``n`` examples are balanced over classes.
Decoded arrays go to a writable cache (``$DEEPSTART_CACHE`` or the per-user cache) as an ``.npz`` of uint8 arrays
keyed by the source's content (:func:`fingerprint`), not by where it lies: every copy of the same data, under any
data root, shares one decoded cache (185 MB for the full set), and a source whose content changes replaces its old
cache instead of adding one. The source root may be read-only.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from deepstart.experiments.data.registry import CIFAR_JPG, CIFAR_PYTHON, DATASETS, cache_dir

CLASSES = DATASETS["cifar10"].classes
_SOURCES = ("cifar-10-batches-py", CIFAR_PYTHON[0], CIFAR_JPG[0], "cifar10-jpg")


def find_source(root: Path) -> Path | None:
    """The first CIFAR-10 source under ``root`` (see the module docstring), else None."""
    for name in _SOURCES:
        if (root / name).exists():
            return root / name
    return None


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, algorithm: str, expected: str) -> None:
    """ValueError naming ``path`` and the fix when its ``algorithm`` digest is not ``expected``."""
    got = file_digest(path, algorithm)
    if got != expected:
        raise ValueError(f"{path}: {algorithm.upper()} is {got}, expected {expected} (corrupt or truncated); "
                         f"delete {path} and re-fetch it with `deepstart data fetch cifar10`")


def _jpeg_key(member: str) -> tuple[str, int, int, str] | None:
    parts = PurePosixPath(member).parts[-3:]
    if len(parts) != 3 or parts[0] not in ("train", "test") or not parts[2].lower().endswith((".jpg", ".jpeg")):
        return None
    split, cls, fname = parts
    if cls not in CLASSES:
        raise ValueError(f"unexpected class folder {cls!r} in {member}; CIFAR-10 classes are {list(CLASSES)}")
    stem = PurePosixPath(fname).stem
    return split, int(stem) if stem.isdigit() else 0, CLASSES.index(cls), stem


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)


def _collect(items, progress: bool, total: int | None) -> dict[str, np.ndarray]:
    from tqdm.auto import tqdm

    found: dict[str, list] = {"train": [], "test": []}
    for key, data in tqdm(items, total=total, desc="decoding CIFAR-10 JPEGs", unit="img", disable=not progress):
        found[key[0]].append((key[1:], _decode(data)))
    out = {}
    for split, rows in found.items():
        rows.sort(key=lambda r: (r[0][0], r[0][1], r[0][2]))
        out[f"{split}_x"] = np.stack([r[1] for r in rows]) if rows else np.zeros((0, 3, 32, 32), np.uint8)
        out[f"{split}_y"] = np.array([r[0][1] for r in rows], dtype=np.int64)
    return out


def decode_jpeg_tar(path: Path, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Stream the JPEG tarball and decode every image: ``{train,test}_{x,y}`` (x uint8 [N,3,32,32], y int64)."""
    def items():
        try:
            with tarfile.open(path, "r|*") as tar:
                for member in tar:
                    key = _jpeg_key(member.name) if member.isfile() else None
                    if key is not None:
                        yield key, tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ValueError(f"{path} is truncated or corrupt ({exc}); delete it and re-fetch it with "
                             "`deepstart data fetch cifar10`") from exc
    return _collect(items(), progress, None)


def decode_jpeg_dir(path: Path, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Decode a ``{train,test}/<class>/*.jpg`` folder (same result as :func:`decode_jpeg_tar`)."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    items = ((key, p.read_bytes()) for p in files if (key := _jpeg_key(p.relative_to(path).as_posix())))
    return _collect(items, progress, len(files))


def _unpickle(stream) -> tuple[np.ndarray, np.ndarray]:
    batch = pickle.load(stream, encoding="bytes")  # the canonical batches are pickles of dicts of bytes keys
    x = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return x, np.asarray(batch[b"labels"], dtype=np.int64)


def decode_python(path: Path) -> dict[str, np.ndarray]:
    """Read the python batches (``data_batch_1..5``, ``test_batch``) from the tarball or the extracted folder."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    parts: dict[str, tuple] = {}
    try:
        if path.is_dir():
            for name in names:
                with open(path / name, "rb") as stream:
                    parts[name] = _unpickle(stream)
        else:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if member.isfile() and PurePosixPath(member.name).name in names:
                        parts[PurePosixPath(member.name).name] = _unpickle(tar.extractfile(member))
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, KeyError, ValueError) as exc:
        raise ValueError(f"{path} is truncated or corrupt ({exc}); delete it and re-fetch it with "
                         "`deepstart data fetch cifar10`") from exc
    missing = [n for n in names if n not in parts]
    if missing:
        raise ValueError(f"{path} lacks CIFAR-10 batches {missing}; delete it and re-fetch it with "
                         "`deepstart data fetch cifar10`")
    train = [parts[n] for n in names[:5]]
    return {"train_x": np.concatenate([t[0] for t in train]), "train_y": np.concatenate([t[1] for t in train]),
            "test_x": parts["test_batch"][0], "test_y": parts["test_batch"][1]}


_SAMPLES, _CHUNK = 16, 1 << 16  # 16 chunks of 64 KiB spread over a file: ~1 MiB read per fingerprint


def fingerprint(source: Path) -> str:
    """A digest of ``source``'s content that does not depend on its path or mtime: for a file its size and 16
    chunks of 64 KiB spread evenly over it (the first and last included); for a folder the relative path and size
    of every file in it. Copies of the same data get the same fingerprint; any change of size, of a sampled byte or
    of the file list gives a new one (a full checksum is verified when the source is decoded)."""
    h = hashlib.sha256()
    if source.is_dir():
        for p in sorted(source.rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(source).as_posix()}\0{p.stat().st_size}\n".encode())
        return h.hexdigest()
    size = source.stat().st_size
    h.update(f"{size}\n".encode())
    with open(source, "rb") as fh:
        for i in range(_SAMPLES):
            fh.seek(max(0, (size - _CHUNK) * i // (_SAMPLES - 1)))
            h.update(fh.read(_CHUNK))
    return h.hexdigest()


def cache_path(source: Path, cache: Path | None = None) -> Path:
    """Cache file for ``source``, keyed by its content (:func:`fingerprint`): shared by every copy of it."""
    return (cache or cache_dir()) / f"cifar10-{fingerprint(source)[:24]}.npz"


_INDEX = "cifar10-sources.json"  # resolved source path -> its cache file name (to drop a replaced source's cache)


def _replace_in_index(source: Path, target: Path) -> None:
    """Record ``target`` as ``source``'s cache and delete the cache ``source`` had before, unless another source
    still uses it: one decoded cache per source, however often its content changes."""
    import json

    from deepstart._io import atomic_write

    index_path = target.parent / _INDEX
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        index = index if isinstance(index, dict) else {}
    except (OSError, ValueError):
        index = {}
    key = str(source.resolve())
    old = index.get(key)
    index[key] = target.name
    if old and old != target.name and old not in index.values() and "/" not in old:
        try:
            (target.parent / old).unlink()
        except OSError:
            pass
    atomic_write(index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")


def cifar_arrays(source: Path, *, expected: tuple[str, str] | None = None, cache: Path | None = None,
                 progress: bool = True) -> dict[str, np.ndarray]:
    """Decoded arrays of ``source``, from the cache when present, else decoded (checksum ``expected`` first)."""
    target = cache_path(source, cache)
    if target.is_file():
        with np.load(target) as npz:
            arrays = {k: npz[k] for k in npz.files}
        _replace_in_index(source, target)
        return arrays
    if expected is not None and source.is_file():
        verify_file(source, *expected)
    if source.name.startswith("cifar-10"):
        arrays = decode_python(source)
    elif source.is_dir():
        arrays = decode_jpeg_dir(source, progress=progress)
    else:
        arrays = decode_jpeg_tar(source, progress=progress)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, target)
    _replace_in_index(source, target)
    return arrays
