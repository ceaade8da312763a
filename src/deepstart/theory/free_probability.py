"""Jacobian spectra of deep random networks (Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid").

:func:`jacobian_spectrum` returns the large-width eigenvalue law of JJᵀ, J = ∏ D^l W^l (eq. 2), from the
S-transform equation S_{JJᵀ} = S_{WWᵀ}^L S_{D²}^L (eq. 12; THEORY.md §2), solved by continuation of the physical
root (:mod:`._free_solver`). Also here: the Fuss–Catalan closed form for deep linear Gaussian nets and the
closed-form moments m₁, σ² for any φ (on or off criticality).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy.integrate import cumulative_trapezoid

from deepstart.theory import _pushforward as _pf
from deepstart.theory._spectrum_domain import spectrum_domain
from deepstart.theory._fuss_catalan import (  # noqa: F401 - fuss_catalan_* re-exported
    _check_depth, fuss_catalan_density, fuss_catalan_lambda_max, fuss_catalan_moment)
from deepstart.theory._results import plain

_S1 = {"orthogonal": 0.0, "gaussian": -1.0}


def closed_form_moments(mu1: float, mu2: float, sigma_w2: float, depth: int,
                        weights: str = "orthogonal") -> dict:
    """m₁ = (σ_w² μ₁)^L, σ² = m₁² L (μ₂/μ₁² − 1 − s₁), m₂ = σ² + m₁² (THEORY.md §2).

    μ_k = E[φ'(h)^{2k}]; s₁ = 0 orthogonal, −1 Gaussian. Valid off criticality.
    """
    L = _check_depth(depth)
    if weights not in _S1:
        raise ValueError(f"weights={weights!r} invalid; choose one of {sorted(_S1)}")
    m1 = (sigma_w2 * mu1) ** L
    var = m1 ** 2 * L * (mu2 / mu1 ** 2 - 1.0 - _S1[weights])
    return {"m1": m1, "m2": var + m1 ** 2, "variance": var}


# ================================================================ general spectrum (S-transform solver)
WEIGHTS = ("orthogonal", "gaussian")
DEFAULT_ORDER = 64  # Gauss nodes per smooth piece of the law of φ'(h)². Max density error relative to the peak
# against order 256 (tanh orthogonal q* = 1/64): L = 2: 1.4e-3 at 64, 1.3e-4 at 128; L = 4: 2.3e-4 / 5.3e-6;
# L = 8: 1.0e-5 / 3.8e-9 (< 1e-6 for Gaussian weights or q* = 1 at L ≥ 2). The d-law's 1/√(1−d) edge at d = 1 makes
# shallow orthogonal nets converge slowly, so they get SHALLOW_ORDER; deep ones keep 64 (L = 1000 at 128 costs 2×).
SHALLOW_ORDER, SHALLOW_DEPTH = 128, 8


@dataclass(frozen=True, eq=False)
class JacobianSpectrum:
    """Eigenvalue law of JJᵀ for a deep random network at large width (Pennington, Schoenholz & Ganguli 2017).

    ``J = ∏ D^l W^l`` (eq. 2); its law is ``S_{JJᵀ} = S_{WWᵀ}^L S_{D²}^L`` (eq. 12), solved in
    :mod:`deepstart.theory._free_solver`. Fields:

    * ``d_values``, ``d_weights``: the law of the nonzero ``d = φ'(h)²``, h ~ N(0, q*) (exact two-atom law for
      relu / leaky_relu / linear / hard_tanh, Gauss quadrature otherwise); P(d = 0) = 1 − Σ d_weights.
    * ``log_edge``: log of the upper edge of the absolutely continuous part (−inf if there is none).
    * ``atoms``: ``((λ, mass), ...)``: at 0 with mass P(d = 0) (rank loss through D), and for orthogonal weights at
      ``σ_w^{2L} d^L`` with mass ``1 − L(1 − P(d))`` when positive (hard-tanh/ReLU: λ = p^{−L} at criticality).
    * ``method``: ``"fuss_catalan"`` (linear Gaussian closed form), ``"closed"`` (linear/ReLU/hard-tanh two-atom
      equations), ``"quadrature"`` (u-parameterization, any φ), ``"pushforward"`` (one orthogonal layer of a smooth φ:
      the exact law of σ_w² φ'(h)², :mod:`._pushforward`) or ``"atoms"`` (no continuous part).
    * ``domain``: whether this (φ, q*) lies in the theory's domain (see :func:`jacobian_spectrum`): ``"in domain"``
      or a sentence naming what is outside it (non-zero mean of φ(h), q* repelling the q-map).
    """

    activation: str
    depth: int
    weights: str
    sigma_w: float
    sigma_b: float
    q_star: float
    d_values: tuple
    d_weights: tuple
    log_edge: float
    atoms: tuple
    method: str
    domain: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ---- scalar summaries -------------------------------------------------------------------------
    @property
    def lambda_max(self) -> float:
        """Largest point of the support: the continuous part's upper edge or the largest atom."""
        with np.errstate(over="ignore"):
            tops = [float(np.exp(self.log_edge))] + [a for a, w in self.atoms if w > 0]
        return max(tops)

    @property
    def atom_mass(self) -> float:
        return float(sum(w for _, w in self.atoms))

    def moments(self) -> dict:
        """``{"m1", "m2", "variance"}``: m₁ = (σ_w² μ₁)^L, σ² = m₁² L (μ₂/μ₁² − 1 − s₁), μ_k = E φ'(h)^{2k}
        (THEORY.md §2; Pennington et al. 2017 eqs. 19–20 generalised off criticality), s₁ = 0 orthogonal, −1 Gaussian."""
        d, w = np.asarray(self.d_values), np.asarray(self.d_weights)
        mu1, mu2 = float(w @ d), float(w @ d ** 2)
        with np.errstate(over="ignore"):
            m1 = float(np.exp(self.depth * np.log(self.sigma_w ** 2 * mu1)))
            var = m1 ** 2 * self.depth * (mu2 / mu1 ** 2 - 1.0 - _S1[self.weights])
        return {"m1": m1, "m2": var + m1 ** 2, "variance": var}

    # ---- density ----------------------------------------------------------------------------------
    def density(self, lam) -> np.ndarray:
        """ρ(λ) of the absolutely continuous part (atoms excluded), vectorized over any array ``lam``.

        ρ(λ) = −Im M(λ + i0)/(πλ) with M the physical root of the S-transform equation, tracked by continuation.
        """
        lam = np.asarray(lam, dtype=float)
        out = np.zeros(lam.shape)
        with np.errstate(divide="ignore"):
            t = np.log(np.where(lam > 0, lam, 0.0))
        inside = np.isfinite(t) & (t < self.log_edge)
        if np.any(inside):
            out[inside] = np.exp(self._log_lam_rho(t[inside]) - t[inside])
        return out

    def _log_lam_rho(self, t) -> np.ndarray:
        """log(λρ(λ)) at t = log λ inside the support: the density per unit log λ."""
        if self.method == "pushforward":
            with np.errstate(divide="ignore"):
                return np.log(_pf.density(self._act(), self.q_star, self.sigma_w, np.exp(t))) + t
        if self.method == "fuss_catalan":
            s = self.depth * np.log(self.sigma_w ** 2)
            with np.errstate(divide="ignore"):
                return np.log(fuss_catalan_density(np.exp(t - s), self.depth)) + t - s
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(self._f(t), 0.0))

    def _f(self, t) -> np.ndarray:
        """λρ(λ) = −Im M_cont(e^{t+iδ_f})/π with the pole of each positive atom removed."""
        from deepstart.theory import _free_solver as fs

        law, path = self._solver()
        m = fs.solve(law, path, t)
        z_arg = t + 1j * fs.DELTA_F
        for loc, mass in self.atoms:
            if loc > 0:
                m = m - mass / np.expm1(z_arg - np.log(loc))
        return -m.imag / np.pi

    def _solver(self):
        from deepstart.theory import _free_solver as fs

        if "law" not in self._cache:
            d = np.asarray(self.d_values, float)
            law = fs.Law(d, self.d_weights, self.depth, 2 * np.log(self.sigma_w), self.weights == "gaussian")
            top = [a for a, w in self.atoms if a > 0]
            t_start = max([self.log_edge] + [np.log(a) for a in top]) + 2.0
            u_lo = d.max() if top else self._cache_edge_u(law)
            path = fs.Path(law, t_start, fs.start_point(law, t_start, u_lo))
            self._cache.update(law=law, path=path)
        return self._cache["law"], self._cache["path"]

    def _act(self):
        if "act" not in self._cache:
            from deepstart.theory.activations import get_activation

            self._cache["act"] = get_activation(self.activation)
        return self._cache["act"]

    def _cache_edge_u(self, law):
        from deepstart.theory import _free_solver as fs

        return fs.upper_edge(law, False)[0]

    def _density_by_solver(self, lam) -> np.ndarray:
        """The S-transform solver even where a closed form exists (for tests against Fuss–Catalan)."""
        if self.method != "fuss_catalan":
            return self.density(lam)
        return replace(self, method="closed", _cache={}).density(lam)

    # ---- distribution function --------------------------------------------------------------------
    def _cdf_table(self):
        """(t grid, CDF of the continuous part per unit log λ, integrated by trapezoid on an adaptive grid)."""
        if "cdf" in self._cache:
            return self._cache["cdf"]
        if self.method == "pushforward":
            self._cache["cdf"] = _pf.cdf_table(self._act(), self.q_star, self.sigma_w)
            return self._cache["cdf"]
        if not np.isfinite(self.log_edge):
            self._cache["cdf"] = (np.array([0.0, 1.0]), np.zeros(2))
            return self._cache["cdf"]
        top, L = self.log_edge, self.depth
        span = 30.0 * (L + 1) + 5.0
        grids = [top - np.geomspace(1e-10, span, 600)]
        mom = self.moments()
        if np.isfinite(mom["m1"]) and mom["variance"] < 0.25 * mom["m1"] ** 2:
            sd = np.sqrt(max(mom["variance"], 0.0))
            lo = max(mom["m1"] - 15 * sd, 0.5 * mom["m1"])
            grids.append(np.log(np.linspace(lo, np.exp(top), 600)))
        if self.method != "fuss_catalan":
            _, path = self._solver()
            path.extend(top - span)
            pt = np.asarray(path.t)
            pt = pt[pt < top]
            grids.append(np.concatenate([np.linspace(a, b, 3)[:-1] for a, b in zip(pt[:-1], pt[1:])]))
        t = np.unique(np.concatenate(grids + [[top]]))
        t = t[t <= top]
        f = np.exp(self._log_lam_rho(t[:-1]))
        f = np.append(f, 0.0)
        big = np.flatnonzero(f > 1e-7 * f.max())
        if big.size and big[0] > 0 and f[big[0] - 1] < 1e-7 * f.max():  # a lower edge: locate it, cluster there
            lo, hi, level = t[big[0] - 1], t[big[0]], 1e-7 * f.max()
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                if hi - lo <= 1e-13 * max(1.0, abs(mid)):
                    break
                lo, hi = (lo, mid) if np.exp(self._log_lam_rho(np.array([mid])))[0] > level else (mid, hi)
            extra = lo + np.geomspace(1e-12, min(1.0, top - lo), 200)
            extra = extra[extra < top]
            t = np.concatenate([t, extra])
            f = np.concatenate([f, np.exp(self._log_lam_rho(extra))])
            order = np.argsort(t)
            t, f = t[order], f[order]
        keep = np.concatenate([[True], np.diff(t) > 1e-13])
        t, f = t[keep], f[keep]
        # trapezoid, not Simpson: the grid merges clusters (points 1e-13 apart beside gaps 1e3× wider), where
        # Simpson's uneven-spacing weights swing and lost 22% of the mass (tanh orthogonal q* = 1/64, L = 32)
        cum = np.maximum.accumulate(cumulative_trapezoid(f, x=t, initial=0.0))
        self._cache["cdf"] = (t, cum)
        return t, cum

    def cdf(self, lam) -> np.ndarray:
        """P(eigenvalue ≤ λ), atoms included."""
        lam = np.asarray(lam, dtype=float)
        t, cum = self._cdf_table()
        with np.errstate(divide="ignore"):
            out = np.interp(np.log(np.maximum(lam, 0.0)), t, cum, left=0.0, right=cum[-1])
        for loc, mass in self.atoms:
            out = out + mass * (lam >= loc)
        return np.where(lam < 0, 0.0, out)

    def quantile(self, q):
        """Inverse CDF (atoms included): the smallest λ with P(eigenvalue ≤ λ) ≥ q, for q in [0, 1]."""
        q = np.asarray(q, dtype=float)
        if np.any((q < 0) | (q > 1)) or np.any(np.isnan(q)):
            raise ValueError(f"q={q!r} must lie in [0, 1]")
        t, cum = self._cdf_table()
        lam = np.exp(t)
        jumps = sorted(self.atoms)
        # CDF on the grid with the atoms added: evaluate piecewise, atoms as vertical steps
        pts, vals = [0.0], [0.0]
        for loc, mass in jumps:
            if loc == 0:
                vals[-1] += mass
        k = 0
        base = vals[-1]
        for loc, mass in jumps:
            if loc <= 0:
                continue
            j = np.searchsorted(lam, loc)
            pts += list(lam[k:j]) + [loc, loc]
            c = base + np.interp(np.log(loc), t, cum)
            vals += list(base + cum[k:j]) + [c, c + mass]
            base += mass
            k = j
        pts += list(lam[k:])
        vals += list(base + cum[k:])
        pts, vals = np.asarray(pts), np.maximum.accumulate(np.asarray(vals))
        vals = vals / vals[-1]  # the grid misses ≲ 1e-9 of tail mass; normalise so quantile(1) = λ_max
        i = np.clip(np.searchsorted(vals, q, side="left"), 0, len(vals) - 1)
        j = np.maximum(i - 1, 0)
        dv = vals[i] - vals[j]
        frac = np.where(dv > 0, (q - vals[j]) / np.where(dv > 0, dv, 1.0), 1.0)
        out = pts[j] + frac * (pts[i] - pts[j])
        return float(out) if out.ndim == 0 else out

    # ---- serialisation and plotting ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return {f.name: plain(getattr(self, f.name)) for f in fields(self) if f.name != "_cache"}

    @classmethod
    def from_dict(cls, d: dict) -> "JacobianSpectrum":
        names = {f.name for f in fields(cls)} - {"_cache"}
        if set(d) != names:
            raise ValueError(f"JacobianSpectrum.from_dict: keys {sorted(d)} differ from {sorted(names)}")
        kw = dict(d, d_values=tuple(d["d_values"]), d_weights=tuple(d["d_weights"]),
                  atoms=tuple((float(a), float(w)) for a, w in d["atoms"]), log_edge=float(d["log_edge"]))
        return cls(**kw)

    def plot(self, ax=None, *, n: int = 400):
        """Density (line) and atoms (stems, height = mass) against λ; returns ``(fig, ax)``."""
        import matplotlib.pyplot as plt

        fig, ax = (plt.subplots() if ax is None else (ax.figure, ax))
        hi = self.lambda_max * 1.02
        lo = max(float(self.quantile(0.01)), hi * 1e-4) if np.isfinite(self.log_edge) else 0.0
        lam = np.linspace(lo, hi, n)
        ax.plot(lam, self.density(lam), "k-", lw=1, label="density")
        for loc, mass in self.atoms:
            ax.vlines(loc, 0, mass, colors="C3", lw=2)
        ax.set(xlabel="λ (eigenvalue of JJᵀ)", ylabel="ρ(λ)",
               title=f"{self.activation}, {self.weights}, L = {self.depth}")
        return fig, ax


def jacobian_spectrum(activation, depth: int, *, weights: str = "orthogonal", q_star=None, sigma_w=None,
                      sigma_b=None, order: int | None = None) -> JacobianSpectrum:
    """Spectrum of JJᵀ for a depth-L random net (Pennington, Schoenholz & Ganguli 2017, eqs. 12–17).

    Without ``sigma_w`` the net sits on the critical line at ``q_star`` (:func:`~deepstart.theory.critical_point`;
    ReLU σ_w² = 2, linear 1, σ_b = 0). With ``sigma_w`` (σ_b default 0) q* is the q-map fixed point unless
    ``q_star`` is given. ``order``: Gauss nodes per smooth piece for the law of φ'(h)² (smooth φ only; default
    :data:`SHALLOW_ORDER` below depth :data:`SHALLOW_DEPTH`, else :data:`DEFAULT_ORDER`).

    Domain of the theory: the free-probability product law treats the D^l = diag φ'(h^l) as free of the weights and
    independent across layers at a fixed q*. It assumes odd-like φ whose φ(h) has zero mean (no common mode
    across units: tanh, erf, hard_tanh, linear) at a q* that attracts the q-map. For φ with E φ(h) ≠ 0 (relu,
    gelu, silu, mish, softplus, elu, sigmoid, ...) the activations share a rank-one common mode, and at an
    unstable q* (gelu, silu on the small-q* critical line) a real network drifts off q* layer by layer
    (piecewise-linear φ have no such drift: their d-law does not depend on q); a real forward pass then departs from the prediction (issue 11: orthogonal, critical,
    L = 16, N = 400: Var λ 298 measured vs 16.9 predicted for gelu, 689 vs 13.2 for silu; still 131 and 63 with q
    pinned at q* in every layer; tanh matches). The result's ``domain`` says which of these applies; outside the
    domain treat the spectrum as the law of the idealised model (free D's at q*), not of the network.

    Example:
        >>> s = jacobian_spectrum("relu", 8)
        >>> round(s.lambda_max, 3), s.moments()["variance"]
        (20.372, 8.0)
    """
    from deepstart.theory import _free_solver as fs
    from deepstart.theory.activations import get_activation
    from deepstart.theory.mean_field import critical_point, fixed_point

    L = _check_depth(depth)
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} invalid; choose one of {list(WEIGHTS)}")
    if order is None:
        order = SHALLOW_ORDER if L < SHALLOW_DEPTH else DEFAULT_ORDER
    act = get_activation(activation)
    if sigma_w is None:
        cp = critical_point(act, q_star=q_star, sigma_b=sigma_b)
        sw, sb, q = float(cp.sigma_w), float(cp.sigma_b), float(cp.q_star)
    else:
        sw, sb = float(sigma_w), 0.0 if sigma_b is None else float(sigma_b)
        if not (sw > 0 and np.isfinite(sw)) or not (sb >= 0 and np.isfinite(sb)):
            raise ValueError(f"sigma_w={sigma_w!r} must be > 0 and sigma_b={sigma_b!r} >= 0 (standard deviations)")
        q = float(fixed_point(act, sw, sb)) if q_star is None else float(q_star)
        if act.slopes is not None and not (np.isfinite(q) and q > 0):
            q = 1.0  # homogeneous φ with σ_b = 0: the law of φ'(h) does not depend on q
        if not (np.isfinite(q) and q >= 0):
            raise ValueError(f"the q-map diverges for sigma_w={sw}, sigma_b={sb}: no finite q*; pass q_star")
    d, w, method = _d_law(act, q, order)
    log_sw2 = 2 * np.log(sw)
    atoms = []
    if w.sum() < 1 - 1e-14:
        atoms.append((0.0, float(1 - w.sum())))
    if weights == "orthogonal" and L == 1 and method == "quadrature":  # JJᵀ = σ_w² D²: the exact push-forward
        return JacobianSpectrum(act.name, L, weights, sw, sb, q, tuple(d.tolist()), tuple(w.tolist()),
                                _pf.log_edge(act, q, sw), tuple(atoms), "pushforward",
                                spectrum_domain(act, q, sw, order), {"act": act})
    if weights == "orthogonal":
        for dk, wk in zip(d, w):
            if 1 - L * (1 - wk) > 1e-14:
                with np.errstate(over="ignore"):
                    atoms.append((float(np.exp(L * (log_sw2 + np.log(dk)))), float(1 - L * (1 - wk))))
    law = fs.Law(d, w, L, log_sw2, weights == "gaussian")
    edge = None if (d.size == 1 and w[0] > 1 - 1e-14 and weights == "orthogonal") else fs.upper_edge(law, any(a > 0 for a, _ in atoms))
    if edge is None or sum(m for _, m in atoms) > 1 - 1e-12:  # continuous mass < 1e-12 is not resolved
        log_edge, method = -np.inf, "atoms"
    else:
        log_edge = edge[1]
    if method == "closed" and weights == "gaussian" and act.slopes == (1.0, 1.0):
        method = "fuss_catalan"
    return JacobianSpectrum(act.name, L, weights, sw, sb, q, tuple(d.tolist()), tuple(w.tolist()), float(log_edge),
                            tuple(atoms), method, spectrum_domain(act, q, sw, order))


def _d_law(act, q: float, order: int):
    """Nonzero values and weights of d = φ'(h)², h ~ N(0, q) (zero values dropped), and the method name."""
    from deepstart.theory.gaussian import gaussian_nodes

    if act.slopes is not None:  # φ' ∈ {1, a}: each with probability ½ (linear: a = 1)
        a2 = act.slopes[1] ** 2
        vals = {1.0: 1.0} if a2 == 1.0 else ({1.0: 0.5} if a2 == 0 else {1.0: 0.5, a2: 0.5})
        return np.array(list(vals)), np.array(list(vals.values())), "closed"
    if act.name == "hard_tanh":
        p = float(act.dphi_second_moment(q))
        return np.array([1.0]), np.array([p]), "closed"
    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)  # Legendre pieces cluster nodes at z = 0,
    # where d = φ'(h)² peaks and the near-real poles of d/(u − d) sit (pure Gauss–Hermite converges slower there)
    d = np.asarray(act.dphi(x), float) ** 2
    scale = max(float(d.max()), 1e-300)
    key = np.round(d / scale, 12)
    uniq, inv = np.unique(key, return_inverse=True)
    ws = np.bincount(inv, weights=w)
    ds = np.bincount(inv, weights=w * d) / np.where(ws > 0, ws, 1.0)
    keep = (ds > 0) & (ws > 1e-300)
    ds, ws = ds[keep], ws[keep]
    if ds.size == 1 or np.ptp(ds) <= 1e-12 * scale:
        return np.array([float(ws @ ds / ws.sum())]), np.array([ws.sum()]), "closed"
    return ds, ws, "quadrature"
