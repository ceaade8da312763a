"""Order-to-chaos phase diagrams over (σ_w, σ_b) (Poole et al. 2016 Fig. 2; Schoenholz et al. 2017 Fig. 1).

Fully vectorized: q* by bracketed Newton on the whole grid at once (:func:`mean_field.fixed_point`), χ₁ by one
quadrature, and in the chaotic region c* and χ_c from the Mehler (Hermite) expansion of the c-map at q*:

    E φ(u₁)φ(u₂) = Σ_k a_k² c^k,  a_k = ∫Dz φ(√q* z) He_k(z)/√k!,   E φ'(u₁)φ'(u₂) = Σ_k k a_k² c^{k−1}/q*

(the second by Price's theorem, ∂/∂q₁₂ E φφ = E φ'φ'). The series is truncated at ``n_terms`` with the
remaining mass V(q*) − Σ a_k² put on the last term so the map keeps c = 1 fixed; accuracy of ξ_c is ~1e-4
relative for tanh at q* ≲ 4 and degrades for very large q* (steep φ(√q* z) has slowly decaying a_k).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from deepstart.theory._depth import xi_from_rate
from deepstart.theory._results import ResultMixin
from deepstart.theory._roots import newton_in_bracket
from deepstart.theory.activations import get_activation
from deepstart.theory.gaussian import gaussian_nodes

__all__ = ["PhaseDiagram", "phase_diagram", "mehler_coefficients"]


@dataclass(frozen=True)
class PhaseDiagram(ResultMixin):
    """Grids indexed ``[i, j]`` at (``sigma_w[i]``, ``sigma_b[j]``): χ₁, q*, ξ_c (∞ on the critical line).

    ``status``: the fixed point's status per cell (:func:`~deepstart.theory.fixed_point_status`); where it is
    ``diverge`` q* = ∞, ξ_c = nan and χ₁ is its q → ∞ limit σ_w²·growth.
    """

    activation: str
    sigma_w: np.ndarray
    sigma_b: np.ndarray
    chi_1: np.ndarray
    q_star: np.ndarray
    xi_c: np.ndarray
    status: np.ndarray | None = None

    _ARRAY_FIELDS = ("sigma_w", "sigma_b", "chi_1", "q_star", "xi_c")
    _OTHER_ARRAY_FIELDS = ("status",)

    @property
    def chaotic(self) -> np.ndarray:
        """Boolean grid: χ₁ > 1 (gradients explode, nearby inputs decorrelate)."""
        return np.asarray(self.chi_1) > 1

    def critical_sigma_w(self) -> np.ndarray:
        """For each σ_b, σ_w where χ₁ crosses 1 (linear interpolation in σ_w; nan where it does not cross)."""
        sw, chi = np.asarray(self.sigma_w), np.asarray(self.chi_1)
        out = np.full(len(self.sigma_b), np.nan)
        for j in range(len(self.sigma_b)):
            col = chi[:, j]
            k = np.flatnonzero((col[:-1] - 1) * (col[1:] - 1) <= 0)
            if k.size and np.isfinite(col[k[0]]) and np.isfinite(col[k[0] + 1]) and col[k[0] + 1] != col[k[0]]:
                i = k[0]
                out[j] = sw[i] + (1 - col[i]) * (sw[i + 1] - sw[i]) / (col[i + 1] - col[i])
        return out

    def plot(self, ax=None, *, xi_levels=(1, 2, 5, 10, 20, 50)):
        """log χ₁ colour map (blue ordered, red chaotic), the critical line χ₁ = 1, ξ_c contours."""
        import matplotlib.pyplot as plt

        fig, ax = (plt.subplots(figsize=(6, 4.5)) if ax is None else (ax.figure, ax))
        sw, sb = np.asarray(self.sigma_w), np.asarray(self.sigma_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            logchi = np.log(np.asarray(self.chi_1)).T
        lim = min(np.nanmax(np.abs(logchi[np.isfinite(logchi)])), 1.5) if np.any(np.isfinite(logchi)) else 1.0
        mesh = ax.pcolormesh(sw, sb, logchi, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="auto")  # clipped at ±1.5
        fig.colorbar(mesh, ax=ax, label="log χ₁  (< 0 ordered, > 0 chaotic)")
        if len(sw) > 1 and len(sb) > 1:
            xi = np.where(np.isfinite(self.xi_c), self.xi_c, 1e9).T
            cs = ax.contour(sw, sb, xi, levels=list(xi_levels), colors="0.25", linewidths=0.7)
            ax.clabel(cs, fmt="ξc=%g", fontsize=7)
            if np.nanmin(self.chi_1) < 1 < np.nanmax(self.chi_1):
                ax.contour(sw, sb, np.asarray(self.chi_1).T, levels=[1.0], colors="k", linewidths=2)
        ax.plot([], [], "k-", lw=2, label="critical line χ₁ = 1")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_xlabel("σ_w")
        ax.set_ylabel("σ_b")
        ax.set_title(f"{self.activation}: ordered (blue) vs chaotic (red)")
        return fig, ax


def mehler_coefficients(activation, q, *, order: int = 64, n_terms: int = 60) -> np.ndarray:
    """a_k² = (∫Dz φ(√q z) He_k(z))²/k!, k < n_terms, for each q (shape ``q.shape + (n_terms,)``)."""
    act = get_activation(activation)
    q = np.asarray(q, dtype=float)
    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)
    sq = np.sqrt(q)[..., None]
    z = np.divide(x, sq, out=np.zeros_like(x), where=sq > 0)
    fw = act.phi(x) * w
    out = np.empty(q.shape + (n_terms,))
    h_prev, h = np.zeros_like(z), np.ones_like(z)
    for k in range(n_terms):  # normalized probabilists' Hermite recurrence
        out[..., k] = np.sum(fw * h, axis=-1)
        h_prev, h = h, (z * h - np.sqrt(k) * h_prev) / np.sqrt(k + 1)
    return out ** 2


class _QTable:
    """V = E φ², E φ'², and Mehler a_k² tabulated once on a log-q grid and interpolated by cubic splines.

    Everything in the phase diagram depends on (σ_w, σ_b) only through q*, so one table of functions of q
    replaces a quadrature per grid point (relative interpolation error ~1e-9 with 400 nodes per decade span).
    """

    def __init__(self, act, q_lo, q_hi, order, n_terms, n=None):
        from deepstart.theory.mean_field import dphi_second_moment, second_moment

        span = np.log(q_hi) - np.log(q_lo)
        n = int(n or max(64, 40 * span))  # 40 nodes per e-fold of q: ~1e-10 relative (tanh, erf, sigmoid)
        self.log_q = np.linspace(np.log(q_lo), np.log(q_hi), n)
        q = np.exp(self.log_q)
        self.log_v = CubicSpline(self.log_q, np.log(second_moment(act, q, order)))
        self.d = CubicSpline(self.log_q, dphi_second_moment(act, q, order))
        self.a2 = CubicSpline(self.log_q, mehler_coefficients(act, q, order=order, n_terms=n_terms), axis=0)
        self.q_lo, self.q_hi = q_lo, q_hi

    def v_and_slope(self, q):
        lq = np.log(q)
        v = np.exp(self.log_v(lq))
        return v, v * self.log_v(lq, 1) / q


def _fixed_point_table(table, sw2, sb2, tol=1e-13, max_iter=60):
    """Safeguarded Newton on F(q) = σ_w²V(q) + σ_b² − q with V from the table, from the upper end q_hi."""
    def F(q, a):
        v, dv = table.v_and_slope(q)
        return sw2[a] * v + sb2[a] - q, sw2[a] * dv - 1.0

    lo, hi = np.full(sw2.shape, table.q_lo), np.full(sw2.shape, table.q_hi)
    x0 = np.maximum(np.minimum(sw2 * table.q_hi + sb2, table.q_hi), table.q_lo)
    return newton_in_bracket(F, lo, hi, x0, tol=tol, max_iter=max_iter, geometric=True)


def _horner(a2t, c):
    """Σ_k a2t[k] c^k and its c-derivative, one pass over the K coefficients (a2t is [K, P], columns ↔ entries
    of c; coefficient-major so that each step reads one contiguous row)."""
    val, der = a2t[-1].copy(), np.zeros(c.shape)
    for k in range(a2t.shape[0] - 2, -1, -1):
        der *= c
        der += val
        val *= c
        val += a2t[k]
    return val, der


def _chaotic_chi_c(a2, sw2, sb2, q, tol=1e-12, max_iter=100):
    """χ_c at c* from Mehler coefficients a2 [P, K] at q*: Newton from c = 0 on the convex g(c) = c_map(c) − c."""
    a2t = np.ascontiguousarray(a2.T)
    c = np.zeros(q.shape)
    active = np.arange(q.size)
    for _ in range(max_iter):
        ca = c[active]
        val, der = _horner(a2t if active.size == q.size else a2t[:, active], ca)
        g = (sw2[active] * val + sb2[active]) / q[active] - ca
        dg = sw2[active] * der / q[active] - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.clip(ca - g / dg, 0.0, 1.0)
        new = np.where(np.isfinite(new), new, 1.0)
        done = (np.abs(new - ca) <= tol) | (np.abs(g) <= 1e-15)
        c[active] = new
        active = active[~done]
        if active.size == 0:
            break
    return sw2 * _horner(a2t, c)[1] / q


def phase_diagram(activation, sigma_w_grid, sigma_b_grid, *, order: int = 24, n_terms: int = 100) -> PhaseDiagram:
    """χ₁, q*, ξ_c on the grid σ_w × σ_b (``[i, j]`` ↔ (σ_w[i], σ_b[j])), vectorized over the whole grid.

    For bounded φ, q*, χ₁ and the Mehler coefficients come from cubic-spline tables in log q (:class:`_QTable`,
    relative error ~1e-10 against direct quadrature); unbounded φ use
    :func:`~deepstart.theory.mean_field.fixed_point` directly. ``order``: quadrature nodes per smooth piece.

    Example:
        >>> pd = phase_diagram("tanh", np.linspace(0.5, 3, 6), np.linspace(0, 1, 5))
        >>> pd.chi_1.shape
        (6, 5)
    """
    from deepstart.theory.mean_field import _nonneg, chi_1, dphi_second_moment, fixed_point_status

    act = get_activation(activation)
    sw1 = _nonneg("sigma_w_grid", np.atleast_1d(sigma_w_grid)).ravel()
    sb1 = _nonneg("sigma_b_grid", np.atleast_1d(sigma_b_grid)).ravel()
    sw, sb = np.meshgrid(sw1, sb1, indexing="ij")
    if act.slopes is not None:
        fp = fixed_point_status(act, sw, sb)
        q = np.asarray(fp.q_star, dtype=float)
        chi = np.asarray(chi_1(act, sw, sb), dtype=float) + 0 * sw
        marginal = np.isnan(q) & (np.abs(chi - 1.0) <= 1e-12)  # critical with σ_b = 0: every q is fixed
        xi = np.where(marginal, np.inf, np.where(np.isfinite(q), xi_from_rate(chi), np.nan))
        return PhaseDiagram(act.name, sw1, sb1, chi, q, xi, np.asarray(fp.status))
    q, table, status = _grid_fixed_point(act, sw, sb, order, n_terms)
    finite = np.isfinite(q)
    q_safe = np.where(finite & (q > 0), q, 0.0)
    in_table = table is not None and bool(np.all((q_safe == 0) | (q_safe >= table.q_lo) & (q_safe <= table.q_hi)))
    if in_table:
        d = np.where(q_safe > 0, table.d(np.log(np.where(q_safe > 0, q_safe, 1.0))), dphi_second_moment(act, 0.0))
    else:
        d = dphi_second_moment(act, q_safe, order)
    chi = np.where(finite, sw ** 2 * d, np.where(np.isinf(q), sw ** 2 * act.growth, np.nan))
    xi = xi_from_rate(chi)  # ordered phase: c* = 1, χ_c = χ₁
    chaotic = (chi > 1) & finite & (q > 0)
    if np.any(chaotic):
        qc = q[chaotic]
        if table is None or qc.min() < table.q_lo or qc.max() > table.q_hi:
            table = _QTable(act, max(qc.min(), 1e-300), qc.max() * (1 + 1e-9) + 1e-300, order, n_terms)
        a2 = table.a2(np.log(qc))
        a2[:, -1] += np.maximum(table.v_and_slope(qc)[0] - a2.sum(axis=-1), 0.0)  # keeps c = 1 fixed
        xi[chaotic] = xi_from_rate(_chaotic_chi_c(a2, sw[chaotic] ** 2, sb[chaotic] ** 2, qc))
    return PhaseDiagram(act.name, sw1, sb1, chi, q, np.where(finite, xi, np.nan), status)


def _grid_fixed_point(act, sw, sb, order, n_terms):
    """(q*, table, status) on the grid: table Newton for bounded φ (a single root: V concave or V/q decreasing),
    else the general solver :func:`~deepstart.theory.fixed_point_status`."""
    from deepstart.theory._fixed_point import classify, slope_at_zero
    from deepstart.theory.mean_field import fixed_point, fixed_point_status, trivial_zero

    if not np.isfinite(act.bound):
        fp = fixed_point_status(act, sw, sb, order=order)
        return np.asarray(fp.q_star, dtype=float), None, np.asarray(fp.status)
    sw2, sb2 = (sw ** 2).ravel(), (sb ** 2).ravel()
    q_hi = float(np.max(sw2) * act.bound ** 2 + np.max(sb2)) * 1.01 + 1e-12
    q = np.zeros(sw2.shape)
    todo = np.flatnonzero(~trivial_zero(act, sw2, sb2))
    table = _QTable(act, 1e-10, max(q_hi, 1e-9), order, n_terms)
    if todo.size:
        qt = _fixed_point_table(table, sw2[todo], sb2[todo])
        tiny = qt < 10 * table.q_lo  # below the table: solve exactly
        if np.any(tiny):
            qt[tiny] = fixed_point(act, np.sqrt(sw2[todo][tiny]), np.sqrt(sb2[todo][tiny]), order=order)
        q[todo] = qt
    slope = np.full(q.shape, slope_at_zero(act)) * sw2
    pos = q > 0
    if np.any(pos):
        slope[pos] = sw2[pos] * table.v_and_slope(q[pos])[1]
    return q.reshape(sw.shape), table, classify(q, slope).reshape(sw.shape)
