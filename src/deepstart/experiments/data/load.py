"""``load(name, split)``: MNIST, Fashion-MNIST, CIFAR-10 as float32 tensors, and ``where()`` for the data locations."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from deepstart.experiments.data import registry
from deepstart.experiments.data.cifar import CIFAR_JPG, CIFAR_PYTHON, cifar_arrays, find_source
from deepstart.experiments.data.idx import find_idx, read_idx


def _missing(info: registry.DatasetInfo, looked: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{info.name} not found (looked for {looked}). Run `deepstart data fetch {info.name}` (or "
        f"load(..., download=True)), or set ${registry.ENV_ROOT} to a folder that holds it")


def _idx_arrays(info: registry.DatasetInfo, root, split: str) -> tuple[np.ndarray, np.ndarray]:
    directory = root / info.subdir
    arrays = []
    for file in info.files[split]:
        path = find_idx(directory, file.name)
        if path is None:
            raise _missing(info, f"{directory / file.name}[.gz]")
        arrays.append(read_idx(path, sha256=file.sha256))
    images, labels = arrays
    if len(images) != len(labels):
        raise ValueError(f"{directory}: {len(images)} images but {len(labels)} labels; delete the files and "
                         f"re-fetch with `deepstart data fetch {info.name}`")
    return images[:, None], labels.astype(np.int64)


def _cifar(root, split: str, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    source = find_source(root)
    if source is None:
        raise _missing(registry.DATASETS["cifar10"], f"cifar-10-batches-py/, {CIFAR_PYTHON[0]}, {CIFAR_JPG[0]} or "
                                                     f"cifar10-jpg/ in {root}")
    expected = {CIFAR_PYTHON[0]: CIFAR_PYTHON[1:], CIFAR_JPG[0]: CIFAR_JPG[1:]}.get(source.name)
    arrays = cifar_arrays(source, expected=expected, progress=progress)
    return arrays[f"{split}_x"], arrays[f"{split}_y"]


def load_arrays(name: str, split: str, *, root=None, download: bool = False, base_urls=None,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Raw arrays: uint8 images [N, C, H, W] and int64 labels [N] (verified; see :func:`load`)."""
    info = registry.get_info(name)
    registry.check_split(split)
    root_path, _ = registry.resolve_root(root)
    if download:
        from deepstart.experiments.data.download import fetch

        fetch(info.name, root=root_path, base_urls=base_urls, progress=progress)
    if info.name == "cifar10":
        return _cifar(root_path, split, progress)
    return _idx_arrays(info, root_path, split)


def load(name: str, split: str = "train", *, root=None, download: bool = False, normalize: bool = True,
         flatten: bool = False, limit: int | None = None, base_urls=None, progress: bool = True):
    """Load ``split`` ("train"/"test") of ``name`` ("mnist", "fashion-mnist", "cifar10") as ``(x, y)`` tensors.

    ``x`` float32 [N, C, H, W] (MNIST [N, 1, 28, 28]; [N, C*H*W] with ``flatten``) scaled to [0, 1], then, with
    ``normalize``, standardized per channel by the training set's mean/std (``DATASETS[name].mean/std``);
    ``y`` int64 [N]. ``limit`` keeps the first ``limit`` examples. Root: ``root``, else ``$DEEPSTART_DATA``,
    else ``~/.cache/deepstart/data``. Missing files raise FileNotFoundError (with the command to run) unless
    ``download``; corrupt or truncated files raise ValueError naming the file.
    """
    import torch

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    info = registry.get_info(name)
    images, labels = load_arrays(name, split, root=root, download=download, base_urls=base_urls, progress=progress)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0)  # astype copies: the IDX buffer is read-only
    if normalize:
        mean = torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1)
        x = (x - mean) / std
    if flatten:
        x = x.reshape(len(x), -1)
    return x, torch.from_numpy(np.array(labels, dtype=np.int64))


def _status(info: registry.DatasetInfo, root) -> str:
    if info.name == "cifar10":
        source = find_source(root)
        return f"found: {source}" if source else "missing"
    missing = [f.name for split in registry.SPLITS for f in info.files[split] if find_idx(root / info.subdir, f.name)
               is None]
    return "missing " + ", ".join(missing) if missing else f"found: {root / info.subdir}"


@dataclass(frozen=True)
class DataLocation:
    """Where data is read from and cached, and which datasets are present there."""

    root: str
    root_source: str
    cache: str
    datasets: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"root": self.root, "root_source": self.root_source, "cache": self.cache,
                "datasets": dict(self.datasets)}

    @classmethod
    def from_dict(cls, data: dict) -> DataLocation:
        return cls(str(data["root"]), str(data["root_source"]), str(data["cache"]), dict(data.get("datasets", {})))

    def __str__(self) -> str:
        lines = [f"root:  {self.root}  ({self.root_source})", f"cache: {self.cache}"]
        lines += [f"  {name:14s} {status}" for name, status in self.datasets.items()]
        return "\n".join(lines)


def where(root=None) -> DataLocation:
    """The data root (argument, ``$DEEPSTART_DATA`` or per-user cache), the decode cache and each dataset's status."""
    root_path, source = registry.resolve_root(root)
    statuses = {name: _status(info, root_path) for name, info in registry.DATASETS.items()}
    return DataLocation(os.fspath(root_path), source, os.fspath(registry.cache_dir()), statuses)
