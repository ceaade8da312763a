"""The shared bracketed Newton (deepstart.theory._roots) against closed-form roots."""
import numpy as np

from deepstart.theory._roots import newton_in_bracket


def test_cube_roots_both_bracket_orientations():
    c = np.array([2.0, 5.0, 0.5, 1e-6])
    F = lambda x, a: (x ** 3 - c[a], 3 * x ** 2)  # noqa: E731 - increasing: negative at lo
    roots = newton_in_bracket(F, np.zeros(4), np.full(4, 3.0), np.full(4, 3.0), positive_at_lo=False)
    assert np.allclose(roots, np.cbrt(c), rtol=1e-12)
    G = lambda x, a: (c[a] - x ** 3, -3 * x ** 2)  # noqa: E731 - decreasing: positive at lo
    assert np.allclose(newton_in_bracket(G, np.zeros(4), np.full(4, 3.0), np.full(4, 0.1)), np.cbrt(c), rtol=1e-12)


def test_roots_next_to_an_extremum_converge_where_plain_newton_crawls():
    # 1 − z² = λ with λ → 1: the root √(1 − λ) sits next to the maximum at 0 where f' → 0
    lam = 1 - np.array([1e-2, 1e-6, 1e-12])
    F = lambda z, a: (1 - z ** 2 - lam[a], -2 * z)  # noqa: E731
    roots = newton_in_bracket(F, np.zeros(3), np.ones(3), np.ones(3), tol=0.0, atol=1e-15, max_iter=80)
    # the root is ill-conditioned there (δz ≈ ε/2z), so judge the residual, which must reach rounding level
    assert np.all(np.abs(1 - roots ** 2 - lam) <= 4 * np.finfo(float).eps)
    assert np.allclose(roots[:2], np.sqrt(1 - lam[:2]), rtol=1e-8)
