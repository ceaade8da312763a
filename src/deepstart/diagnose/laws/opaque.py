"""Parts whose law cannot be stated: reported by name as *not assessed*, with what was measured around them.

A custom ``torch.autograd.Function`` (its backward is whatever its author wrote, not the derivative of the ops it
records), or an op the structure reader could not read. On the main path such a part makes the verdict "not
assessed" instead of "healthy" (issue 18: no silent verdicts); inside a residual branch the addition's own law still
judges the branch from its measured output, so the part gets an ``info`` finding.
"""
from __future__ import annotations

import math

from deepstart.diagnose.laws._stats import column, mean_se_log, per_init, quiet

__all__ = ["judge"]


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
