"""Laws of attention branches: rank collapse and attention entropy collapse (warnings).

* rank collapse: mean cosine similarity of the token representations at the last main-path addition above
  ``rank_cos`` (Dong et al. 2021; Noci et al. 2022: queries and keys stop receiving gradient). A warning, not an
  error: PyTorch's own 48-layer post-LN ``nn.TransformerEncoder`` (cloned layers) reaches 1.00 at init.
* entropy collapse: attention rows carrying less than ``attn_entropy`` of the entropy of uniform attention (eager
  attention only; Zhai et al. 2023).
"""
from __future__ import annotations

import numpy as np

from deepstart.diagnose.laws._stats import quiet

__all__ = ["judge"]


@quiet
def judge(report, t, remedy) -> list:
    return _rank_collapse(report, t, remedy) + _entropy_collapse(report, t, remedy)


def _entropy_collapse(report, t, remedy) -> list:
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
                    "uniform attention; logits are too large at init.", remedy("attention"), "Zhai et al. 2023")]


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
    return [Finding("attention", "warning", report.sites[j]["name"], value, t["rank_cos"], None,
                    f"rank collapse: token representations at the last block have mean cosine similarity {value:.3f} "
                    f"(first block {first:.3f}); attention can no longer tell tokens apart and queries/keys get no "
                    "gradient.", remedy("attention"), "Dong et al. 2021; Noci et al. 2022")]
