"""The law of a concatenation y = [x, f(x)] along the feature axis (a DenseNet layer, Huang et al. 2017).

The mean square of a concatenation is the width-weighted mean of its pieces: with c channels of stream x and g new
ones, M(y) = (c·M(x) + g·M(f(x)))/(c + g). So the stream's length changes at every concatenation by
ξ_l = (c + g·γ_l)/(c + g), where γ_l = M(f(x))/M(x) is the gain of the layer feeding it (a plain segment of its own,
mean-field per layer: Poole et al. 2016; Hanin & Rolnick 2018). A dense block grows like its layers' gains — by
their product when they are off, not additively — and a concatenation is a link of a plain segment
(:mod:`.segment` judges FM1 and gradients over the segment's links when it has ``min_links`` of them).

Where a dense block is too short for the segment's rate over depth, this law judges the block by its layers'
gains: Σ_l log g_l over the block's concatenations, g_l measured against the norm that opens the new layer when
there is one (BN-ReLU-conv), else against the stream (as the branch gain of an addition, :mod:`.addition`), beyond
``fm1_nats`` — the plain law's threshold for the drift of the length over a net's layers.
"""
from __future__ import annotations

import math

from deepstart.diagnose.laws._stats import significant

__all__ = ["judge", "block_gain"]

SOURCE = "width-weighted mean of a concatenation; Hanin & Rolnick 2018 Thm 5 (FM1 of the layers feeding it)"


def _block(part, parts) -> tuple:
    """The main-path concatenations in the segment holding ``part`` and that segment (None: not on the main path)."""
    from deepstart.diagnose.parts import Concat, Segment

    seg = next((p for p in parts if isinstance(p, Segment) and part.site in p.sites), None)
    if seg is None:
        return (), None
    return tuple(p for p in parts if isinstance(p, Concat) and p.main and p.site in seg.sites), seg


def block_gain(report, concats) -> tuple:
    """(Σ log g_l, SE) over ``concats`` (NaN where a gain is not measured)."""
    from deepstart.diagnose.laws.addition import branch_gain

    gains = [branch_gain(report, c) for c in concats]
    if not gains or not all(math.isfinite(g) for g, _ in gains):
        return math.nan, math.nan
    se = [s for _, s in gains]
    return sum(g for g, _ in gains), math.sqrt(sum(s * s for s in se)) if all(map(math.isfinite, se)) else math.nan


def judge(part, report, t, remedy, parts=()) -> list:
    from deepstart.diagnose.verdicts import Finding, pm

    block, seg = _block(part, parts)
    if not block or block[0] is not part or len(seg.links) >= t["min_links"]:
        return []  # judged once per block; a long enough segment is judged by its own rate over depth
    g, se = block_gain(report, block)
    if not abs(g) > t["fm1_nats"] or not significant(abs(g) - t["fm1_nats"], se, t["significance"]):
        return []
    way = "grow" if g > 0 else "shrink"
    return [Finding("fm1", "error", part.site, g, t["fm1_nats"], None,
                    f"the {len(block)} layers feeding the concatenations {block[0].site} … {block[-1].site} {way} "
                    f"their input's mean squared length by exp({g:.3g}) together ({pm(se)}): a concatenation's length "
                    "is the width-weighted mean of its pieces, so the block grows like its layers' gains.",
                    remedy("fm1"), SOURCE)]
