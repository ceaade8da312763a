"""``load`` on the real MNIST / Fashion-MNIST copies, root resolution, and the errors for missing data."""
from __future__ import annotations

import pytest

from deepstart.data import DATASETS, load, where
from deepstart.experiments.data.registry import resolve_root, user_cache_dir

torch = pytest.importorskip("torch")


def test_mnist_train_shapes_and_normalization(data_root):
    x, y = load("mnist", "train", root=data_root)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    # First ten MNIST training labels (LeCun's train-labels-idx1-ubyte; e.g. torchvision MNIST(train=True).targets[:10]).
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(y).tolist()[:2] == [5923, 6742]  # class counts of the MNIST training set (0s and 1s)
    # DATASETS' mean/std (0.1307, 0.3081) are rounded to 4 digits, so the normalized mean is within 1e-4/0.3081
    # of 0 and the std within 1e-4/0.3081 relative of 1 (plus float32 summation error).
    assert abs(x.mean().item()) < 5e-4
    assert abs(x.std().item() - 1) < 5e-4


def test_unnormalized_range_flatten_limit(data_root):
    x, y = load("fashion-mnist", "test", root=data_root, normalize=False, flatten=True, limit=100)
    assert x.shape == (100, 784) and y.shape == (100,)
    assert x.min().item() == 0.0 and x.max().item() == 1.0
    assert set(y.tolist()) <= set(range(10))
    full_x, full_y = load("fashion-mnist", "test", root=data_root, normalize=False)
    assert torch.equal(full_x[:100].reshape(100, -1), x) and torch.equal(full_y[:100], y)
    assert torch.bincount(full_y).tolist() == [1000] * 10  # Fashion-MNIST test set: 1,000 per class


def test_fashion_normalization_constants(data_root):
    x, _ = load("fashion-mnist", "train", root=data_root, normalize=False)
    info = DATASETS["fashion-mnist"]
    assert abs(x.mean().item() - info.mean[0]) < 1e-4 and abs(x.std().item() - info.std[0]) < 1e-4


def test_env_root(data_root, monkeypatch):
    monkeypatch.setenv("DEEPSTART_DATA", str(data_root))
    x, _ = load("mnist", "test", limit=3)
    assert x.shape == (3, 1, 28, 28)
    assert resolve_root(None) == (data_root, "$DEEPSTART_DATA")
    assert where().datasets["mnist"].startswith("found")


def test_default_root_honours_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPSTART_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir() == tmp_path / "deepstart"
    assert resolve_root(None) == (tmp_path / "deepstart" / "data", "per-user cache")
    assert resolve_root(tmp_path / "x")[1] == "argument"


def test_missing_data_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"deepstart data fetch mnist.*DEEPSTART_DATA"):
        load("mnist", "train", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"deepstart data fetch cifar10"):
        load("cifar10", "train", root=tmp_path)
    location = where(tmp_path)
    assert location.datasets["mnist"].startswith("missing") and location.datasets["cifar10"] == "missing"
    assert type(location).from_dict(location.to_dict()) == location


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'svhn'.*cifar10"):
        load("svhn", "train", root=tmp_path)
    with pytest.raises(ValueError, match=r"unknown split 'valid'.*train"):
        load("mnist", "valid", root=tmp_path)
    with pytest.raises(ValueError, match="limit"):
        load("mnist", "train", root=tmp_path, limit=-1)
    with pytest.raises(TypeError, match="dataset name"):
        load(3, "train", root=tmp_path)
