"""The law of a residual addition y = x + η·f(x): the branch gain and which growth law it implies.

The branch gain g = M(η·f(x)) / M(branch input) compares the branch output with what the branch reads: the norm that
normalizes the branch when there is one (pre-LN's opener, ConvNeXt's LayerNorm after a depthwise conv), else the
stream entering the block. A learned layer scale γ, a Fixup multiplier or ReZero/SkipInit's η is part of the branch:
it enters as η (the rms factor it applies), never as a layer of its own. Parallel branches summed before the
addition (GPT-J/NeoX) are one branch.

* normalized branch (a norm inside it, or the stream itself comes from a norm, post-LN): the stream grows additively,
  M_l = M_{l−1} + v_l (Xiong et al. 2020, §3); a branch gain above ``branch_gain`` (4: the branch doubles the length
  of its normalized input) makes every block multiply the stream instead of adding a bounded increment (GPT-2's
  1/√(2L), T-Fixup and DeepNet all shrink g).
* unnormalized branch: multiplicative, M_l = M_{l−1}(1 + η²g) (Hanin & Rolnick 2018, §4); the segment's FM1 law
  judges the product over the blocks (:mod:`.segment`); a branch gain is an error by itself only where that segment
  is too short to judge.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import column, mean_se_log, per_init, quiet, significant

__all__ = ["judge", "gains", "branch_gain"]

SOURCE = "Xiong et al. 2020 §3; Radford et al. 2019 (1/√(2L)); Hanin & Rolnick 2018 §4 (η_l)"


def branch_gain(report, add) -> tuple:
    """(log g, SE) of :class:`~deepstart.diagnose.parts.Addition` ``add`` (NaN: not measured or η = 0)."""
    j = column(report, add.site)
    b = column(report, add.branch or "")
    if b is not None:
        branch = report.sq[..., b]
        eta = add.scale  # y = x + η·f(x) with f a site (layer scale, ReZero, SkipInit: η = 0)
    elif report.branch_sq is not None and j is not None and np.isfinite(report.branch_sq[..., j]).all():
        branch, eta = report.branch_sq[..., j], 1.0
    else:
        return math.nan, math.nan
    k = column(report, add.normalizer or add.stream or "")
    if k is None:
        return math.nan, math.nan
    eta2 = 1.0 if eta is None else eta * eta
    if eta2 == 0.0:
        return math.nan, math.nan
    log_g, se = mean_se_log(per_init(branch, report.sq[..., k]))
    return log_g + math.log(eta2), se


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
    g = math.exp(log_g)
    against = f"its normalized input ({add.normalizer})" if add.normalizer else "the stream entering the block"
    return [Finding("branches", "error", add.site, g, t["branch_gain"], None,
                    f"residual branch gain g = {g:.3g} (branch opened by {add.opener}): the branch output is {g:.3g}× "
                    f"the squared length of {against}, so blocks multiply the stream instead of adding to it.",
                    remedy("branches"), SOURCE)]
