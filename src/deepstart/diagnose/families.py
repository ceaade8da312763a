"""A law per family, and the verdicts read against it (pure functions of a report's stored measurements).

The family comes from the graph (:func:`deepstart.diagnose.structure.family_of`); ``docs/laws.md`` states each law
with its source. In short:

* **plain, residual** (no normalization): Hanin & Rolnick 2018 FM1/FM2 and mean-field gradients
  (:mod:`deepstart.diagnose.verdicts`), plus the checks below that apply to every family.
* **pre-LN**: the stream grows additively, E M_l = M_{l−1} + v_l (the branch sees a normalized input, so its
  output v_l does not scale with the stream; Xiong et al. 2020, §3). Modest growth is the law, not a failure;
  what fails is a *branch gain* g_l = v_l / M(normalized branch input) far above 1, which makes every block
  multiply the stream instead of adding a bounded increment (GPT-2's 1/√(2L) output scaling, T-Fixup and DeepNet
  all shrink g_l). Error when g_l > ``branch_gain`` (4: the branch doubles the length of its input).
* **post-LN / DeepNorm / sandwich**: the stream is renormalized after every addition, so lengths are not judged;
  gradients across blocks are (Xiong et al. 2020, Thm 1: post-LN gradients grow toward the output at init).
  Branch gain as above, against the normalized stream.
* **BatchNorm nets** (plain-bn, residual-bn): lengths are renormalized per batch; gradients explode with depth at
  init (Yang et al. 2019, Thm 3.9; ≈ exp(0.38·depth) measured for Conv–BN–ReLU here), which stock nets of
  moderate depth survive: a warning above ``gradient_nats``, an error only above ``normalized_gradient_nats``.
* **every family**: a single weight layer that changes the mean squared length by more than e^±``layer_gain_nats``
  (e.g. weights ÷10⁴ push LayerNorm inputs below its ε and nothing normalizes again), and, for token streams,
  rank collapse: mean cosine similarity of the token representations at the last block above ``rank_cos``
  (Dong et al. 2021; Noci et al. 2022: queries and keys stop receiving gradient). A warning, not an error:
  PyTorch's own 48-layer post-LN ``nn.TransformerEncoder`` (cloned layers) reaches 1.00 at init. Likewise an
  attention entropy below ``attn_entropy`` of uniform attention (eager attention only; Zhai et al. 2023).

A statistic counts only when it also exceeds ``significance`` standard errors across inits.
"""
from __future__ import annotations

import math
import warnings
from functools import wraps

import numpy as np

__all__ = ["NORMALIZED", "activation_gain", "layer_gain", "branch_gain", "family_findings", "family_summary"]

NORMALIZED = ("plain-bn", "residual-bn", "pre-ln", "post-ln", "sandwich", "deepnorm")


def _quiet(fn):
    """NumPy's all-NaN warnings off: sites that are not measured are NaN by design."""
    @wraps(fn)
    def inner(*args, **kwargs):
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn(*args, **kwargs)
    return inner


@_quiet
def _per_init(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """[inits] ratio of batch means (NaN where not measured)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        n, d = np.nanmean(num, axis=1), np.nanmean(den, axis=1)
        return np.where((d > 0) & np.isfinite(n), n / np.where(d > 0, d, 1.0), np.nan)


def _mean_se_log(x: np.ndarray):
    """(log of the mean, SE of that log) over inits of positive per-init values."""
    x = x[np.isfinite(x) & (x > 0)]
    if x.size == 0:
        return math.nan, math.nan
    m = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan  # one init: no SE (given weights)
    return math.log(m), se / m


def _col(report, name):
    for j, s in enumerate(report.sites):
        if s["name"] == name:
            return j
    return None


@_quiet
def activation_gain(report) -> np.ndarray:
    """Per site: E φ(h)²/E h² of the elementwise ops after a layer (M after over M before; NaN: no activation)."""
    if report.pre_sq is None or report.sq.shape[-1] == 0:
        return np.full(len(report.sites), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(np.nanmean(report.sq, axis=1) / np.nanmean(report.pre_sq, axis=1), axis=0) \
            if np.isfinite(report.pre_sq).any() else np.full(len(report.sites), np.nan)


def layer_gain(report) -> dict:
    """site name -> (log gain, SE): M of the layer's output h over M of the site feeding it."""
    out = {}
    pre = report.pre_sq
    for j, s in enumerate(report.sites):
        if s["kind"] != "layer" or not s.get("theory_layer"):
            continue
        k = _col(report, s.get("source") or "")
        if k is None:
            continue
        h = pre[..., j] if pre is not None and np.isfinite(pre[..., j]).all() else report.sq[..., j]
        out[s["name"]] = _mean_se_log(_per_init(h, report.sq[..., k]))
    return out


def branch_gain(report) -> dict:
    """block name -> (log g_l, SE): M of the branch output η·f(x) over M of the branch's input (the norm that
    opens a pre-norm branch, else the stream entering the block); blocks with η = 0 (ReZero) add nothing."""
    out = {}
    for j, s in enumerate(report.sites):
        if s["kind"] != "block":
            continue
        b = _col(report, s.get("branch_site") or "")
        if b is not None:
            branch = report.sq[..., b]
        elif report.branch_sq is not None and np.isfinite(report.branch_sq[..., j]).all():
            branch = report.branch_sq[..., j]
        else:
            continue
        opener = next((k for k, t in enumerate(report.sites) if t["kind"] == "norm" and t.get("parent") == s["name"]
                       and t.get("source") == s.get("source")), None)
        k = opener if opener is not None else _col(report, s.get("source") or "")
        if k is None:
            continue
        eta = s.get("eta") if b is not None else 1.0  # y = x + η·f(x) with f a site (ReZero, SkipInit: η = 0)
        eta2 = 1.0 if eta is None else eta * eta
        if eta2 == 0.0:
            continue
        log_g, se = _mean_se_log(_per_init(branch, report.sq[..., k]))
        out[s["name"]] = (log_g + math.log(eta2), se)
    return out


def _worst(stats: dict, sign: int):
    items = [(name, v, se) for name, (v, se) in stats.items() if math.isfinite(v)]
    return max(items, key=lambda t: sign * t[1]) if items else None


@_quiet
def family_findings(report, t: dict, remedy) -> list:
    """Findings every family gets (layer gain, branch gain, rank collapse) and the normalized families' gradient
    verdict; ``remedy(category)`` words the fix."""
    from deepstart.diagnose.verdicts import Finding

    out, sig = [], t["significance"]
    gains = layer_gain(report)
    for sign, way in ((-1, "collapses"), (1, "explodes")):
        worst = _worst(gains, sign)
        if worst and sign * worst[1] > t["layer_gain_nats"] and not abs(worst[1]) <= sig * worst[2]:
            out.append(Finding("fm1", "error", worst[0], worst[1], t["layer_gain_nats"], None,
                               f"one layer {way} the mean squared length by exp({worst[1]:.3g}) (± {worst[2]:.2g} "
                               "nats): its weights are orders of magnitude off the scale of its input.",
                               remedy("layer")))
    if report.family != "residual":  # Hanin–Rolnick residual nets are judged by FM1 with their η (verdicts.py)
        worst = _worst(branch_gain(report), 1)
        if worst and worst[1] > math.log(t["branch_gain"]) and not worst[1] - math.log(t["branch_gain"]) <= \
                sig * worst[2]:
            out.append(Finding("branches", "error", worst[0], math.exp(worst[1]), t["branch_gain"], None,
                               f"residual branch gain g = {math.exp(worst[1]):.3g}: the branch output is "
                               f"{math.exp(worst[1]):.3g}× the squared length of its input, so blocks multiply "
                               "the stream instead of adding to it.", remedy("branches")))
    out += _rank_collapse(report, t, remedy) + _entropy_collapse(report, t, remedy)
    if report.family in NORMALIZED:
        out += _normalized_gradients(report, t, remedy)
    return out


def _entropy_collapse(report, t, remedy) -> list:
    """Attention rows near one-hot at init (normalized entropy below ``attn_entropy``; Zhai et al. 2023)."""
    from deepstart.diagnose.verdicts import Finding

    h = report.attn_entropy
    if h is None or not h.size or not np.isfinite(h).any():
        return []
    per_block = np.nanmean(h, axis=0)
    j = int(np.nanargmin(per_block))
    if not per_block[j] < t["attn_entropy"]:
        return []
    return [Finding("attention", "warning", report.sites[j]["name"], float(per_block[j]), t["attn_entropy"], None,
                    f"attention entropy collapse: the attention rows carry {per_block[j]:.3g} of the entropy of "
                    "uniform attention; logits are too large at init.", remedy("attention"))]


def _rank_collapse(report, t, remedy) -> list:
    from deepstart.diagnose.verdicts import Finding

    if report.token_cos is None:
        return []
    blocks = [j for j, s in enumerate(report.sites) if s["kind"] == "block" and s["main"]]
    cos = [(j, report.token_cos[:, j]) for j in blocks if np.isfinite(report.token_cos[:, j]).all()]
    if not cos:
        return []
    j, last = cos[-1]
    value = float(last.mean())
    if value <= t["rank_cos"]:
        return []
    first = float(cos[0][1].mean())
    return [Finding("attention", "warning", report.sites[j]["name"], value,
                    t["rank_cos"], None, f"rank collapse: token representations at the last block have mean "
                    f"cosine similarity {value:.3f} (first block {first:.3f}); attention can no longer tell tokens "
                    "apart and queries/keys get no gradient.", remedy("attention"))]


def _normalized_gradients(report, t, remedy) -> list:
    from deepstart.diagnose.verdicts import Finding

    st = report.stats
    g, se = st.get("grad_log_ratio", math.nan), st.get("grad_se", math.nan)
    if not (abs(g) > t["gradient_nats"]) or abs(g) <= t["significance"] * se:
        return []
    severe = abs(g) > t["normalized_gradient_nats"]
    way = "vanishing toward the input" if g < 0 else "exploding toward the input"
    law = ("BatchNorm nets: gradients explode with depth at init (Yang et al. 2019)" if "bn" in report.family
           and g > 0 else "the layers' weights shrink the backward signal" if g < 0 and "bn" in report.family else
           "post-norm transformers: gradients grow toward the output at init (Xiong et al. 2020)"
           if report.family in ("post-ln", "deepnorm", "sandwich") else
           "pre-norm transformers: gradients of early blocks sum over the later branches")
    return [Finding("gradients", "error" if severe else "warning", report.main_sites[0]["name"], g,
                    t["normalized_gradient_nats"] if severe else t["gradient_nats"], None,
                    f"gradients {way}: ‖∂ℓ/∂x‖² at the first site is exp({g:.3g}) times that at the last "
                    f"(± {se:.2g}); {law}.", remedy("gradients"))]


@_quiet
def family_summary(report) -> dict:
    """Worst branch gain, extreme layer gains (log, nats) and the last block's token cosine similarity."""
    out = {}
    worst = _worst(branch_gain(report), 1)
    if worst:
        out["branch_gain_max"], out["branch_gain_site"] = math.exp(worst[1]), worst[0]
    gains = layer_gain(report)
    for key, sign in (("layer_gain_min_nats", -1), ("layer_gain_max_nats", 1)):
        w = _worst(gains, sign)
        if w:
            out[key] = w[1]
    if report.token_cos is not None:
        blocks = [j for j, s in enumerate(report.sites) if s["kind"] == "block" and s["main"]]
        cos = [float(np.mean(report.token_cos[:, j])) for j in blocks if np.isfinite(report.token_cos[:, j]).all()]
        if cos:
            out["token_cos_first"], out["token_cos_last"] = cos[0], cos[-1]
    if report.attn_entropy is not None and report.attn_entropy.size:
        per_block = np.nanmean(report.attn_entropy, axis=0)
        if np.isfinite(per_block).any():
            out["attn_entropy_min"] = float(np.nanmin(per_block))
    return out
