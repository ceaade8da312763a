"""Downloads with mirrors tried in order, a tqdm progress bar, ``.part`` resume via HTTP Range, checksum checks.

A file is written to ``<dest>.part`` and renamed only after its checksum passes; a partial ``.part`` left by an
interrupted transfer is resumed with ``Range: bytes=<size>-`` (a server answering 200 instead of 206 restarts it).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from deepstart.experiments.data import registry
from deepstart.experiments.data.cifar import file_digest, find_source
from deepstart.experiments.data.idx import find_idx, read_bytes

_CHUNK = 1 << 16


def mirror_bases(base_urls: Sequence[str] | str | None) -> list[str] | None:
    """Override mirrors (laid out like the data root) from the argument, else ``$DEEPSTART_MIRROR``, else None."""
    if base_urls is None:
        env = os.environ.get(registry.ENV_MIRROR)
        base_urls = env.split() if env else None
    if isinstance(base_urls, str):
        base_urls = [base_urls]
    return [u if u.endswith("/") else u + "/" for u in base_urls] if base_urls else None


def _transfer(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URLs from the registry
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        from tqdm.auto import tqdm

        with open(part, "ab" if resumed else "wb") as out, tqdm(
                total=total, initial=have if resumed else 0, unit="B", unit_scale=True, desc=part.name[:-5],
                disable=not progress) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except http.client.IncompleteRead as exc:  # the server closed early: keep what came, for a resume
                out.write(exc.partial)
    size = part.stat().st_size
    if total is not None and size != total:
        raise OSError(f"transfer of {url} stopped at {size} of {total} bytes; the partial file {part} is kept, "
                      "run the same command again to resume")


def download(urls: Sequence[str], dest: Path, check: Callable[[Path], None], *, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Fetch ``dest`` from the first of ``urls`` that works and passes ``check`` (raises ValueError if bad).

    Network errors move on to the next mirror keeping the ``.part``; a checksum failure deletes it. When all fail,
    the last checksum failure is raised as ValueError (else an OSError listing every URL tried).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[str] = []
    bad: ValueError | None = None
    for url in urls:
        try:
            _transfer(url, part, progress=progress, timeout=timeout)
            check(part)
        except ValueError as exc:
            part.unlink(missing_ok=True)
            bad = ValueError(f"download of {dest.name} from {url} failed its checksum: {exc}. The bad file was "
                             f"deleted; try another mirror (base_urls= or ${registry.ENV_MIRROR}) and re-fetch")
            errors.append(f"{url}: {exc}")
            continue
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{url}: {exc}")
            continue
        os.replace(part, dest)
        return dest
    if bad is not None:
        raise bad
    raise OSError(f"could not download {dest.name}; tried:\n  " + "\n  ".join(errors))


def _idx_check(file: registry.IdxFile) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        if file_digest(path, "md5") == file.md5_gz:
            return
        digest = hashlib.sha256(read_bytes(path, gzipped=True)).hexdigest()  # a local mirror's gzip may differ
        if digest != file.sha256:
            raise ValueError(f"{file.name}.gz: neither the canonical MD5 {file.md5_gz} nor the SHA-256 of its "
                             f"content {file.sha256} matches (got {digest})")
    return check


def fetch(name: str, *, root=None, base_urls: Sequence[str] | str | None = None, progress: bool = True,
          timeout: float = 60.0) -> list[Path]:
    """Download dataset ``name`` into ``root`` (see ``resolve_root``) unless present; returns the files' paths.

    ``base_urls`` (or ``$DEEPSTART_MIRROR``, space-separated) replace the canonical mirrors with servers laid out
    like the data root (``<base>/mnist/train-images-idx3-ubyte.gz``, ``<base>/cifar10-jpg.tar.gz``).
    """
    info = registry.get_info(name)
    root_path, _ = registry.resolve_root(root)
    bases = mirror_bases(base_urls)
    if info.name == "cifar10":
        existing = find_source(root_path)
        if existing is not None:
            known = {registry.CIFAR_PYTHON[0]: registry.CIFAR_PYTHON, registry.CIFAR_JPG[0]: registry.CIFAR_JPG}
            if existing.name in known and existing.is_file():
                _verify_present(existing, _digest_check(*known[existing.name]), info.name)
            return [existing]
        candidates = [registry.CIFAR_PYTHON, registry.CIFAR_JPG] if bases else [registry.CIFAR_PYTHON]
        errors = []
        for fname, algorithm, digest in candidates:
            urls = [b + fname for b in (bases or info.mirrors)]
            check = _digest_check(fname, algorithm, digest)
            try:
                return [download(urls, root_path / fname, check, progress=progress, timeout=timeout)]
            except OSError as exc:
                errors.append(str(exc))
        raise OSError("could not download CIFAR-10:\n" + "\n".join(errors))
    directory = root_path / info.subdir
    paths = []
    for split in registry.SPLITS:
        for file in info.files[split]:
            found = find_idx(directory, file.name)
            if found is not None:
                _verify_present(found, _content_check(file), info.name)
            else:
                urls = [b + (f"{info.subdir}/" if bases else "") + file.name + ".gz" for b in (bases or info.mirrors)]
                found = download(urls, directory / f"{file.name}.gz", _idx_check(file), progress=progress,
                                 timeout=timeout)
            paths.append(found)
    return paths


def _content_check(file: registry.IdxFile) -> Callable[[Path], None]:
    """SHA-256 of the uncompressed content of a present IDX file (raw or ``.gz``)."""
    def check(path: Path) -> None:
        digest = hashlib.sha256(read_bytes(path)).hexdigest()  # a truncated gzip is a ValueError here already
        if digest != file.sha256:
            raise ValueError(f"SHA-256 of its content is {digest}, expected {file.sha256}")
    return check


def _verify_present(path: Path, check: Callable[[Path], None], name: str) -> None:
    """A file already in the data root must pass ``check``: fetch never reports a bad file as present."""
    try:
        check(path)
    except ValueError as exc:
        raise ValueError(f"{path} is already present but corrupt or truncated ({exc}); delete it and run "
                         f"`deepstart data fetch {name}` again to download a good copy") from None


def _digest_check(fname: str, algorithm: str, expected: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        got = file_digest(path, algorithm)
        if got != expected:
            raise ValueError(f"{fname}: {algorithm.upper()} is {got}, expected {expected}")
    return check
