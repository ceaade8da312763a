"""The law of a residual addition y = x + η·f(x): the branch gain and which growth law it implies.

The branch gain g = M(η·f(x)) / M(branch input) compares the branch output with what the branch reads: the norm that
normalizes the branch when there is one (pre-LN's opener, ConvNeXt's LayerNorm after a depthwise conv), else the
stream entering the block. A learned layer scale γ, a Fixup multiplier or ReZero/SkipInit's η is part of the branch:
it enters as η (the rms factor it applies), never as a layer of its own. Parallel branches summed before the
addition (GPT-J/NeoX) are one branch.

* normalized branch (a norm inside it, or the stream itself comes from a norm, post-LN): the stream grows additively,
  M_l = M_{l−1} + v_l (Xiong et al. 2020, §3); a branch gain above ``branch_gain`` (4: the branch doubles the length
  of its normalized input) makes every block multiply the stream instead of adding a bounded increment (GPT-2's
  1/√(2L), T-Fixup and DeepNet all shrink g). The limit speaks of a stream on the scale of its normalized input
  (an embedding, M_0 ≈ M(LN(x)) = 1): M_L/M_0 = 1 + Σ v_l/M_0, so the gain is an error only where the increment
  v_l is also above ``branch_gain`` times M_0, the stream entering its segment's first addition (measured there as
  M(y) − v with the branch uncorrelated with the stream at init). Rule made after the fifth held-out zoo was scored:
  BiT's weight-standardized convs and projection shortcuts restart each stage's stream at about fan-in × the
  GroupNorm's output, and branch gains 5–22 against the norm added 0.2–0.7× that stream.
* unnormalized branch: multiplicative, M_l = M_{l−1}(1 + η²g) (Hanin & Rolnick 2018, §4); the segment's FM1 law
  judges the product over the blocks (:mod:`.segment`); a branch gain is an error by itself only where that segment
  is too short to judge.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import column, mean_se_log, per_init, quiet, significant

__all__ = ["judge", "gains", "branch_gain", "stream_gain"]

SOURCE = "Xiong et al. 2020 §3; Radford et al. 2019 (1/√(2L)); Hanin & Rolnick 2018 §4 (η_l)"


def _branch(report, add):
    """[i, b] M of the branch contribution η²·M(f(x)) of addition ``add`` (None: not measured or η = 0)."""
    j = column(report, add.site)
    b = column(report, add.branch or "")
    if b is not None:
        branch, eta = report.sq[..., b], add.scale  # y = x + η·f(x), f a site (layer scale, ReZero, SkipInit: η = 0)
    elif report.branch_sq is not None and j is not None and np.isfinite(report.branch_sq[..., j]).all():
        branch, eta = report.branch_sq[..., j], 1.0
    else:
        return None
    eta2 = 1.0 if eta is None else eta * eta
    return None if eta2 == 0.0 else branch * eta2


def branch_gain(report, add) -> tuple:
    """(log g, SE) of :class:`~deepstart.diagnose.parts.Addition` ``add`` (NaN: not measured or η = 0)."""
    branch, k = _branch(report, add), column(report, add.normalizer or add.stream or "")
    if branch is None or k is None:
        return math.nan, math.nan
    return mean_se_log(per_init(branch, report.sq[..., k]))


def stream_gain(report, add, first=None) -> tuple:
    """(log v_l/M_0, SE): the branch increment of addition ``add`` against M_0, the stream entering addition
    ``first`` (default: ``add`` itself), M_0 = M(y) − v there (Xiong et al. 2020, §3: M(y) = M(x) + v with the
    branch uncorrelated with the stream at init); +inf where that is not positive; NaN where not measured."""
    first = first or add
    branch, b0, j = _branch(report, add), _branch(report, first), column(report, first.site)
    if branch is None or b0 is None or j is None:
        return math.nan, math.nan
    with np.errstate(invalid="ignore"):  # inf − inf where the forward overflowed: NaN, not measured
        diff, v = report.sq[..., j] - b0, branch
    if not (np.isfinite(diff).all() and np.isfinite(v).all()):
        return math.nan, math.nan
    m0 = diff.mean(axis=1)
    if (m0 <= 0).any():
        return math.inf, math.nan
    return mean_se_log(v.mean(axis=1) / m0)


def _first_addition(add, parts):
    """The first addition of the segment that holds ``add`` (``add`` itself when none does)."""
    from deepstart.diagnose.parts import Addition, Segment

    adds = {p.site: p for p in parts if isinstance(p, Addition)}
    seg = next((p for p in parts if isinstance(p, Segment) and add.site in p.sites), None)
    return next((adds[x] for x in seg.sites if x in adds), add) if seg else add


@quiet
def gains(report) -> dict:
    """addition name -> (log g, SE) for every residual addition with a measured branch."""
    from deepstart.diagnose.parts import Addition, read_parts

    out = {}
    for p in read_parts(report):
        if isinstance(p, Addition):
            g = branch_gain(report, p)
            if math.isfinite(g[0]):
                out[p.site] = g
    return out


def _judged_by_segment(add, parts, t) -> bool:
    from deepstart.diagnose.parts import Segment

    return any(isinstance(p, Segment) and p.growth == "multiplicative" and add.site in p.sites and
               len(p.links) >= t["min_links"] for p in parts)


@quiet
def judge(add, report, t, remedy, parts=()) -> list:
    from deepstart.diagnose.verdicts import Finding

    if not add.normalized and _judged_by_segment(add, parts, t):
        return []
    log_g, se = branch_gain(report, add)
    limit = math.log(t["branch_gain"])
    if not (log_g > limit) or not significant(log_g - limit, se, t["significance"]):
        return []
    if add.normalizer:  # the increment against the stream where its segment starts (module docstring)
        log_s, se_s = stream_gain(report, add, _first_addition(add, parts))
        if math.isfinite(log_s) and not (log_s > limit and significant(log_s - limit, se_s, t["significance"])):
            return []
    g = math.exp(log_g)
    against = f"its normalized input ({add.normalizer})" if add.normalizer else "the stream entering the block"
    return [Finding("branches", "error", add.site, g, t["branch_gain"], None,
                    f"residual branch gain g = {g:.3g} (branch opened by {add.opener}): the branch output is {g:.3g}× "
                    f"the squared length of {against}, so blocks multiply the stream instead of adding to it.",
                    remedy("branches"), SOURCE)]
