"""The law of parallel branches joined by concatenation (an Inception module, Szegedy et al. 2015):
y = [f₁(x), …, f_n(x)] along the feature axis.

Each branch is a plain segment from the module's input x to the concatenation; the mean square of the
concatenation is the width-weighted mean of its pieces', M(y) = Σ_i c_i M(f_i(x)) / Σ_i c_i, so the module is one
link of the stream with gain M(y)/M(x), and its gradient is compared at matching points — the module's input and
its output — never at a site inside one branch against the stream (a branch's pre-BatchNorm conv output carries a
gradient larger by the length the norm removes, which is no explosion of the stream). A run of modules grows like
the product of their gains (mean-field per layer: Poole et al. 2016; Hanin & Rolnick 2018), so the law judges
Σ log(M(y)/M(x)) over the main path's modules beyond ``fm1_nats``, and Σ log(G(x)/G(y)) beyond
``normalized_gradient_nats`` when a norm sits in a branch, else beyond ``gradient_nats`` — the plain and normalized
laws' thresholds for a net's whole depth. The length sum is over the modules without a norm in their branches: a
module whose branches hold a norm resets the length like a norm (its output's scale is the norm's, whatever its
input's: after a max-pool, whose output is longer than the map it pools, its ratio reads as a shrink), so no FM1
rate runs through it (rule made with the pooling sites, docs/laws.md).
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import column, mean_se_log, quiet, significant

__all__ = ["judge", "module_gains"]

SOURCE = ("width-weighted mean of a concatenation of parallel branches; Hanin & Rolnick 2018 Thm 5 (FM1), "
          "gradients at the module's input and output")


@quiet
def _log_ratio(a, b) -> tuple:
    """(mean log(Σa/Σb) over inits, SE): a and b are [inits, inputs] arrays."""
    r = np.nanmean(a, axis=1) / np.nanmean(b, axis=1)
    return mean_se_log(r)


def _summed(ratios) -> tuple:
    """(Σ log ratio, SE of the sum) over independent per-module (log ratio, SE) pairs."""
    var = sum(se * se for _, se in ratios)
    return sum(g for g, _ in ratios), math.sqrt(var) if math.isfinite(var) else math.nan


def module_gains(report, modules) -> tuple:
    """((Σ log M(y)/M(x), SE), (Σ log G(x)/G(y), SE)) over ``modules`` (NaN where not measured)."""
    cols = [(column(report, p.stream or ""), column(report, p.site)) for p in modules]
    if not cols or any(i is None or j is None for i, j in cols):
        return (math.nan, math.nan), (math.nan, math.nan)
    sq, grad = np.asarray(report.sq, float), np.asarray(report.grad, float)
    return (_summed([_log_ratio(sq[..., j], sq[..., i]) for i, j in cols]),
            _summed([_log_ratio(grad[..., i], grad[..., j]) for i, j in cols]))


def _finding(kind, part, value, limit, se, t, text, remedy):
    from deepstart.diagnose.verdicts import Finding

    if not abs(value) > limit or not significant(abs(value) - limit, se, t["significance"]):
        return []
    return [Finding(kind, "error", part.site, value, limit, None, text, remedy(kind), SOURCE)]


def judge(part, report, t, remedy, parts=()) -> list:
    from deepstart.diagnose.parts import Branches
    from deepstart.diagnose.verdicts import pm

    modules = tuple(p for p in parts
                    if isinstance(p, Branches) and p.main and column(report, p.stream or "") is not None)
    if not modules or modules[0] is not part:
        return []  # judged once, over every module on the main path
    _, (g, g_se) = module_gains(report, modules)
    g_limit = t["normalized_gradient_nats"] if any(p.normalized for p in modules) else t["gradient_nats"]
    span = f"the {len(modules)} modules of parallel branches {modules[0].site} … {modules[-1].site}"
    plain = tuple(p for p in modules if not p.normalized)  # a module with a norm resets the length, like a norm
    (m, m_se), _ = module_gains(report, plain) if plain else ((math.nan, math.nan), None)
    where = span if len(plain) in (0, len(modules)) else \
        f"the {len(plain)} modules of parallel branches without a norm {plain[0].site} … {plain[-1].site}"
    out = _finding("fm1", part, m, t["fm1_nats"], m_se, t,
                   f"{where} {'grow' if m > 0 else 'shrink'} the stream's mean squared length by exp({m:.3g}) "
                   f"together ({pm(m_se)}): each concatenation's length is the width-weighted mean of its branches'.",
                   remedy) if plain else []
    return out + _finding("gradients", part, g, g_limit, g_se, t,
                          f"across {span}, ‖∂ℓ/∂x‖² at the modules' inputs is exp({g:.3g}) times that at their "
                          f"outputs together ({pm(g_se)}), compared at matching points (each module's input and "
                          "output).", remedy)
