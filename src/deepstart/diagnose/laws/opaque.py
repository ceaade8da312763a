"""Parts whose law cannot be stated: reported by name as *not assessed*, with what was measured around them.

A custom ``torch.autograd.Function`` (its backward is whatever its author wrote, not the derivative of the ops it
records), or an op the structure reader could not read. On the main path such a part makes the verdict "not
assessed" instead of "healthy" (issue 18: no silent verdicts); inside a residual branch the addition's own law still
judges the branch from its measured output, so the part gets an ``info`` finding.
"""
from __future__ import annotations

import math

from deepstart.diagnose.laws._stats import column, mean_se_log, per_init, quiet, significant

__all__ = ["judge", "stream_inside"]


@quiet
def _around(report, part) -> str:
    j = column(report, part.site)
    k = column(report, next(iter(part.around), ""))
    if j is None:
        return ""
    bits = []
    if k is not None and part.around[0] != part.site:
        fwd = mean_se_log(per_init(report.sq[..., j], report.sq[..., k]))[0]
        back = mean_se_log(per_init(report.grad[..., k], report.grad[..., j]))[0]
        if math.isfinite(fwd):
            bits.append(f"M from {part.around[0]} to here ×exp({fwd:.3g})")
        if math.isfinite(back):
            bits.append(f"‖∂ℓ/∂x‖² back across it ×exp({back:.3g})")
    return "; measured around it: " + ", ".join(bits) if bits else ""


def judge(part, report, t, remedy, parts=()) -> list:
    from deepstart.diagnose.verdicts import NOT_ASSESSED, Finding

    around = _around(report, part)
    if part.main:
        return [Finding("structure", "warning", part.site, math.nan, 0.0, None,
                        f"{NOT_ASSESSED}: {part.site} ({part.module}) on the main path: {part.reason}{around}.",
                        "check the model without it (or with a plain module in its place) to judge the rest.",
                        "issue 18: no verdict without a law for every part on the main path")]
    return [Finding("structure", "info", part.site, math.nan, 0.0, None,
                    f"{part.site} ({part.module}) inside a residual branch: {part.reason}{around}; the branch is "
                    "judged from its measured output.", "none needed.", "issue 18")]


@quiet
def stream_inside(report, t, remedy) -> list:
    """The residual blocks run inside a custom Function's forward (no gradient reaches them: ``no_grad`` sites) are
    still judged by what is measured there, their forward lengths: the stream's growth from the last hooked site
    before them to the last of them, against the bound of a residual stream over that many additions,
    2·log(L + 1) + 1.5 nats (:func:`deepstart.diagnose.laws.segment.additive_band`, the law of every residual
    stream: Hanin & Rolnick 2018 §4, Xiong et al. 2020 §3). An error beyond it (by ``significance`` SEs); within it
    the blocks stay not assessed (their gradients are not measured)."""
    from deepstart.diagnose.laws.segment import additive_band
    from deepstart.diagnose.verdicts import Finding

    inside = [j for j, s in enumerate(report.sites) if s.get("no_grad") and s["kind"] == "block"]
    before = [j for j in range(inside[0]) if not report.sites[j].get("no_grad")] if inside else []
    if not before:
        return []
    last, first = report.sites[inside[-1]]["name"], report.sites[before[-1]]["name"]
    growth, se = mean_se_log(per_init(report.sq[..., inside[-1]], report.sq[..., before[-1]]))
    band = additive_band(len(inside))
    if not (abs(growth) > band and significant(abs(growth) - band, se, t["significance"])):
        return []
    way = "grows" if growth > 0 else "shrinks"
    return [Finding("branches", "error", last, growth, band, None,
                    f"the residual stream {way} by exp({growth:.3g}) from {first} to {last} across {len(inside)} "
                    f"additions run inside a custom autograd Function (forward lengths; no gradient reaches them), "
                    f"beyond the bound of a residual stream at this depth (≤ exp({band:.3g})).",
                    remedy("branches"), "residual stream bound 2·log(L + 1) + 1.5 nats (docs/laws.md)")]
