"""Shared fixtures: seeded generators whose seed appears in failure messages, the data root, one torch thread."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# The calibration zoo (tools/calibration/) lives beside the tests, outside the library's import path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Run torch single-threaded. The suite runs as 2 pytest-xdist workers on 2 cores (CI); two intra-op threads per
    worker oversubscribe them and make the many small matmuls/QRs of the Monte Carlo and training tests several
    times slower (a 200 × 200 QR ~10×). No result depends on the thread count."""
    try:
        import torch
    except ImportError:  # theory-only environments
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def seeded_mlp():
    """Factory of plain ``[Linear, activation] × depth`` nets, weights N(0, gain/width) from a seeded generator, zero
    biases: ``seeded_mlp(seed, depth=6, width=32, gain=2.0, activation=nn.ReLU)``."""
    import math

    torch = pytest.importorskip("torch")
    from torch import nn

    def build(seed: int, depth: int = 6, width: int = 32, gain: float = 2.0, activation=nn.ReLU):
        g = torch.Generator().manual_seed(seed)
        layers = []
        for _ in range(depth):
            lin = nn.Linear(width, width)
            with torch.no_grad():
                lin.weight.normal_(0, math.sqrt(gain / width), generator=g)
                lin.bias.zero_()
            layers += [lin, activation()]
        return nn.Sequential(*layers)

    return build
