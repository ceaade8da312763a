"""Independent oracle for the mean-field quantities: scipy.integrate.quad (adaptive, split at the kinks in z units)
and brentq, against q*, χ₁, c*, ξ_c of deepstart.theory; plus fixed-point statuses (collapse, divergence) and the
gelu/silu q-map instability on the critical line (issue 11).

Oracle accuracy: quad with epsrel 1e-13 on smooth pieces; its error estimates stay below 1e-12 relative, so the
1e-9 tolerance below measures the library (whose own q* Newton tolerance is 1e-13 and quadrature ~1e-12).
"""
import math
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize

from deepstart.theory import (
    ACTIVATION_NAMES, FixedPoint, UnstableFixedPointWarning, c_map, c_star, chi_1, critical_point, depth_scales,
    fixed_point, fixed_point_status, get_activation, phase_diagram, stable_critical_point)

RTOL = 1e-9
_PDF = 1.0 / math.sqrt(2 * math.pi)


def _gauss(f, q, kinks):
    """E f(√q z), z ~ N(0, 1), by quad on the pieces between kinks (in z units)."""
    s = math.sqrt(q)
    cuts = sorted({k / s for k in kinks if s > 0 and abs(k / s) < 40})
    edges = [-np.inf, *cuts, np.inf]
    total = 0.0
    with warnings.catch_warnings():  # quad flags "roundoff" when 1e-13 is at the double-precision floor
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for a, b in zip(edges[:-1], edges[1:]):
            val, _ = integrate.quad(lambda z: float(f(np.array(s * z))) * _PDF * math.exp(-0.5 * z * z), a, b,
                                    epsabs=0.0, epsrel=1e-13, limit=200)
            total += val
    return total


def _gauss2(f, q, c, kinks):
    """E f(u₁)f(u₂), u = √q (z₁, c z₁ + √(1−c²) z₂), by nested quad (inner conditional on z₁)."""
    s, r = math.sqrt(q), math.sqrt(1 - c * c)

    def inner(z1):
        mean = s * c * z1
        return _gauss(lambda x: f(mean + x), (s * r) ** 2, [k - mean for k in kinks])

    return _gauss(lambda x: f(x) * inner(float(x) / s), q, kinks)


class Oracle:
    def __init__(self, name):
        self.act = get_activation(name)
        self.kinks = self.act.kinks

    def V(self, q):
        return _gauss(lambda x: self.act.phi(x) ** 2, q, self.kinks)

    def D(self, q):
        return _gauss(lambda x: self.act.dphi(x) ** 2, q, self.kinks)

    def q_star(self, sw2, sb2, q0=1.0):
        """Root reached from q0: walk by factors of 2 in the direction of F(q0) until F changes sign; brentq."""
        F = lambda q: sw2 * self.V(q) + sb2 - q  # noqa: E731
        a, fa = q0, F(q0)
        for _ in range(80):
            b = a * 2 if fa > 0 else a / 2
            fb = F(b)
            if fb == 0 or (fb > 0) != (fa > 0):
                return optimize.brentq(F, min(a, b), max(a, b), xtol=1e-300, rtol=1e-15, maxiter=500)
            a, fa = b, fb
        raise AssertionError("oracle found no sign change")

    def c_star_and_chi_c(self, sw2, sb2, q, c_lib):
        """One Newton step of g(c) = c_map(c) − c from the library's c* with the oracle's g and
        g' = χ_c − 1 (Price: d/dc E φφ = q E φ'φ'); quadratic, so it lands on the oracle root to ~δc²."""
        phi, dphi = self.act.phi, self.act.dphi
        num = sw2 * _gauss2(phi, q, c_lib, self.kinks) + sb2
        chi_c = sw2 * _gauss2(dphi, q, c_lib, self.kinks)
        c = c_lib - (num / q - c_lib) / (chi_c - 1)
        return c, chi_c


def _points(act):
    """(σ_w², σ_b²) with a finite, stable q*: fractions of the divergence threshold 1/growth for unbounded φ."""
    if math.isfinite(act.bound):
        return [(1.0, 0.05), (1.8, 0.1), (3.0, 0.3)]
    return [(0.3 / act.growth, 0.05), (0.8 / act.growth, 0.3), (0.97 / act.growth, 1.0)]


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


ORACLE_ERRORS = {}  # max relative error per (function, activation), for a report script


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_q_star_and_chi_1_against_quad(name):
    orc = Oracle(name)
    for sw2, sb2 in _points(orc.act):
        sw, sb = math.sqrt(sw2), math.sqrt(sb2)
        fp = fixed_point_status(name, sw, sb)
        q = orc.q_star(sw2, sb2)
        assert fp.status == "stable" and fp.q_star == pytest.approx(q, rel=RTOL), (name, sw2, sb2)
        chi = sw2 * orc.D(q)
        assert chi_1(name, sw, sb) == pytest.approx(chi, rel=RTOL), (name, sw2, sb2)
        slope_fd = (sw2 * (orc.V(q * (1 + 1e-5)) - orc.V(q * (1 - 1e-5)))) / (2e-5 * q)
        assert fp.slope == pytest.approx(slope_fd, rel=1e-7)  # central difference: error ~1e-10·V'''/V'
        ORACLE_ERRORS.setdefault(("q*", name), []).append(_rel(fp.q_star, q))
        ORACLE_ERRORS.setdefault(("chi_1", name), []).append(_rel(chi_1(name, sw, sb), chi))


# Per activation: the first point of _points (ordered for most) and one chaotic point with finite q* where the
# activation has one (c* < 1 needs the nested quad: ~1 s per point).
CHAOTIC = {"tanh": (3.0, 0.3), "erf": (3.0, 0.3), "hard_tanh": (3.0, 0.3), "sigmoid": (400.0, 0.09)}


def _check_c_star_xi_c(name, orc, sw2, sb2):
    sw, sb = math.sqrt(sw2), math.sqrt(sb2)
    ds = depth_scales(name, sw, sb)
    q = orc.q_star(sw2, sb2)
    chi = sw2 * orc.D(q)
    if chi < 1:  # ordered: c* = 1, ξ_c = −1/log χ₁
        assert ds.c_star == 1.0 and ds.xi_c == pytest.approx(-1 / math.log(chi), rel=RTOL), (name, sw2, sb2)
        ORACLE_ERRORS.setdefault(("xi_c", name), []).append(_rel(ds.xi_c, -1 / math.log(chi)))
        return
    assert ds.chi_1 > 1 and 0 <= ds.c_star < 1, (name, sw2, sb2)
    c, chi_c = orc.c_star_and_chi_c(sw2, sb2, q, ds.c_star)
    assert ds.c_star == pytest.approx(c, rel=RTOL, abs=1e-12), (name, sw2, sb2)
    assert ds.xi_c == pytest.approx(-1 / math.log(chi_c), rel=RTOL), (name, sw2, sb2)
    ORACLE_ERRORS.setdefault(("c*", name), []).append(_rel(ds.c_star, c))
    ORACLE_ERRORS.setdefault(("xi_c", name), []).append(_rel(ds.xi_c, -1 / math.log(chi_c)))


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_c_star_and_xi_c_against_quad(name):
    orc = Oracle(name)
    for point in (_points(orc.act)[0], CHAOTIC.get(name)):
        if point is not None:
            _check_c_star_xi_c(name, orc, *point)


# ---------------------------------------------------------------- statuses: collapse, divergence (issue 11)
def test_lecun_elu_collapses_to_zero():
    # q_map(elu, 1) = 0.645 < 1 and V(q) < q for every q > 0 (oracle), so iterates fall to q* = 0, χ₁ → φ'(0)² = 1
    orc = Oracle("elu")
    assert all(orc.V(q) < q for q in (1e-6, 1e-3, 0.1, 1.0, 3.0, 100.0))
    for q0 in (1.0, 3.0):
        fp = fixed_point_status("elu", 1.0, 0.0, q0=q0)
        assert (fp.q_star, fp.status) == (0.0, "collapse") and fp.slope == pytest.approx(1.0, abs=1e-12)
        assert fixed_point("elu", 1.0, 0.0, q0=q0) == 0.0
    assert chi_1("elu", 1.0, 0.0) == pytest.approx(1.0, abs=1e-12)  # not 0.668 (χ₁ at the start q = 1)


@pytest.mark.parametrize("name", ["elu", "softplus"])
def test_diverging_maps_report_infinity(name):
    sw, sb = math.sqrt(2), math.sqrt(0.05)
    orc = Oracle(name)
    assert all(2 * orc.V(q) + 0.05 > q for q in (1e-3, 1.0, 10.0, 1e3, 1e5))  # q' > q everywhere
    fp = fixed_point_status(name, sw, sb)
    assert fp.q_star == np.inf and fp.status == "diverge" and not fp.stable
    assert fp.slope == pytest.approx(1.0, abs=1e-12)  # σ_w²·growth: the limit of dq'/dq
    # χ₁ is its q → ∞ limit σ_w²·growth = 1, not a value at some finite q; ξ's and c* are nan
    assert chi_1(name, sw, sb) == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(c_star(name, sw, sb))
    ds = depth_scales(name, sw, sb)
    assert ds.status == "diverge" and math.isnan(ds.xi_c) and math.isnan(ds.xi_q) and ds.chi_1 == pytest.approx(1)


def test_statuses_relu_and_shapes():
    fp = fixed_point_status("relu", [1.0, math.sqrt(2), 2.0, 1.0], [0.0, 0.0, 0.0, 0.5])
    assert fp.status.tolist() == ["collapse", "marginal", "diverge", "stable"]
    assert np.isnan(fp.q_star[1]) and fp.q_star[3] == pytest.approx(0.25 / 0.5, rel=1e-15)
    assert isinstance(chi_1("relu", 1.0, 0.0), float)  # was a shape-(1,) array
    assert chi_1("relu", [1.0, 2.0], 0.0).shape == (2,)
    assert isinstance(fixed_point("tanh", 1.2, 0.1), float) and float(fixed_point_status("tanh", 1.2, 0.1)) > 0
    back = FixedPoint.from_dict(fp.to_dict())
    assert back.status.tolist() == fp.status.tolist() and np.array_equal(back.slope, fp.slope)


def test_gelu_between_two_roots_and_phase_diagram_status():
    # gelu σ_w = 1.75, σ_b = 0.1: a stable root near 0.07 and an unstable one above; from q0 = 1 (above it) ∞
    assert fixed_point_status("gelu", 1.75, 0.1).status == "diverge"
    fp = fixed_point_status("gelu", 1.75, 0.1, q0=1e-3)
    assert fp.status == "stable" and fp.q_star == pytest.approx(Oracle("gelu").q_star(1.75 ** 2, 0.01, 1e-3),
                                                                 rel=RTOL)
    pd = phase_diagram("elu", [1.0, math.sqrt(2)], [0.0, math.sqrt(0.05)])
    assert pd.status.tolist() == [["collapse", "stable"], ["diverge", "diverge"]]
    assert pd.chi_1[0, 0] == pytest.approx(1.0) and pd.chi_1[1, 1] == pytest.approx(1.0)
    assert np.isnan(pd.xi_c[1, 1])


# ---------------------------------------------------------------- critical points a network can sit at
@pytest.mark.parametrize("name, q_star, slope", [("gelu", 0.3, 1.1062), ("silu", 1.0, 1.0993)])
def test_gelu_silu_critical_points_are_unstable(name, q_star, slope):
    with pytest.warns(UnstableFixedPointWarning, match="stable alternative"):
        cp = critical_point(name, q_star=q_star)
    assert cp.stable is False and cp.slope == pytest.approx(slope, abs=5e-4)
    # oracle: dq'/dq = σ_w² V'(q*) by central differences of the quad V
    orc = Oracle(name)
    fd = cp.sigma_w ** 2 * (orc.V(q_star * 1.00001) - orc.V(q_star * 0.99999)) / (2e-5 * q_star)
    assert cp.slope == pytest.approx(fd, rel=1e-7)
    alt = stable_critical_point(name)
    assert alt.stable and alt.slope < 0.99 and alt.sigma_b > 0
    assert fixed_point_status(name, alt.sigma_w, alt.sigma_b, q0=alt.q_star * 0.5).q_star == pytest.approx(
        alt.q_star, rel=1e-9)  # a network near it converges to it
    with pytest.warns(UnstableFixedPointWarning):
        edge = critical_point(name)  # σ_b = 0: q* = 0 with dq'/dq = 1 but q' > q just above 0
    assert edge.q_star == 0.0 and edge.stable is False


def test_tanh_critical_points_are_stable_without_warning():
    cp = critical_point("tanh", q_star=np.array([1 / 64, 1.0]))
    assert np.all(cp.stable) and np.all(cp.slope < 1)
    assert critical_point("tanh").stable and critical_point("relu").stable
