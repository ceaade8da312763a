"""Finite-width length laws of ReLU-type networks (Hanin & Rolnick 2018, "How to Start Training"; THEORY.md §4).

Layer j: h_j = W_j x_{j−1} + b_j, x_j = φ(h_j), W_j entries iid symmetric with variance σ_j² (``weight_var``, the
variance of one entry, e.g. 2/fan_in) and normalized 4th moment μ₄ = E w⁴/σ⁴ (``fourth_moment``: 3 Gaussian,
1.8 uniform, 1 Rademacher), b_j ~ N(0, v_j) (``bias_var``); φ piecewise linear (relu, leaky_relu, linear).
M_j = ‖x_j‖²/n_j.

* Moments, exact for any symmetric weight law: with S₂ = ‖x‖², S₄ = Σx⁴, A = σ²S₂ + v and
  B = E h⁴ = σ⁴(3S₂² + (μ₄−3)S₄) + 6σ²vS₂ + 3v², a layer of width n gives E[S₂'] = n c₂ A,
  E[S₄'] = n c₄ B, E[S₂'²] = n c₄ B + n(n−1) c₂² A² (c₂ = E φ(h)²/E h² = (1+a²)/2, c₄ = (1+a⁴)/2 for symmetric h),
  a linear recursion in (E S₂, E S₂², E S₄). FM1 (Hanin–Rolnick Thm 5): E[M_j] = ½(n_{j−1}σ_j² E[M_{j−1}] + v_j)
  for ReLU; FM2 (Gaussian): E[M_d²]/M_0² = ∏(1 + 5/n_j) at He init. The input enters through its
  kurtosis κ = n₀ Σx⁴/(Σx²)² (``input_kurtosis``; 1 for a flat input), needed only when μ₄ ≠ 3.
* Log moments, exact for Gaussian weights and zero biases: M_j = M_{j−1} ξ_j with ξ_j = (n_{j−1}σ_j²/n_j) χ²_{K_j}
  independent, K_j ~ Bin(n_j, ½) active units (relu; K = n for linear), so
  E log ξ = log(n_{j−1}σ_j²/n_j) + log 2 + E ψ(K/2), Var log ξ = E ψ'(K/2) + Var ψ(K/2) (ψ digamma), computed
  conditionally on K ≥ 1 (a dead layer, probability 2^{−n}, sends M to 0). Otherwise (biases, non-Gaussian weights,
  leaky_relu) the log moments are the lognormal match to E M and E M² and ``log_exact`` is False; that match
  understates Var log M at narrow widths (5/n-type heavy tails).
* Residual nets (``residual_eta``): x_l = x_{l−1} + η_l N_l(x_{l−1}) with N_l a length-preserving (He) branch whose
  last layer is symmetric, so the cross term vanishes: E[M_l] = E[M_{l−1}](1 + η_l²). η multiplies the branch
  output (not its variance); FM1 is avoided iff Σ η_l² < ∞. Only ``mean_ratio`` is given (other fields nan).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, polygamma, psi

from deepstart.theory._results import ResultMixin
from deepstart.theory.activations import get_activation

__all__ = ["LengthMoments", "FailureModes", "length_moments", "failure_modes", "parse_widths",
           "relu_log_xi_moments", "FM_THRESHOLD"]

FM_THRESHOLD = 1.0  # nats of log M: a factor e in squared length (see failure_modes)


@dataclass(frozen=True)
class LengthMoments(ResultMixin):
    """Per-layer predictions (index j−1 ↔ layer j = 1..d): E[M_j]/M_0, E[M_j²]/M_0², E log(M_j/M_0), Var log M_j."""

    widths: np.ndarray
    mean_ratio: np.ndarray
    second_ratio: np.ndarray
    log_mean: np.ndarray
    log_var: np.ndarray
    beta: float
    log_exact: bool = True

    _ARRAY_FIELDS = ("widths", "mean_ratio", "second_ratio", "log_mean", "log_var")

    def plot(self, ax=None):
        """E log(M_j/M_0) with a ±1 sd band and log E[M_j]/M_0 against the layer index."""
        import matplotlib.pyplot as plt

        fig, ax = (plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax))
        j = np.arange(1, len(self.widths) + 1)
        ax.plot(j, np.log(self.mean_ratio), "k--", label="log E[M_j]/M_0 (FM1)")
        sd = np.sqrt(np.asarray(self.log_var))
        ax.plot(j, self.log_mean, "C0-", label="E log(M_j/M_0)")
        ax.fill_between(j, self.log_mean - sd, self.log_mean + sd, color="C0", alpha=0.25, label="± sd (FM2)")
        ax.set_xlabel("layer j")
        ax.set_ylabel("log length ratio")
        ax.set_title(f"β = Σ1/n_j = {self.beta:.3g}")
        ax.legend(fontsize=8)
        return fig, ax


@dataclass(frozen=True)
class FailureModes(ResultMixin):
    """Whether FM1 / FM2 occur, and by how much (see :func:`failure_modes` for the thresholds)."""

    depth: int
    beta: float
    fm1_rate: float          # mean per-layer log growth of E[M]: (1/d) log(E[M_d]/M_0)
    fm1_log_ratio: float     # log(E[M_d]/M_0)
    fm1_efold_depth: float   # 1/|fm1_rate| (inf when FM1-free)
    fm2_log_sd: float        # sd of log M_d
    fm1: bool
    fm2: bool
    threshold: float = FM_THRESHOLD
    suggested_width: int | None = None  # constant width keeping sd(log M_d) ≤ threshold at this depth

    def summary(self) -> str:
        fm1 = (f"FM1 {'YES' if self.fm1 else 'no'}: E[M_d]/M_0 = exp({self.fm1_log_ratio:.3g}) "
               f"({self.fm1_rate:+.3g} nats/layer; e-fold depth {self.fm1_efold_depth:.3g} vs depth {self.depth})")
        fm2 = (f"FM2 {'YES' if self.fm2 else 'no'}: sd log M_d = {self.fm2_log_sd:.3g} (β = {self.beta:.3g}; "
               f"threshold {self.threshold:g})")
        if self.fm2 and self.suggested_width:
            fm2 += f"; constant width ≥ {self.suggested_width} fixes it"
        return fm1 + "\n" + fm2


def parse_widths(spec) -> list[int]:
    """``"64x100"`` (100 layers of width 64), ``"10,40,10"``, ``"64x10,128x5"``, or a sequence of ints."""
    if isinstance(spec, str):
        out = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            width, _, count = part.partition("x")
            try:
                out += [int(width)] * (int(count) if count else 1)
            except ValueError:
                raise ValueError(f"widths {spec!r}: bad part {part!r}; use '64x100' (100 layers of width 64), "
                                 "'10,40,10' or '64x10,128x5'") from None
    else:
        out = [int(w) if float(w) == int(w) else -1 for w in np.atleast_1d(spec)]
    if not out or any(w < 1 for w in out):
        raise ValueError(f"widths={spec!r} must be a non-empty list of positive integers")
    return out


def _per_layer(name, value, d):
    arr = np.broadcast_to(np.asarray(value, dtype=float), (d,)) if np.ndim(value) == 0 or len(value) == d else None
    if arr is None:
        raise ValueError(f"{name} must be a number or have one entry per layer ({d}), got {len(value)} entries")
    if np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}={value!r} must be finite and >= 0 (variances)")
    return arr.astype(float)


def relu_log_xi_moments(width: int, *, linear: bool = False) -> tuple[float, float]:
    """(E log χ²_K, Var log χ²_K) for K ~ Bin(width, ½) | K ≥ 1 (relu) or K = width (linear): digamma forms."""
    n = int(width)
    if linear:
        return float(psi(n / 2) + math.log(2)), float(polygamma(1, n / 2))
    k = np.arange(1, n + 1)
    logp = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) - n * math.log(2)
    p = np.exp(logp)
    p /= p.sum()
    m = psi(k / 2)
    mean = float(np.sum(p * m))
    return mean + math.log(2), float(np.sum(p * polygamma(1, k / 2)) + np.sum(p * (m - mean) ** 2))


def length_moments(widths, *, weight_var=None, bias_var=0.0, activation="relu", fourth_moment=3.0,
                   residual_eta=None, in_features: int | None = None, input_kurtosis: float = 1.0) -> LengthMoments:
    """Hanin–Rolnick length moments for hidden widths n_1..n_d (module docstring for the formulas).

    Args:
        widths: hidden widths (list of ints or a string like ``"20x10"``).
        weight_var: per-entry weight variance σ_j² (scalar or per layer); default critical 1/(c₂ fan_in)
            (He, 2/fan_in, for relu).
        bias_var: bias variance v_j (scalar or per layer).
        activation: relu, leaky_relu (with its negative_slope) or linear.
        fourth_moment: μ₄ = E w⁴/σ⁴ of the weight law (3 Gaussian).
        residual_eta: branch multipliers η_l (scalar or per layer) for the residual law ∏(1 + η_l²).
        in_features: n_0, the fan-in of layer 1 (default widths[0]).
        input_kurtosis: n₀Σx⁴/(Σx²)² of the input (matters only when fourth_moment ≠ 3).

    Example (THEORY.md §4): ``length_moments("20x10").second_ratio[-1]`` = ∏(1 + 5/20) = 9.3132.
    """
    n = np.asarray(parse_widths(widths), dtype=float)
    d = len(n)
    act = get_activation(activation)
    if act.slopes is None or act.slopes[0] != 1.0:
        raise ValueError(f"activation {act.name!r}: length_moments needs a piecewise-linear φ through 0 "
                         "(relu, leaky_relu, linear); for others use deepstart.theory.q_map (mean field)")
    n0 = float(n[0] if in_features is None else in_features)
    fans = np.concatenate([[n0], n[:-1]])
    if residual_eta is not None:
        eta = _per_layer("residual_eta", residual_eta, d)
        nan = np.full(d, np.nan)
        return LengthMoments(n, np.cumprod(1.0 + eta ** 2), nan, nan, nan, float(np.sum(1 / n)), False)
    c2 = act.growth
    a = act.slopes[1]
    c4 = (1.0 + a ** 4) / 2.0
    s2 = _per_layer("weight_var", 1.0 / (c2 * fans) if weight_var is None else weight_var, d)
    v = _per_layer("bias_var", bias_var, d)
    mu4 = float(fourth_moment)
    if not mu4 >= 1.0:
        raise ValueError(f"fourth_moment={fourth_moment!r} must be >= 1 (E w⁴ ≥ (E w²)²; 3 for Gaussian weights)")
    # state: E S2, E S2², E S4 with M_0 = 1
    es2, es22, es4 = n0, n0 * n0, float(input_kurtosis) * n0
    mean, second = np.empty(d), np.empty(d)
    for j in range(d):
        A = s2[j] * es2 + v[j]
        A2 = s2[j] ** 2 * es22 + 2 * s2[j] * v[j] * es2 + v[j] ** 2
        B = s2[j] ** 2 * (3 * es22 + (mu4 - 3) * es4) + 6 * s2[j] * v[j] * es2 + 3 * v[j] ** 2
        es2, es4, es22 = n[j] * c2 * A, n[j] * c4 * B, n[j] * c4 * B + n[j] * (n[j] - 1) * c2 ** 2 * A2
        mean[j], second[j] = es2 / n[j], es22 / n[j] ** 2
    exact = mu4 == 3.0 and not np.any(v > 0) and a in (0.0, 1.0)
    if exact:
        stats = np.array([relu_log_xi_moments(int(w), linear=a == 1.0) for w in n])
        log_mean = np.cumsum(np.log(fans * s2 / n) + stats[:, 0])
        log_var = np.cumsum(stats[:, 1])
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_var = np.log(second / mean ** 2)
            log_mean = np.log(mean) - 0.5 * log_var
    return LengthMoments(n, mean, second, log_mean, log_var, float(np.sum(1 / n)), bool(exact))


def failure_modes(widths, *, threshold: float = FM_THRESHOLD, **kwargs) -> FailureModes:
    """Do FM1 / FM2 occur for this architecture (Hanin & Rolnick 2018, §1.1)? ``kwargs`` as :func:`length_moments`.

    Both are measured in nats of log M_d, the output's squared length relative to the input, against one
    threshold (default 1, a factor e):

    * FM1 — the mean length drifts exponentially: rate r = (1/d) log(E[M_d]/M_0) per layer; it matters once the
      depth exceeds the e-folding depth 1/|r|, i.e. |log E[M_d]/M_0| > threshold (same criterion as L ≲ ξ in
      mean field).
    * FM2 — the length of a typical net fluctuates: sd(log M_d) > threshold. For Gaussian ReLU nets
      Var log M_d ≈ 5β, so FM2 ⇔ β = Σ1/n_j ≳ 1/5, i.e. constant width n ≳ 5·depth; ``suggested_width`` is the
      smallest constant width with sd ≤ threshold from the exact digamma variance.
    """
    if not threshold > 0:
        raise ValueError(f"threshold={threshold!r} must be > 0 (nats of log M_d)")
    lm = length_moments(widths, **kwargs)
    d = len(lm.widths)
    ratio = float(np.log(lm.mean_ratio[-1]))
    rate = ratio / d
    sd = float(np.sqrt(lm.log_var[-1])) if np.isfinite(lm.log_var[-1]) else float("nan")
    act = get_activation(kwargs.get("activation", "relu"))
    suggested = None
    if kwargs.get("residual_eta") is None and act.slopes is not None:
        suggested = _suggest_width(d, threshold, linear=act.slopes[1] == 1.0)
    efold = math.inf if rate == 0 else 1.0 / abs(rate)
    return FailureModes(d, lm.beta, rate, ratio, efold, sd, bool(abs(ratio) > threshold),
                        bool(sd > threshold), float(threshold), suggested)


def _suggest_width(depth: int, threshold: float, *, linear: bool) -> int:
    """Smallest n with depth·Var log ξ(n) ≤ threshold² (bisection; Var log ξ decreases in n)."""
    target = threshold ** 2 / depth

    def ok(w):
        return relu_log_xi_moments(w, linear=linear)[1] <= target

    lo, hi = 1, 2
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > 1 << 24:
            return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi
