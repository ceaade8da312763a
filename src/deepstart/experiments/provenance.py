"""Where a stored training result came from: a fingerprint of everything that changes it besides its config.

:attr:`Trial.id <deepstart.experiments.trial.Trial.id>` hashes the trial's configuration only, so a store cannot tell
from the id alone that the code, the data or the machine that produced a result has changed since. Each result is
therefore stored with a :class:`Provenance` and its :attr:`~Provenance.fingerprint` (SHA-256, 16 hex digits, of):

- ``source``: the bytes of the modules a trial runs (:data:`SOURCE_MODULES`: the models, the ``deepstart.init``
  package and what it builds on, ``deepstart.nn`` and ``deepstart.theory`` (init schemes compute their variances
  there), training (``train``, ``batched``, ``fastmlp``), trials and data loading, metrics), hashed once per process;
- ``data``: the dataset's content and normalization. For MNIST/Fashion-MNIST the registry's SHA-256s of the IDX
  files (the loader refuses any other bytes) and mean/std; for CIFAR-10 the digest of the source found under the
  data root (tarball: the registry digest the loader verifies; an extracted folder: its file bytes); for ``"toy"``
  the generator's source; for tensors passed in (``run_sweep(..., data=...)``) their bytes;
- ``torch`` (version), ``dtype`` (the default float dtype) and ``device`` (``"cpu"``, ``"cuda (NVIDIA H100 ...)"``).

:func:`deepstart.experiments.runners.run_sweep` compares a stored fingerprint with the expected one: a result whose
fingerprint differs (or has none: stores written before fingerprints existed) is *stale*; it is trained again and
replaced, or, with ``reuse_stale=True``, kept and counted as reused-stale. Never silently.

Example::

    from deepstart.experiments.provenance import provenance
    p = provenance("toy", device="cpu")
    p.fingerprint, p.to_dict()           # '3f2a…', {'source': …, 'data': …, 'torch': '2.4.1', …}
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["Provenance", "provenance", "source_hash", "data_hash", "SOURCE_MODULES"]

# Packages (every .py file below them) and modules whose code decides a trial's numbers.
SOURCE_MODULES = ("deepstart.init", "deepstart.nn", "deepstart.theory", "deepstart.experiments.data",
                  "deepstart.experiments.models", "deepstart.experiments.train", "deepstart.experiments.batched",
                  "deepstart.experiments.fastmlp", "deepstart.experiments.trial", "deepstart.experiments.metrics")


@dataclass(frozen=True)
class Provenance:
    """What a result depends on besides its config; ``fingerprint`` is the hash stored beside the result."""

    source: str
    data: str
    torch: str
    dtype: str
    device: str

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def changes(self, other: dict | None) -> list[str]:
        """Names of the fields that differ from ``other`` (a stored ``to_dict()``; None: everything is unknown)."""
        if not other:
            return ["no fingerprint"]
        return [f.name for f in fields(self) if other.get(f.name) != getattr(self, f.name)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Provenance:
        return cls(**{f.name: str(data[f.name]) for f in fields(cls)})


def _module_files(name: str) -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return []
    if spec.submodule_search_locations:  # a package: every module file below it
        return sorted(p for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.py"))
    return [Path(spec.origin)]


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 (16 hex digits) of the bytes of :data:`SOURCE_MODULES`' files, with their names; cached per process."""
    digest = hashlib.sha256()
    for name in SOURCE_MODULES:
        for path in _module_files(name):
            digest.update(f"{name}:{path.name}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _hash_tensors(data) -> str:
    digest = hashlib.sha256()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        t = getattr(data, name).detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]


def _hash_files(root: Path) -> str:
    digest = hashlib.sha256()
    paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for p in paths:
        digest.update(f"{p.relative_to(root) if root.is_dir() else p.name}\n".encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def _registry_hash(dataset: str, root: str) -> str:
    from deepstart.experiments.data import registry

    if dataset == "toy":
        import inspect

        from deepstart.experiments import trial

        return "toy:" + hashlib.sha256(inspect.getsource(trial._toy).encode()).hexdigest()[:16]
    try:
        info = registry.get_info(dataset)
    except ValueError:  # a name only deepstart.data.load's future versions know: its name is all we can say
        return f"{dataset}:unknown"
    norm = {"mean": list(info.mean), "std": list(info.std)}
    if info.files:  # IDX: the loader verifies these SHA-256s, so they name the bytes exactly
        content = [f.sha256 for split in registry.SPLITS for f in info.files[split]]
    else:
        from deepstart.experiments.data.cifar import find_source

        source = find_source(Path(root))
        known = {registry.CIFAR_PYTHON[0]: registry.CIFAR_PYTHON[2], registry.CIFAR_JPG[0]: registry.CIFAR_JPG[2]}
        if source is None:
            return f"{info.name}:missing"
        content = [known.get(source.name) or _hash_files(source)]
    text = json.dumps({"content": content, **norm}, sort_keys=True)
    return f"{info.name}:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def data_hash(dataset: str, data=None) -> str:
    """Fingerprint of the data a trial on ``dataset`` trains on (``data``: the tensors passed in, if any)."""
    if data is not None:
        d = data.get(dataset) if isinstance(data, dict) else data
        if d is not None:
            return f"{dataset}:tensors:{_hash_tensors(d)}"
    from deepstart.experiments.data import registry

    root = str(registry.resolve_root()[0])
    digest = _registry_hash(dataset, root)
    if digest.endswith(":missing"):  # not cached: data fetched later in this process gets its real digest
        _registry_hash.cache_clear()
    return digest


def device_label(device=None) -> str:
    """``"cpu"``, ``"mps"``, or ``"cuda (<GPU name>)"`` (the GPU model changes the arithmetic, not its index)."""
    from deepstart.experiments.train import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return dev.type


def provenance(dataset: str, *, device=None, data=None) -> Provenance:
    """The :class:`Provenance` a trial on ``dataset`` trained on ``device`` would be stored with here and now."""
    import torch

    return Provenance(source_hash(), data_hash(dataset, data), torch.__version__,
                      str(torch.get_default_dtype()).replace("torch.", ""), device_label(device))
