"""Does a change make a model *train* better? The probe's word on a fix (``fix_(..., probe=True)``).

Both models are probed with the same seeds, task, batches, optimizer and learning rate(s), without a reference.
The criterion, fixed before any run: the change trains better when the changed model's overall verdict is better
(``starts`` < ``slow`` < ``stuck`` < ``diverges``), or both start (or are slow) and the unchanged model's mean steps
to the threshold exceed the changed model's by more than 2 standard errors (ratio − 2·SE > 1).
"""
from __future__ import annotations

import torch

from deepstart.probe.api import probe
from deepstart.probe.result import VERDICTS, ratio_se

__all__ = ["trains_better"]


def trains_better(before, after, *, generator: torch.Generator | None = None, **probe_kwargs) -> dict:
    """``{"better", "reason", "before", "after", "ratio", "ratio_se"}`` (the two :class:`ProbeResult` s as dicts)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator if generator is not None else torch.Generator()))
    kw = {**probe_kwargs, "reference": None}
    b = probe(before, generator=torch.Generator().manual_seed(seed), name="before the fix", **kw)
    a = probe(after, generator=torch.Generator().manual_seed(seed), name="after the fix", **kw)
    ratio, se = ratio_se(b.hit, a.hit, b.steps)
    rank_b, rank_a = VERDICTS.index(b.verdict), VERDICTS.index(a.verdict)
    if rank_a < rank_b:
        better, reason = True, f"the probe's verdict improves: {b.verdict} → {a.verdict}"
    elif rank_a == rank_b and a.verdict in ("starts", "slow") and ratio - 2 * se > 1:
        better, reason = True, (f"both {a.verdict}; steps to the threshold before/after {ratio:.2f} ± {se:.2f} "
                                "(> 1 by more than 2 SE)")
    else:
        better, reason = False, (f"the probe does not see it train better: {b.verdict} → {a.verdict}, steps to the "
                                 f"threshold before/after {ratio:.2f} ± {se:.2f}")
    return {"better": better, "reason": reason, "before": b.to_dict(), "after": a.to_dict(), "ratio": ratio,
            "ratio_se": se}
