import numpy as np
import pytest
from scipy.integrate import quad

from deepstart.theory.free_probability import (
    closed_form_moments, fuss_catalan_density, fuss_catalan_lambda_max, fuss_catalan_moment)


@pytest.mark.parametrize("L", [1, 2, 5])
def test_fuss_catalan_density_moments(L):
    lmax = fuss_catalan_lambda_max(L)
    f = lambda x, k: x ** k * fuss_catalan_density(np.array([x]), L)[0]
    for k in (0, 1, 2):
        val = quad(f, 0, lmax, args=(k,), limit=400, points=[1e-6])[0]
        assert val == pytest.approx(fuss_catalan_moment(L, k), rel=2e-3)


def test_fuss_catalan_L1_is_marchenko_pastur():
    x = np.array([0.5, 1.0, 2.0, 3.5])
    mp = np.sqrt(x * (4 - x)) / (2 * np.pi * x)  # MP ratio 1
    assert np.allclose(fuss_catalan_density(x, 1), mp, rtol=1e-6)


def test_reference_variances():
    # THEORY.md §2: hard-tanh q*=1, L=8 critical; p = P(|h|<1) for h~N(0,1)
    from scipy.stats import norm
    p = norm.cdf(1) - norm.cdf(-1)
    for w, ref in (("orthogonal", 3.7184), ("gaussian", 11.7184)):
        m = closed_form_moments(p, p, 1 / p, 8, w)
        assert m["variance"] == pytest.approx(ref, rel=1e-4)
    assert closed_form_moments(0.5, 0.5, 2.0, 8, "gaussian")["variance"] == pytest.approx(16)


def test_bad_input():
    with pytest.raises(ValueError, match="weights"):
        closed_form_moments(1, 1, 1, 2, "uniform")
    with pytest.raises(ValueError, match="depth"):
        fuss_catalan_density([1.0], 0)
