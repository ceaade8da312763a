"""The law of a normalization: it resets the length, so what matters is its input scale against ε and the gradient
it passes back.

* input scale: y = γ (x − μ)/√(σ² + ε). With σ² ≫ ε the output is scale-free; with σ² ≪ ε it is x/√ε, so the norm no
  longer normalizes and nothing downstream restores the length (a model whose weights are ÷10⁴). Error when the mean
  squared length of its input, M_in, is below ε (``norm_eps_ratio``), i.e. log(M_in/ε) < 0.
* gradients along a stream with norms (:func:`stream_gradients`): a norm divides the backward signal by the length it
  removes forward, ‖∂ℓ/∂x_in‖² ≈ ‖∂ℓ/∂x_out‖² · M_out/M_in (the Jacobian of x/σ is P/σ), so gradients are compared
  at matching points: the scale-free product G·M at the first read site against the last (each link's gradient
  ratio taken relative to its length ratio). An embedding of std 0.02 feeding a LayerNorm (or a patch embedding) is
  not an explosion. Along a residual stream the comparison starts at the stream's first addition: a constant added
  by the front end before it (a position table) raises the length without touching the gradient, so G·M is not
  conserved there (Whisper's conv front end read e^-8.7 before this; the front end's layers are judged by theirs). What remains — BatchNorm's gradient growth with depth
  (Yang et al. 2019, Thm 3.9), post-LN's growth toward the output (Xiong et al. 2020, Thm 1) — is a warning above
  ``gradient_nats`` and an error above ``normalized_gradient_nats``.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import column, mean_se_log, per_init, quiet, significant

__all__ = ["judge", "input_scale", "stream_gradients"]

SOURCE_EPS = "normalization y = γ(x − μ)/√(σ² + ε): scale-free only for σ² ≫ ε"
SOURCE_GRAD = "Yang et al. 2019 Thm 3.9 (BatchNorm); Xiong et al. 2020 Thm 1 (post-LN)"


@quiet
def input_scale(report, part) -> tuple:
    """(log(M_in/ε), SE) of norm ``part`` (NaN when its input is not a measured site)."""
    k = column(report, part.source or "")
    if k is None:
        return math.nan, math.nan
    m = np.nanmean(report.sq[..., k], axis=1)
    log_m, se = mean_se_log(m)
    return log_m - math.log(part.eps), se


def judge(part, report, t, remedy, parts=()) -> list:
    from deepstart.diagnose.verdicts import Finding

    r, se = input_scale(report, part)
    if not r < math.log(t["norm_eps_ratio"]) or not significant(math.log(t["norm_eps_ratio"]) - r, se,
                                                                 t["significance"]):
        return []
    return [Finding("fm1", "error", part.site, r, math.log(t["norm_eps_ratio"]), None,
                    f"the {part.kind} input has mean squared length exp({r:.3g}) × ε = {part.eps:g}: below ε the norm "
                    "no longer normalizes (its output is x/√ε) and the length is lost for good.", remedy("layer"),
                    SOURCE_EPS)]


@quiet
def _reset(report, k) -> float:
    """log(M_k/M_{k−1}) of the link into main-path position k (a norm's scale reset), NaN when not measured."""
    main = report.main_idx
    j, i = main[k], main[k - 1]
    return math.log(np.nanmean(report.sq[..., j]) / np.nanmean(report.sq[..., i]))


def stream_gradients(report, parts, t, remedy) -> list:  # noqa: ARG001 - same signature as the part laws
    """The gradient ratio along a main path with norms, each norm's scale reset taken out (module docstring)."""
    from deepstart.diagnose.laws.segment import segment_stats
    from deepstart.diagnose.parts import full_links
    from deepstart.diagnose.verdicts import Finding, pm

    use = full_links(report)
    main = report.main_sites
    start = next((k for k, s in enumerate(main) if s["kind"] == "block"), 0)  # a residual stream: its first addition
    norms = [k for k, s in enumerate(main) if s["kind"] == "norm" and k > start and use[k]]
    if not norms:  # no norm between read links: the segments' own laws judge the gradients
        return []
    st = segment_stats(report, range(start, len(main)))
    g, se = st.get("grad_log_ratio", math.nan), st.get("grad_se", math.nan)
    resets = [_reset(report, k) for k in range(max(start, 1), len(main)) if use[k]]
    g -= sum(r for r in resets if math.isfinite(r))
    if not (abs(g) > t["gradient_nats"]) or abs(g) <= t["significance"] * se:
        return []
    severe = abs(g) > t["normalized_gradient_nats"]
    way = "vanishing toward the input" if g < 0 else "exploding toward the input"
    return [Finding("gradients", "error" if severe else "warning", main[start]["name"], g,
                    t["normalized_gradient_nats"] if severe else t["gradient_nats"], None,
                    f"gradients {way}: ‖∂ℓ/∂x‖² at the first site is exp({g:.3g}) times that at the last ({pm(se)}), "
                    f"compared at matching points (G·M, so {len(norms)} norms' scale resets are taken out).",
                    remedy("gradients"), SOURCE_GRAD)]
