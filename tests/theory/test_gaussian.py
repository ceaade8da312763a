"""Gaussian quadrature: exactness, kink splitting, broadcasting, errors."""
import math

import numpy as np
import pytest

from deepstart.theory import gaussian_expectation, gaussian_nodes


@pytest.mark.parametrize("kinks", [(), (0.0,), (-1.0, 1.0)])
def test_even_moments_exact(kinks):
    q = np.array([0.0, 0.25, 1.0, 4.0])
    for k, dfact in ((2, 1), (4, 3), (6, 15)):
        got = gaussian_expectation(lambda x: x ** k, q, order=32, kinks=kinks)
        assert np.allclose(got, dfact * q ** (k // 2), rtol=1e-12, atol=1e-14)


def test_weights_sum_to_one_and_shapes():
    x, w = gaussian_nodes(np.zeros((2, 1)), np.ones(3), order=10, kinks=(0.0, 2.0))
    assert x.shape == w.shape == (2, 3, 50)  # (2 kinks + 3) pieces × 10 nodes
    assert np.allclose(w.sum(-1), 1.0, atol=1e-14)


def test_kink_split_converges_fast_where_hermite_does_not():
    # E relu(z)^1 = 1/√(2π) exactly; the kink-split rule is exact to rounding, plain Gauss–Hermite is not
    exact = 1 / math.sqrt(2 * math.pi)
    split = gaussian_expectation(lambda x: np.maximum(x, 0), 1.0, order=20, kinks=(0.0,))
    plain = gaussian_expectation(lambda x: np.maximum(x, 0), 1.0, order=20)
    assert abs(split - exact) < 1e-14
    assert abs(plain - exact) > 1e-5


def test_mean_shift():
    got = gaussian_expectation(lambda x: x ** 2, 2.0, mean=3.0, order=8)
    assert got == pytest.approx(11.0, rel=1e-13)


@pytest.mark.parametrize("kw", [{"order": 0}, {"order": 2.5}, {"order": True}])
def test_bad_order(kw):
    with pytest.raises(ValueError, match="order"):
        gaussian_expectation(np.tanh, 1.0, **kw)


def test_negative_variance():
    with pytest.raises(ValueError, match="variance"):
        gaussian_expectation(np.tanh, -1.0)
