"""Shared fixtures: seeded generators whose seed appears in failure messages, and the data root."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SEED = 20181128  # fixed so every run is deterministic; printed by the fixtures' ids


@pytest.fixture
def rng() -> np.random.Generator:
    """NumPy generator seeded with SEED (see tests/conftest.py)."""
    return np.random.default_rng(SEED)


@pytest.fixture
def generator():
    """torch.Generator seeded with SEED (see tests/conftest.py)."""
    torch = pytest.importorskip("torch")
    return torch.Generator().manual_seed(SEED)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Directory with the real MNIST / Fashion-MNIST / CIFAR-10 copies (env DEEPSTART_DATA, else ../shared/data)."""
    root = os.environ.get("DEEPSTART_DATA")
    path = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "mnist").is_dir():
        pytest.skip(f"real data not found at {path}; set DEEPSTART_DATA to the shared data folder")
    return path
