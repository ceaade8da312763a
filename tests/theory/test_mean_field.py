"""Mean field: reference values of THEORY.md §1, closed forms, stable branches, broadcasting, errors."""
import numpy as np
import pytest

from deepstart.theory import (
    CriticalPoint, DepthScales, c_map, c_star, chi_1, critical_point, depth_scales, fixed_point, get_activation,
    gradient_growth, q_map, q_map_slope)

# THEORY.md §1 reference values (tanh, Gauss–Hermite 201 nodes; σ's given there as variances).
# They are quoted to 6-7 significant figures, hence the tolerances below (half a unit in the last digit).
TANH_CRITICAL = [(1 / 64, 1.030558, 4.651e-6), (1 / 4, 1.393962, 8.1252e-3), (1.0, 2.153303, 0.1509646)]


@pytest.mark.parametrize("q_star, sw2, sb2", TANH_CRITICAL)
def test_tanh_critical_line_reference(q_star, sw2, sb2):
    cp = critical_point("tanh", q_star=q_star)
    assert cp.sigma_w ** 2 == pytest.approx(sw2, abs=6e-7)
    assert cp.sigma_b ** 2 == pytest.approx(sb2, rel=2e-4)
    assert chi_1("tanh", cp.sigma_w, cp.sigma_b, q_star=q_star) == pytest.approx(1.0, abs=1e-12)
    # q* is the fixed point of the q-map at that point (the line is self-consistent)
    assert fixed_point("tanh", cp.sigma_w, cp.sigma_b) == pytest.approx(q_star, rel=1e-9)


def test_tanh_ordered_point_reference():
    # THEORY.md §1: tanh (σ_w², σ_b²) = (1.0, 0.05): q* = 0.19359, χ₁ = 0.75903, ξ_c = 3.627
    sw, sb = 1.0, np.sqrt(0.05)
    assert fixed_point("tanh", sw, sb) == pytest.approx(0.19359, abs=5e-6)
    assert chi_1("tanh", sw, sb) == pytest.approx(0.75903, abs=5e-6)
    ds = depth_scales("tanh", sw, sb)
    assert ds.xi_c == pytest.approx(3.627, abs=5e-4)
    assert ds.c_star == 1.0 and ds.xi_c == pytest.approx(-1 / np.log(ds.chi_1), rel=1e-12)


def test_relu_critical_point_and_errors():
    cp = critical_point("relu")  # THEORY.md §1: (σ_w², σ_b²) = (2, 0)
    assert (cp.sigma_w ** 2, cp.sigma_b) == (pytest.approx(2.0, rel=1e-15), 0.0)
    with pytest.raises(ValueError, match="no critical point with sigma_b"):
        critical_point("relu", sigma_b=0.1)
    with pytest.raises(TypeError, match="not both"):
        critical_point("tanh", q_star=1.0, sigma_b=0.1)
    with pytest.raises(ValueError, match="q_star"):
        critical_point("tanh", q_star=-1.0)
    # leaky_relu / linear: σ_w² = 2/(1 + a²)
    assert critical_point("leaky_relu", q_star=3.0).sigma_w ** 2 == pytest.approx(2 / 1.0001)
    assert critical_point("linear").sigma_w == pytest.approx(1.0)


def test_hard_tanh_critical_reference():
    # THEORY.md §1: hard-tanh q* = 1: p = 0.6826895, σ_w² = 1/p = 1.4647948, σ_b² = 0.244080
    cp = critical_point("hard_tanh", q_star=1.0)
    assert cp.sigma_w ** 2 == pytest.approx(1.4647948, abs=5e-8)
    assert cp.sigma_b ** 2 == pytest.approx(0.244080, abs=5e-7)


def test_critical_point_from_sigma_b_inverts_q_star():
    cp = critical_point("tanh", q_star=0.3)
    back = critical_point("tanh", sigma_b=cp.sigma_b)
    assert back.q_star == pytest.approx(0.3, rel=1e-9) and back.sigma_w == pytest.approx(cp.sigma_w, rel=1e-9)
    edge = critical_point("tanh", sigma_b=0.0)  # the σ_b = 0 edge: σ_w = 1/φ'(0) = 1, q* = 0
    assert (edge.sigma_w, edge.q_star) == (1.0, 0.0)
    with pytest.raises(ValueError, match="σ_b² < 0"):
        critical_point("sigmoid", q_star=0.01)  # E σ² ≥ 1/4 but E σ'² ≤ 1/16: σ_b² would be negative


def test_critical_point_vectorized_and_roundtrip():
    q = np.array([1 / 64, 1 / 4, 1.0])
    cp = critical_point("tanh", q_star=q)
    assert np.allclose(cp.sigma_w ** 2, [r[1] for r in TANH_CRITICAL], atol=6e-7)
    again = CriticalPoint.from_dict(cp.to_dict())
    assert np.array_equal(again.sigma_w, cp.sigma_w) and again.activation == "tanh"


def test_relu_closed_forms():
    sw, sb, q = np.array([1.0, 1.2]), 0.3, np.array([0.5, 2.0])
    assert np.allclose(q_map("relu", q, sw, sb), sw ** 2 * q / 2 + sb ** 2, rtol=1e-14)
    assert np.allclose(chi_1("relu", sw, sb), sw ** 2 / 2, rtol=1e-14)
    assert fixed_point("relu", 1.0, sb) == pytest.approx(sb ** 2 / 0.5, rel=1e-14)
    assert fixed_point("relu", 1.5, sb) == np.inf and fixed_point("relu", 1.0, 0.0) == 0.0
    assert np.isnan(fixed_point("relu", np.sqrt(2), 0.0))  # identity map: every q is fixed
    c = np.array([0.1, 0.7])
    assert np.allclose(c_map("relu", c, 1.0, np.sqrt(2), 0.0),
                       (np.sqrt(1 - c ** 2) + (np.pi - np.arccos(c)) * c) / np.pi, atol=1e-14)


def test_q_map_quadrature_order_convergence():
    q = np.array([0.01, 0.5, 3.0, 20.0])
    lo, hi = q_map("tanh", q, 1.3, 0.2, order=24), q_map("tanh", q, 1.3, 0.2, order=48)
    tol = max(np.max(np.abs(hi - lo)) * 10, 1e-14)  # order n vs 2n
    assert tol < 1e-10
    assert np.allclose(q_map("tanh", q, 1.3, 0.2), hi, atol=tol, rtol=0)


def test_erf_q_map_matches_closed_form():
    # erf(√π/2 x): E φ(√q z)² = (2/π) arcsin(2s²q/(1+2s²q)) (THEORY.md §1 closed Gaussian integrals)
    s = np.sqrt(np.pi) / 2
    q = np.array([0.1, 1.0, 5.0])
    closed = 1.7 ** 2 * 2 / np.pi * np.arcsin(2 * s * s * q / (1 + 2 * s * s * q)) + 0.04
    assert np.allclose(q_map(get_activation("erf", scale=s), q, 1.7, 0.2), closed, rtol=1e-14)


def test_fixed_point_is_a_fixed_point_everywhere():
    sw, sb = np.meshgrid(np.linspace(0.3, 4, 7), np.linspace(0, 1.5, 5), indexing="ij")
    for name in ("tanh", "erf", "hard_tanh", "sigmoid", "gelu", "silu", "elu", "selu", "softplus"):
        q = np.asarray(fixed_point(name, sw, sb))
        ok = np.isfinite(q)
        assert ok.sum() >= 10, name  # unbounded φ diverge for σ_w² > 1/growth
        assert np.allclose(q_map(name, q[ok], sw[ok], sb[ok]), q[ok], rtol=1e-9, atol=1e-12), name
        stable = q_map_slope(name, q[ok], sw[ok])
        assert np.all(stable < 1 + 1e-9), name  # the stable branch: |dq'/dq| ≤ 1


def test_sigma_b_zero_stable_branch():
    # tanh, σ_b = 0: q* = 0 for σ_w ≤ 1 (iterates approach it only like 1/l at σ_w = 1), positive above
    assert fixed_point("tanh", [0.5, 1.0], 0.0).tolist() == [0.0, 0.0]
    q = fixed_point("tanh", 1.01, 0.0)
    assert 0 < q < 0.02 and q_map("tanh", q, 1.01, 0.0) == pytest.approx(q, rel=1e-10)
    # brute-force iteration from q = 1 converges to the same positive root
    it = 1.0
    for _ in range(5000):
        it = q_map("tanh", it, 1.01, 0.0)
    assert it == pytest.approx(q, rel=1e-6)


def test_unbounded_divergence_and_q0():
    assert fixed_point("gelu", 1.75, 0.1) == np.inf  # σ_w²·(1/2) > 1 and from q0 = 1 the map runs away
    small = fixed_point("gelu", 1.75, 0.1, q0=1e-3)  # σ_w²·φ'(0)² < 1: small q settles at a stable root
    assert 0 < small < 1 and q_map_slope("gelu", small, 1.75) < 1


def test_c_map_fixed_points_and_c_star():
    q = fixed_point("tanh", 2.0, 0.1)
    assert c_map("tanh", 1.0, q, 2.0, 0.1) == pytest.approx(1.0, abs=1e-14)
    cs = c_star("tanh", 2.0, 0.1)
    assert 0 < cs < 1 and c_map("tanh", cs, q, 2.0, 0.1) == pytest.approx(cs, abs=1e-12)
    assert c_star("tanh", 0.8, 0.1) == 1.0  # ordered
    assert abs(c_star("tanh", 3.0, 0.0)) < 1e-12  # odd φ, σ_b = 0: c* = 0
    with pytest.raises(ValueError, match="correlation"):
        c_map("tanh", 1.5, 1.0, 1.0, 0.0)


def test_depth_scales_chaotic_and_critical():
    ds = depth_scales("tanh", [0.8, 2.0], 0.1)
    assert isinstance(ds, DepthScales) and ds.chi_1[1] > 1 and ds.c_star[1] < 1
    assert np.all(np.isfinite(ds.xi_c)) and np.all(ds.chi_c < 1)
    # ξ_c diverges at the critical line: compare just below/above with χ₁ → 1
    cp = critical_point("tanh", q_star=0.5)
    near = depth_scales("tanh", cp.sigma_w * np.array([0.999, 1.001]), cp.sigma_b)
    assert np.all(near.xi_c > 200)
    assert depth_scales("relu", np.sqrt(2), 0.0).xi_c == np.inf
    assert DepthScales.from_dict(ds.to_dict()).xi_c.tolist() == ds.xi_c.tolist()


def test_xi_q_is_slope_of_q_map():
    # ξ_q⁻¹ = −log(χ₁ + σ_w² ∫φ''φ) (THEORY.md §1); compare Stein form against finite differences of the q-map
    sw, sb = 1.4, 0.3
    q = fixed_point("tanh", sw, sb)
    h = 1e-5
    fd = (q_map("tanh", q + h, sw, sb) - q_map("tanh", q - h, sw, sb)) / (2 * h)
    assert depth_scales("tanh", sw, sb).xi_q == pytest.approx(-1 / np.log(fd), rel=1e-7)


def test_gradient_growth():
    assert gradient_growth("relu", 1.0, 0.0, 10) == pytest.approx(0.5 ** 10, rel=1e-14)
    g = gradient_growth("tanh", [0.5, 3.0], 0.1, 20)
    assert g[0] < 1e-6 and g[1] > 1e3
    with pytest.raises(ValueError, match="depth"):
        gradient_growth("tanh", 1.0, 0.0, 2.5)


def test_broadcasting_matches_scalar_calls():
    sw, sb = np.array([[0.7], [1.5], [2.5]]), np.array([0.0, 0.2, 0.9])
    q = fixed_point("tanh", sw, sb)
    chi = chi_1("tanh", sw, sb)
    assert q.shape == chi.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            assert q[i, j] == pytest.approx(fixed_point("tanh", sw[i, 0], sb[j]), rel=1e-12, abs=1e-300)
            assert chi[i, j] == pytest.approx(chi_1("tanh", sw[i, 0], sb[j]), rel=1e-12)


@pytest.mark.parametrize("bad", [{"sigma_w": -1.0}, {"sigma_b": np.nan}])
def test_bad_sigmas(bad):
    kw = {"sigma_w": 1.0, "sigma_b": 0.1, **bad}
    with pytest.raises(ValueError, match="must be >= 0"):
        fixed_point("tanh", **kw)
