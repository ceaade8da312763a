"""Root tracking for the S-transform equations of JJᵀ (Pennington, Schoenholz & Ganguli 2017, §3–4), private.

The law of d = φ'(h)², h ~ N(0, q*), is a discrete law {d_k: w_k} (exact for linear/ReLU/hard-tanh, Gauss
quadrature otherwise; d = 0 is dropped, it only adds an atom of JJᵀ at 0). With m(u) = Σ w_k d_k/(u − d_k) =
M_{D²}(u) the equation M⁻¹_{JJᵀ}(m) = z becomes, in log form (THEORY.md §2, "General φ"),

    F(u) = L log σ_w² + log B + L log A = log z,    B = (1+m)/m,   A = m u/(1+m) (orthogonal), m u (Gaussian),

the paper's eq. (16)–(17) with S_{D²}(m) = (1+m)/(m u) and S_{WWᵀ} = σ_w⁻² resp. 1/(σ_w²(1+m)).
On the physical sheet Im m < 0, arg B ∈ (0, π) and arg A = (Im log z − arg B)/L ∈ (−π/L, 0]: principal logs of
the grouped factors never cross their cut, which is what keeps L = 1000 in range (λ^L itself would overflow).

The physical root is tracked by continuation (not by choosing among roots):
1. on the real axis above the support the root is real; it is found there by bracketing,
2. lifted to log z = t + iδ₀ and continued in t downwards with a tangent predictor and Newton corrector
   (M_{JJᵀ} is analytic in the upper half plane, so this path never meets a branch point),
3. each requested λ is reached from the path by a vertical descent δ₀ → δ_f with geometric steps, vectorized.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

DELTA0 = 0.3      # height of the continuation path in log z (radians)
DELTA_F = 1e-11   # final height: density error O(δ_f) in the bulk, O(√δ_f) at a square-root edge


class Law:
    """Discrete law of the nonzero d's, plus the network's L, log σ_w² and weight ensemble."""

    def __init__(self, d, w, depth, log_sw2, gaussian):
        self.d = np.asarray(d, float)
        self.w = np.asarray(w, float)
        self.wd = self.w * self.d
        self.w0 = max(1.0 - float(self.w.sum()), 0.0)  # P(d = 0)
        self.L = int(depth)
        self.lsw = float(log_sw2)
        self.gaussian = bool(gaussian)
        self.a = 1.0 if gaussian else 1.0 - self.L

    # ---- complex evaluation, vectorized over u -----------------------------------------------------
    def _sums(self, u):
        """Σ w d/(u−d), −Σ w d/(u−d)², Σ w/(u−d) in real arithmetic (complex BLAS is ~100× slower here)."""
        x = u.real[..., None] - self.d
        b = u.imag[..., None]
        inv = 1.0 / (x * x + b * b)
        re, im = x * inv, -b * inv
        sq_re, sq_im = re * re - im * im, 2.0 * re * im
        wd, w = self.wd, self.w
        return (re @ wd + 1j * (im @ wd), -(sq_re @ wd + 1j * (sq_im @ wd)), re @ w + 1j * (im @ w))

    def F(self, u):
        """(F(u), F'(u), m(u)); 1 + m = P(d=0) + u Σ w/(u − d) is formed without cancellation."""
        m, dm, g = self._sums(u)
        p1 = self.w0 + u * g
        A = m * u if self.gaussian else m * u / p1
        F = self.L * self.lsw + np.log(p1 / m) + self.L * np.log(A)
        Fp = self.a * dm / p1 + (self.L - 1) * dm / m + self.L / u
        return F, Fp, m

    def newton(self, u, target, iters):
        for _ in range(iters):
            F, Fp, _m = self.F(u)
            u = u - (F - target) / Fp
        return u

    # ---- real evaluation (u real, off the atoms) --------------------------------------------------
    def F_real(self, u):
        u = np.asarray(u, float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = 1.0 / (u[..., None] - self.d)
            m, dm, p1 = r @ self.wd, -(r * r) @ self.wd, self.w0 + u * (r @ self.w)
            A = m * u if self.gaussian else m * u / p1
            F = self.L * self.lsw + np.log(np.abs(p1 / m)) + self.L * np.log(np.abs(A))
            Fp = self.a * dm / p1 + (self.L - 1) * dm / m + self.L / u
        return F, Fp


def upper_edge(law: Law, atom_top: bool):
    """(u_b, log λ_edge) of the upper edge of the continuous part: the first local minimum of the real branch
    λ(u) met coming down from u = ∞ (THEORY.md §2). Above all d's first; when d_max carries an atom of JJᵀ
    (orthogonal, mass > 0) the branch passes through u = d_max and the edge lies below it. None if none."""
    dmax = law.d.max()
    s = np.logspace(-13, 13, 3000)[::-1]
    segments = [dmax * (1.0 + s)]
    if atom_top:
        below = law.d[law.d < dmax]
        lo = below.max() if below.size else 0.0
        x = np.concatenate([1 - np.logspace(-13, np.log10(0.5), 1500), np.logspace(np.log10(0.5), -13, 1500)])
        segments.append(lo + (dmax - lo) * np.sort(x)[::-1])
    for u in segments:
        _, Fp = law.F_real(u)
        good = np.isfinite(Fp)
        sign_change = np.flatnonzero(good[:-1] & good[1:] & (Fp[:-1] > 0) & (Fp[1:] < 0))
        if sign_change.size:
            i = sign_change[0]
            ub = brentq(lambda x: float(law.F_real(np.array([x]))[1][0]), u[i + 1], u[i], xtol=1e-15 * u[i],
                        rtol=1e-15, maxiter=200)
            return ub, float(law.F_real(np.array([ub]))[0][0])
        if not atom_top:
            break
    return None


def start_point(law: Law, t_start: float, u_lo: float):
    """Real root u > u_lo of F(u) = t_start on the increasing real branch, then lifted to height δ₀."""
    def g(s):
        return float(law.F_real(np.array([u_lo + np.exp(s)]))[0][0]) - t_start
    scale = np.log(max(abs(u_lo), 1e-300))
    lo, hi = scale - 25.0, scale + 40.0
    while g(hi) < 0:
        hi += 40.0
    while g(lo) > 0 and lo > -700:
        lo -= 40.0
    u = np.array([u_lo + np.exp(brentq(g, lo, hi, xtol=1e-14, maxiter=300))], dtype=complex)
    for k in range(1, 9):
        u = law.newton(u, t_start + 1j * DELTA0 * k / 8, 6)
    return u[0]


class Path:
    """The continuation path at height δ₀: nodes t (descending), u(t), du/dt; extendable downwards."""

    def __init__(self, law: Law, t_start: float, u_start: complex):
        self.law = law
        F, Fp, _ = law.F(np.array([u_start]))
        self.t, self.u, self.du = [t_start], [u_start], [1.0 / Fp[0]]
        self.h = 0.02
        self.t_floor = -np.inf  # below it u has underflowed: a gap down to 0, where the density is 0

    def extend(self, t_to: float):
        with np.errstate(all="ignore"):  # trial steps may leave the physical sheet; they are rejected below
            self._extend(t_to)

    def _extend(self, t_to: float):
        law, target_im = self.law, 1j * DELTA0
        t, u, du, h = self.t[-1], self.u[-1], self.du[-1], self.h
        arr = np.empty(1, dtype=complex)
        while t > t_to and np.isinf(self.t_floor):
            p1 = law.w0 + u * np.sum(law.w / (u - law.d))
            if abs(p1) < 1e-14 or abs(u) < 1e-200:  # 1 + M(z) ≥ mass near |z|: none left below here
                self.t_floor = t
                break
            step = min(h, t - t_to + 1e-12)
            arr[0] = u - step * du
            pred = arr[0]
            for it in range(6):
                F, Fp, m = law.F(arr)
                corr = (F[0] - (t - step) - target_im) / Fp[0]
                arr[0] -= corr
                if abs(corr) <= 1e-13 * abs(arr[0]):
                    break
            ok = abs(corr) <= 1e-9 * abs(arr[0])
            un = arr[0]
            if (ok and np.isfinite(un) and abs(un - u) <= 0.2 * abs(u) + 1e-300
                    and abs(un - pred) <= 0.25 * abs(un - u) + 1e-9 * abs(un)):
                F, Fp, m = law.F(arr)
                if m[0].imag < 0:
                    t, u, du = t - step, un, 1.0 / Fp[0]
                    self.t.append(t), self.u.append(u), self.du.append(du)
                    h = step * (2.0 if it <= 2 else 1.0)
                    continue
            h = step / 4.0
            if h < 1e-10:
                raise RuntimeError(f"continuation of the S-transform root stalled at log λ = {t:.6g}")
        self.h = h

    def guess(self, tq):
        """Cubic Hermite interpolation of u at the sorted-or-not times tq (all within the path)."""
        t = np.asarray(self.t)[::-1]
        u = np.asarray(self.u)[::-1]
        du = np.asarray(self.du)[::-1]
        i = np.clip(np.searchsorted(t, tq) - 1, 0, t.size - 2)
        h = t[i + 1] - t[i]
        s = (tq - t[i]) / h
        h00, h10, h01, h11 = 2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s, -2 * s ** 3 + 3 * s ** 2, s ** 3 - s ** 2
        return h00 * u[i] + h10 * h * du[i] + h01 * u[i + 1] + h11 * h * du[i + 1]


def solve(law: Law, path: Path, tq, ratio=0.1):
    """m(e^{t + iδ_f}) at the log-λ values tq (1-D), by Newton at height δ₀ from the path, then descent."""
    with np.errstate(all="ignore"):
        return _solve(law, path, tq, ratio)


def _solve(law: Law, path: Path, tq, ratio):
    tq = np.asarray(tq, float)
    if tq.size == 0:
        return np.zeros(0, complex)
    if tq.min() < path.t[-1]:
        path.extend(tq.min() - 1.0)
    floor = tq < path.t_floor
    if np.any(floor):
        m = np.full(tq.shape, -1.0 + 0j)
        m[~floor] = _solve(law, path, tq[~floor], ratio)
        return m
    u = law.newton(path.guess(tq), tq + 1j * DELTA0, 3)
    d = DELTA0
    while d > DELTA_F:
        dn = max(d * ratio, DELTA_F)
        _, Fp, _ = law.F(u)
        u = u + 1j * (dn - d) / Fp
        u = law.newton(u, tq + 1j * dn, 2)
        d = dn
    u = law.newton(u, tq + 1j * DELTA_F, 1)
    F, _, m = law.F(u)
    bad = ~(np.abs(F - tq - 1j * DELTA_F) < 1e-7) | ~(m.imag <= 1e-12 * np.abs(m))
    if np.any(bad) and ratio > 0.7:
        raise RuntimeError(f"S-transform root not resolved at log λ = {tq[bad][:3]}")
    if np.any(bad):
        m[bad] = _solve(law, path, tq[bad], np.sqrt(ratio) if ratio < 0.6 else 0.8)
    return m
