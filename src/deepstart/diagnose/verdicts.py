"""Verdicts: a pure function of a report's measurements and the documented thresholds below.

Statistics along the main path (sites j = 1..D, with M_0 the input when it is a float tensor), over inits i and
inputs b (Hanin & Rolnick 2018, §1 and Thm 5; THEORY.md §4):

* per-layer length ratios ξ_j = M_j/M_{j−1}. FM1 is a sustained exponential drift of the *mean* length:
  ``fm1_drift = D · mean_{j in deeper half} log mean_i ξ_j`` (nats over the whole depth, extrapolated from the deeper
  half so that convergence to a mean-field fixed point q* is not called FM1). Means of ratios are unbiased for
  E[M_j]/E[M_{j−1}] at every width, unlike log lengths, whose mean drifts by −Var/2 (FM2 would leak into FM1).
* FM2: ``fm2_var = Σ_j mean_b Var_i log ξ_j``: Var log M_D written as a sum of independent per-layer terms
  (Thm 5: log M_d = log M_0 + Σ log ξ_j with independent ξ_j), which has D·(n_inits−1) degrees of freedom instead of
  n_inits − 1 for the direct variance (also reported, ``log_var_direct``). For Gaussian He ReLU nets it is ≈ 5β.
* gradients: ``grad_log_ratio = Σ_j log mean_i (G_{j−1}/G_j) = log(G_first/G_last)`` (negative: vanishing).
* isometry (Pennington et al. 2017): Var(λ)/mean(λ)² over the eigenvalues λ = σ² of JJᵀ.

A drift counts only when it also exceeds ``significance`` standard errors, so noise from few inits is not a finding.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["THRESHOLDS", "SEVERITIES", "CATEGORIES", "Finding", "chain_links", "path_stats", "padding_factors",
           "findings"]

THRESHOLDS = {
    "fm1_nats": 1.0,            # |drift of log E[M] over the depth| (a factor e in mean squared length)
    "fm2_var": 10.0,            # Var log M_d in nats² (= 5β with β = 2: typical lengths differ by e^3 ≈ 20×)
    "gradient_nats": math.log(10.0),  # |log(G_first/G_last)|: a decade in squared gradient length across depth
    "isometry_relvar": 1.0,     # Var(λ)/m₁² of JJᵀ: spread of squared singular values as large as their mean
    "dead_fraction": 0.9,       # fraction of a site's units that are 0 for every input (deep ReLU nets correlate
                                # their inputs, c → 1, so ~50% of units are off for all inputs without being "dead")
    "significance": 3.0,        # drifts must also exceed this many standard errors
    # the laws of the parts (deepstart.diagnose.laws, docs/laws.md)
    "layer_gain_nats": 10.0,    # |log M(h_j)/M(x_{j−1})| of one layer: weights orders of magnitude off their input
    "branch_gain": 4.0,         # v_l / M(branch input): the branch doubles the length of its (normalized) input
    "normalized_gradient_nats": 10.0,  # normalized families: gradient imbalance that is an error, not a warning
    "rank_cos": 0.9,            # mean token cosine similarity at the last block: rank collapse
    "attn_entropy": 0.1,        # attention entropy / log(keys): rows near one-hot at init (entropy collapse)
    "links_read": 0.5,          # plain nets: FM1 is "not assessed" when fewer of the main path's links are read
    "min_links": 4,             # FM1 and gradients are rates over depth: fewer links read is a shallow net whose
                                # per-layer gains the layer-gain check judges (an LSTM + head is not "FM1")
    "norm_eps_ratio": 1.0,      # a norm's input M below this many ε: the norm no longer normalizes
}
SEVERITIES = ("info", "warning", "error")
CATEGORIES = ("fm1", "fm2", "gradients", "isometry", "dead", "nonfinite", "structure", "branches", "attention")
NOT_ASSESSED = "not assessed"


@dataclass(frozen=True)
class Finding:
    """One verdict: which layer, what was measured, against which threshold and prediction, and what to do."""

    category: str
    severity: str
    layer: str
    measured: float
    threshold: float
    predicted: float | None
    message: str
    remedy: str
    source: str = ""      # the law's source (paper, theorem) the finding was judged by

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        return cls(**d)

    def __str__(self) -> str:
        return f"[{self.severity}] {self.category} at {self.layer}: {self.message} Remedy: {self.remedy}"


def _mean_se(x: np.ndarray):
    """Mean over inits (axis 0, NaN-aware) of per-init values and its standard error."""
    var, count = _nanvar(x, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nanmean(x, axis=0), np.sqrt(var / np.maximum(count, 1))


def _ratio_stats(chain: np.ndarray):
    """Per-layer mean ratios chain[..., j]/chain[..., j−1] (mean over inputs, then inits) and their SEs."""
    prev, cur = chain[..., :-1], chain[..., 1:]
    ok = np.isfinite(prev) & np.isfinite(cur) & (prev > 0) & (cur > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(ok, cur / np.where(ok, prev, 1.0), np.nan)
        per_init = _nanmean(ratio, axis=1)
    return (*_mean_se(per_init), ratio)


def _nanmean(x, axis):
    count = np.sum(np.isfinite(x), axis=axis)
    total = np.nansum(x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanvar(x, axis):
    count = np.sum(np.isfinite(x), axis=axis)
    mean = np.expand_dims(_nanmean(x, axis), axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        ss = np.nansum((x - mean) ** 2, axis=axis)
        return np.where(count > 1, ss / np.maximum(count - 1, 1), np.nan), count


def pm(se: float, unit: str = " nats") -> str:
    """``"± 0.12 nats"``, or ``"no standard error with one init"`` where there is none (given weights)."""
    return f"± {se:.2g}{unit}" if math.isfinite(se) else "no standard error with one init"


def chain_links(main_sites, with_input: bool) -> np.ndarray:
    """Which links of the main path the verdicts read: link j goes into main site j (from the input M_0 when
    ``with_input``, else from site j−1; the first site has no link then). A link counts when the site's input *is*
    the previous measured tensor (``source``), so pooling, flattening or an unseen skip between two sites is not
    read as a length change of the net; a trailing output layer without activation (a head) after activated
    layers or blocks is left out too: FM1 and vanishing gradients are rates per hidden layer (H&R 2018, §1). The link
    into a pooling site is pooling's own factor (the max of correlated units, an average), which no law of
    initialization speaks about: not read; the layer after it is read from the pooled map it actually reads."""
    n = len(main_sites)
    use = np.zeros(n, dtype=bool)
    for j, s in enumerate(main_sites):
        use[j] = s.get("source") == ("input" if j == 0 else main_sites[j - 1]["name"]) and s["kind"] != "pool"
    hidden = [s["kind"] == "block" or bool(s.get("activation")) for s in main_sites]
    k = n
    while k > 1 and not hidden[k - 1] and any(hidden[:k - 1]):
        k -= 1
    use[k:] = False
    return use if with_input else use[1:]


def path_stats(sq, grad, m0, main_idx, links=None, padding=None) -> dict:
    """Summary statistics along the main path (see the module docstring). Arrays are [inits, inputs, sites];
    ``links`` (from :func:`chain_links`) selects the per-layer ratios read (default: all); ``padding``
    (:func:`padding_factors`: ρ_j, σ_w,j², σ_b,j² per main site) the conv law's zero-padding factor that each
    link's ratios are divided by: E M(h_j) = σ_w² · fan_in · ρ_j · M(x_{j−1}) + σ_b², so the length ratio by
    (a ρ M + σ_b²)/(a M + σ_b²) with a = σ_w² · fan_in and M the mean input length, the gradient ratio by ρ_j (no
    bias enters the backward signal). Default: no padding."""
    sq, grad = np.asarray(sq, float), np.asarray(grad, float)
    idx = list(main_idx)
    if not idx:
        return {"depth": 0}
    m = sq[..., idx]
    m0 = np.asarray(m0, float)
    with_input = bool(m0.size and np.all(np.isfinite(m0)))
    if with_input:
        chain = np.concatenate([np.broadcast_to(m0[None, :, None], (m.shape[0], m.shape[1], 1)), m], axis=-1)
    else:
        chain = m
    depth = chain.shape[-1] - 1
    out = {"depth": depth}
    if depth < 1:
        return out
    use = np.ones(depth, dtype=bool) if links is None else np.asarray(links, dtype=bool)[-depth:]
    rho, fwd = _padding(chain, padding, len(idx), depth)
    mean, se, ratio = _ratio_stats(chain)
    mean, se, ratio = mean / fwd, se / fwd, ratio / fwd
    mean, se = np.where(use, mean, np.nan), np.where(use, se, np.nan)
    ratio = np.where(use, ratio, np.nan)
    read = np.flatnonzero(use)
    out["links_read"] = int(read.size)
    if read.size == 0:
        return out
    half = read[read.size // 2:]
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(mean)
        out["fm1_rate"] = float(np.mean(logs[half]))
        out["fm1_drift"] = read.size * out["fm1_rate"]
        out["fm1_se"] = read.size / len(half) * float(np.sqrt(np.sum((se[half] / mean[half]) ** 2)))
        out["log_mean_ratio"] = float(np.sum(logs[read]))
        log_xi = np.log(ratio)
        var_j, count = _nanvar(log_xi, axis=0)
        var_layer = _nanmean(var_j, axis=0)
        n_eff = np.nanmean(count, axis=0)
        out["fm2_var"] = float(np.nansum(var_layer[read])) if sq.shape[0] > 1 else math.nan  # one init: n/a
        out["fm2_se"] = float(np.sqrt(np.nansum((var_layer * np.sqrt(2.0 / np.maximum(n_eff - 1, 1)))[read] ** 2))) \
            if sq.shape[0] > 1 else math.nan
        direct, _ = _nanvar(np.log(np.where(m[..., -1] > 0, m[..., -1], np.nan)), axis=0)
        out["log_var_direct"] = float(_nanmean(direct, axis=0))
        out["collapsed_fraction"] = float(np.mean(np.any(np.all(m == 0, axis=1), axis=-1)))
        g = grad[..., idx]
        guse = use[-(g.shape[-1] - 1):] if g.shape[-1] >= 2 else np.zeros(0, dtype=bool)
        if g.shape[-1] >= 2 and guse.any():
            gmean, gse, _ = _ratio_stats(g[..., ::-1])
            grho = rho[-(g.shape[-1] - 1):]
            gmean, gse = (gmean[::-1] / grho)[guse], (gse[::-1] / grho)[guse]  # link j−1 → j, in forward order
            out["grad_log_ratio"] = float(np.sum(np.log(gmean)))
            out["grad_se"] = float(np.sqrt(np.sum((gse / gmean) ** 2)))
    out["ratio_mean"] = mean
    return out


def padding_factors(main_sites) -> np.ndarray:
    """[3, sites]: ρ_j (the zero-padding factor of a convolution, :func:`deepstart.diagnose.capture.padding_factor`;
    1 for every other site), a_j = σ_w² (σ_w = √(fan_in · E W²) of the weights' law) and σ_b² of each main site."""
    return np.array([[s.get("padding") or 1.0 for s in main_sites],
                     [(s.get("sigma_w") or 0.0) ** 2 for s in main_sites],
                     [(s.get("sigma_b") or 0.0) ** 2 for s in main_sites]], dtype=float).reshape(3, len(main_sites))


def _padding(chain, padding, n, depth) -> tuple:
    """(ρ per site, the length ratios' padding factor per link) for :func:`path_stats`."""
    if padding is None:
        return np.ones(n), np.ones(depth)
    rho, a, b2 = (np.asarray(v, dtype=float)[-depth:] for v in padding)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_in = _nanmean(_nanmean(chain[..., :-1], axis=1), axis=0)
        fwd = (a * rho * m_in + b2) / (a * m_in + b2)
    fwd = np.where((rho < 1) & np.isfinite(fwd) & (fwd > 0), fwd, np.where(a > 0, 1.0, rho))
    return np.asarray(padding[0], dtype=float), fwd


def _q_ends(report):
    """Predicted pre-activation variance q at the first and last main-path layer, or (None, None)."""
    q = (report.theory or {}).get("q_pred")
    q = np.asarray([] if q is None else q, dtype=float)
    q = q[np.isfinite(q) & (q > 0)]
    return (float(q[0]), float(q[-1])) if q.size >= 2 else (None, None)


def _layer_weight_std(report) -> float:
    """Median weight standard deviation of the report's layers (NaN without one)."""
    stds = [s.get("weight_std") for s in report.sites if s.get("kind") == "layer"]
    stds = [float(x) for x in stds if x is not None and math.isfinite(float(x)) and float(x) > 0]
    return float(np.median(stds)) if stds else math.nan


def _remedy(category: str, report) -> str:
    blocks = [s for s in report.sites if s["kind"] == "block"]
    norms = [s for s in report.sites if s["kind"] == "norm"]
    transformer = any(s.get("attention") for s in blocks) and any(s.get("norm") != "batch_norm" for s in norms)
    batch_norm = any(s.get("norm") == "batch_norm" for s in norms)
    if category == "recurrent":
        return ("initialize the recurrent weights orthogonally (gain 1 for tanh, W_hh orthogonal) and the input "
                "weights at variance 1/fan_in; for LSTMs a forget-gate bias of 1 (Jozefowicz et al. 2015).")
    if category in ("layer", "branches", "fm1", "gradients") and transformer:
        std = _layer_weight_std(report)
        if 0.01 <= std <= 0.04:  # already the N(0, 0.02²) of GPT-2, BERT, Llama, ViT: say what is left to change
            return (f"its weights already follow N(0, {std:.2g}²), the model's own init (as in GPT-2, BERT, "
                    "Llama, ViT); beyond it, scale the branches' output projections by 1/√(2L) as GPT-2 does "
                    "(Radford et al. 2019); for deep post-LN stacks DeepNorm's α/β (Wang et al. 2022) or pre-LN.")
        return ("re-initialize as GPT-2 does: weights N(0, 0.02²), the branches' output projections scaled by "
                "1/√(2L) (Radford et al. 2019); for deep post-LN stacks DeepNorm's α/β (Wang et al. 2022) or pre-LN.")
    if category == "gradients" and batch_norm:
        return ("BatchNorm's gradient explosion grows with depth, not with the init (Yang et al. 2019): use fewer "
                "layers between skips (residual blocks), or normalization without batch statistics.")
    if category == "branches":
        return "scale the residual branches down (η_l = 1/√(2L) on the branch output, or zero-init the last layer)."
    if category == "attention":
        return ("keep attention logits O(1) at init: smaller query/key weights (std ≈ 0.02) or 1/√d scaling; "
                "residual connections around attention preserve rank (Dong et al. 2021).")
    if category == "layer":
        return "re-initialize the layer's weights at a length-preserving scale (variance 1/fan_in times the gain)."
    if norms and category == "fm1":
        return "re-initialize the layer's weights at a length-preserving scale (variance 1/fan_in times the gain)."
    acts = {s["activation"] for s in report.sites if s["main"] and s["kind"] == "layer"}
    has_blocks = any(s["kind"] == "block" for s in report.sites)
    relu_like = acts <= {"relu", "linear", None}
    if category in ("fm1", "gradients"):
        if has_blocks:
            return "scale residual branches by η_l with Σ η_l² < ∞ (e.g. η_l = 1/l) and use a length-preserving init."
        if relu_like:
            return "initialize with variance 2/fan_in for ReLU (scheme 'he'; 1/fan_in if linear), zero biases."
        q_first, q_last = _q_ends(report)
        if q_first is not None and max(q_first / q_last, q_last / q_first) > 2:
            return (f"the pre-activation variance moves from q = {q_first:.3g} at the first layer to {q_last:.3g}: "
                    "χ₁ = 1 holds only at a fixed point q*, so use a critical init (scheme 'critical(q_star=...)') and "
                    "scale the inputs (or the first layer) so that the first layer starts at that q*.")
        return "use the critical init for this activation (scheme 'critical', χ₁ = 1)."
    if category == "fm2":
        return "widen the net: FM2 depends only on β = Σ 1/n_j; constant width ≳ depth keeps Var log M ≈ 5."
    if category == "isometry":
        return ("use tanh-like activations with orthogonal weights on the critical line at small q* "
                "(scheme 'critical(weights=orthogonal)'); ReLU and Gaussian weights cannot reach isometry.")
    if category == "dead":
        return "use zero biases and a length-preserving init (He for ReLU), or a leaky activation."
    if category == "nonfinite":
        return "re-initialize the listed parameters (deepstart.init.apply_) and check for overflow in the inputs."
    return "see the report notes."


def findings(report) -> list:
    """All findings of ``report`` (a pure function of its stored measurements and ``report.thresholds``)."""
    t = {**THRESHOLDS, **report.thresholds}
    out = []
    for name in report.nonfinite_params:
        out.append(Finding("nonfinite", "error", name, math.nan, 0.0, None, "parameter has NaN/Inf entries.",
                           _remedy("nonfinite", report)))
    if not report.sites:
        out.append(Finding("structure", "info", "model", 0.0, 0.0, None,
                           "the model has no parameters (or none that run); nothing to initialize.", "none needed."))
        return out
    hooked = np.array([not s.get("no_grad") for s in report.sites])  # no gradient reaches the others: no NaN read
    bad = np.sum(~np.isfinite(report.sq), axis=(0, 1)) + np.sum(~np.isfinite(report.grad), axis=(0, 1)) * hooked
    for j in np.flatnonzero(bad):
        out.append(Finding("nonfinite", "error", report.sites[j]["name"], float(bad[j]), 0.0, None,
                           f"{int(bad[j])} non-finite lengths or gradients measured.", _remedy("nonfinite", report)))
        break
    from deepstart.diagnose.laws import judge

    st = report.stats
    links = report.links
    if links.size >= 3 and st.get("links_read", 0) < t["links_read"] * links.size:
        out.append(Finding("structure", "warning", "main path", float(st.get("links_read", 0)), float(links.size),
                           None, f"{NOT_ASSESSED}: the laws read {st.get('links_read', 0)} of {links.size} links of "
                           "the main path (the others are not a site feeding the next).",
                           "pass inputs that reach every layer, or check a submodule with a chain of layers."))
    out += judge(report, t, lambda category: _remedy(category, report))
    rel = report.jacobian_relvar
    if rel is not None and rel > t["isometry_relvar"] and not any(s["kind"] == "norm" for s in report.main_sites):
        out.append(Finding("isometry", "warning", "input-output Jacobian", rel, t["isometry_relvar"],
                           report.predicted_stats.get("isometry_relvar"), f"poor dynamical isometry: Var(λ)/m₁² = "
                           f"{rel:.3g} for the eigenvalues λ of JJᵀ.", _remedy("isometry", report),
                           "Pennington et al. 2017"))
    return out + _dead_findings(report, t)


def _dead_findings(report, t) -> list:
    out = []
    st = report.stats
    last = report.main_sites[-1]["name"] if report.main_sites else "output"
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (sites not measured)
        dead = np.nanmean(report.dead, axis=0)
    dead = np.where([bool(s.get("zero_init")) for s in report.sites], np.nan, dead) if dead.size else dead
    if dead.size and np.isfinite(dead).any() and np.nanmax(dead) > t["dead_fraction"]:
        j = int(np.nanargmax(dead))
        out.append(Finding("dead", "warning", report.sites[j]["name"], float(dead[j]), t["dead_fraction"], None,
                           f"{dead[j]:.0%} of units output 0 for every input.", _remedy("dead", report)))
    zero = {s["name"] for s in report.sites if s.get("zero_init")}  # Fixup/SkipInit zero layers: by design
    coll = st.get("collapsed_fraction", 0.0) if not zero else _collapsed(report, zero)
    if coll > 0:
        out.append(Finding("dead", "warning", last, coll, 0.0, None, f"{coll:.0%} of initializations had a layer "
                           "with every unit dead (the output is identically 0).", _remedy("dead", report)))
    return out


def _collapsed(report, zero: set) -> float:
    """Fraction of inits with a main-path site identically 0, zero-initialized layers (and what only they feed:
    the sites measured after them on the path) left out."""
    idx = [j for j in report.main_idx if report.sites[j]["name"] not in zero]
    if not idx:
        return 0.0
    m = np.asarray(report.sq)[..., idx]
    return float(np.mean(np.any(np.all(m == 0, axis=1), axis=-1)))
