"""Dataset registry and data locations: file names, checksums, mirrors, normalization, root and cache dirs.

Checksums: the MD5s of the canonical ``.gz`` files are torchvision's (``torchvision/datasets/mnist.py``,
``MNIST.resources`` / ``FashionMNIST.resources``); the SHA-256s of the *uncompressed* IDX files and of the CIFAR-10
JPEG tarball come from ``../shared/data/README.md``. A local ``.gz`` whose bytes differ from the canonical download
but whose uncompressed content is the original passes (the SHA-256 is checked after decompression).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_ROOT = "DEEPSTART_DATA"
ENV_CACHE = "DEEPSTART_CACHE"
ENV_MIRROR = "DEEPSTART_MIRROR"


@dataclass(frozen=True)
class IdxFile:
    """One IDX file: ``name`` without ``.gz``; ``md5_gz`` of the canonical download; ``sha256`` of the raw bytes."""

    name: str
    md5_gz: str
    sha256: str


@dataclass(frozen=True)
class DatasetInfo:
    """What ``load`` needs to know about a dataset."""

    name: str
    subdir: str
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    mirrors: tuple[str, ...]
    files: dict  # split -> (images IdxFile, labels IdxFile) for IDX datasets; empty for CIFAR-10
    classes: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "mean": list(self.mean), "std": list(self.std),
                "mirrors": list(self.mirrors), "classes": list(self.classes)}


def _idx(kind: str, split: str, md5: str, sha: str) -> IdxFile:
    prefix = "train" if split == "train" else "t10k"
    dims = "idx3" if kind == "images" else "idx1"
    return IdxFile(f"{prefix}-{kind}-{dims}-ubyte", md5, sha)


# mean/std of the training pixels in [0, 1] (the usual torchvision-tutorial constants; tests recompute them).
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", "mnist", (1, 28, 28), (0.1307,), (0.3081,),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        {"train": (_idx("images", "train", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
                   _idx("labels", "train", "d53e105ee54ea40749a09fcbcd1e9432",
                        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5")),
         "test": (_idx("images", "test", "9fb629c4189551a2d022fa330f9573f3",
                       "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
                  _idx("labels", "test", "ec29112dd5afa0611ce80d1b7f02629c",
                       "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"))},
        tuple(str(i) for i in range(10))),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "fashion-mnist", (1, 28, 28), (0.2860,), (0.3530,),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train": (_idx("images", "train", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
                   _idx("labels", "train", "25c81989df183df01b3e8a0aad5dffbe",
                        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9")),
         "test": (_idx("images", "test", "bef4ecab320f06d8554ea6380940ec79",
                       "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
                  _idx("labels", "test", "bb300cfdad3c16e7a12a480ee83cd310",
                       "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"))},
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")),
    "cifar10": DatasetInfo(
        "cifar10", "", (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        ("https://www.cs.toronto.edu/~kriz/",), {},
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
}
SPLITS = ("train", "test")

# CIFAR-10 sources: (file name, algorithm, digest). The python tarball's MD5 is its maintainer's; the JPEG copy's
# SHA-256 is from ../shared/data/README.md.
CIFAR_PYTHON = ("cifar-10-python.tar.gz", "md5", "c58f30108f718f92721af3b95e74349a")
CIFAR_JPG = ("cifar10-jpg.tar.gz", "sha256", "d34c68f61cca57aa9144c8f25bda427abb9921bd642d5857a2fc1a6b4416f965")


def get_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; unknown names raise ValueError listing the valid ones."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}; choose one of {sorted(DATASETS)}")
    key = name.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[key]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    return split


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/deepstart`` or ``~/.cache/deepstart``."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "deepstart"


def resolve_root(root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Data root and where it came from: the argument, else ``$DEEPSTART_DATA``, else the per-user cache."""
    if root is not None:
        return Path(root).expanduser(), "argument"
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser(), f"${ENV_ROOT}"
    return user_cache_dir() / "data", "per-user cache"


def cache_dir() -> Path:
    """Writable cache for decoded arrays: ``$DEEPSTART_CACHE``, else ``<per-user cache>/decoded``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else user_cache_dir() / "decoded"
