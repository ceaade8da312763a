"""Fixtures for tests/init: torch runs single-threaded here.

The Monte Carlo tests do thousands of small matmuls and QR factorizations. On a shared 2-core machine (CI, or
workers running side by side) two intra-op threads per process oversubscribe the cores and make a 200 × 200 QR
~10× slower than one thread does; the results do not depend on the thread count.
"""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
