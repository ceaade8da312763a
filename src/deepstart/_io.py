"""Output files: checked before any work, written atomically.

:func:`check_output_file` / :func:`check_output_folder` raise :class:`OutputPathError` (a ``ValueError``: the CLI
prints it as one line, exit code 2) naming the path and what is wrong with it — a missing folder, a folder that
cannot be written, a directory given where a file is expected — so a command refuses *before* it measures or
trains rather than losing the work at the end. :func:`atomic_open` / :func:`atomic_write` / :func:`atomic_savefig`
write into a temporary file in the destination's own folder and ``os.replace`` it over the destination, so an
interrupted write (Ctrl-C, a full disk, a crash) leaves the old file or none, never half a file.

NumPy-free and torch-free (the CLI's parser imports this).
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputPathError", "check_output_file", "check_output_folder", "atomic_open", "atomic_write",
           "atomic_savefig"]


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names the path and the reason."""


_SUFFIX = {"--html": ".html", "--json": ".json", "--csv": ".csv", "--store": ".db", "--gallery": ".md",
           "--out": ".png"}


def _label(path, option: str) -> str:
    return f"{option} {path}" if option else str(path)


def _probe(folder: Path, label: str) -> None:
    """Create and delete a file in ``folder``: the only test that holds for root, read-only mounts and ACLs."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".deepstart-probe-")
    except OSError as exc:
        raise OutputPathError(f"{label}: cannot write in folder {folder} ({exc.strerror or exc}); choose a "
                              "writable folder") from None
    os.close(fd)
    os.unlink(tmp)


def check_output_file(path, option: str = "") -> Path:
    """``path`` as a :class:`~pathlib.Path` if a file can be written there (its folder exists and is writable, and
    it is not a directory); otherwise :class:`OutputPathError`. ``option`` (e.g. ``"--html"``) prefixes the
    message. Nothing is left behind."""
    p = Path(path)
    label = _label(path, option)
    if str(path) == "" or p.is_dir():
        example = p / f"out{_SUFFIX.get(option, '')}"
        raise OutputPathError(f"{label}: is a directory; give a file name inside it, e.g. {example}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.exists():
        raise OutputPathError(f"{label}: folder {folder} does not exist; create it first (mkdir -p {folder}) "
                              "or choose another path")
    if not folder.is_dir():
        raise OutputPathError(f"{label}: {folder} is a file, not a folder")
    _probe(folder, label)
    return p


def check_output_folder(path, option: str = "") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a writable folder, or can be created (its nearest existing
    ancestor is a writable folder); otherwise :class:`OutputPathError`. Nothing is created."""
    p = Path(path)
    label = _label(path, option)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{label}: is a file; give a folder")
    existing = p
    while not existing.exists():
        parent = existing.parent
        if parent == existing:
            break
        existing = parent
    existing = existing if str(existing) else Path(".")
    if not existing.is_dir():
        raise OutputPathError(f"{label}: {existing} is a file, so the folder cannot be created")
    _probe(existing, label)
    return p


def _mode_for(path: Path) -> int:
    """The permission bits the file would get from a plain ``open(path, "w")``: the old file's, else 0o666 & ~umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextmanager
def atomic_open(path, mode: str = "w", **kwargs):
    """``open()`` that writes a temporary file beside ``path`` and renames it over ``path`` when the block ends
    without an exception (on an exception the temporary file is removed and ``path`` is untouched)."""
    if not any(m in mode for m in "wx"):
        raise ValueError(f"atomic_open writes whole files: mode must contain 'w', got {mode!r}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode.replace("x", "w"), **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write(path, data, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` (``str`` or ``bytes``) to ``path`` atomically; returns ``Path(path)``."""
    binary = isinstance(data, (bytes, bytearray, memoryview))
    with atomic_open(path, "wb" if binary else "w", **({} if binary else {"encoding": encoding})) as fh:
        fh.write(data)
    return Path(path)


def atomic_savefig(fig, path, **kwargs) -> Path:
    """``fig.savefig(path, **kwargs)`` atomically; the format comes from the file name's suffix (png, svg, pdf)."""
    path = Path(path)
    fmt = kwargs.pop("format", None) or (path.suffix.lstrip(".").lower() or "png")
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format=fmt, **kwargs)
    return path
