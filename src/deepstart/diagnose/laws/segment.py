"""The law of a segment: mean-field propagation per link, judged over the segment's own length.

A segment (:class:`deepstart.diagnose.parts.Segment`) is a stretch of the main path with no normalization, recurrent
layer or unreadable op in it and no boundary (pooling, reshaping). Its links j carry the per-link mean length ratios
ξ_j = M_j/M_{j−1} and gradient ratios (:func:`deepstart.diagnose.verdicts.path_stats`, restricted to the segment):

* ``plain`` and ``multiplicative`` segments (weight layers; residual additions whose branch is not normalized, so
  M_l = M_{l−1}(1 + η_l² g_l)): FM1 drift of the mean length over the segment's links, FM2 = Σ Var log ξ_j, and the
  gradient ratio across the segment (Hanin & Rolnick 2018, Thm 5 and §1; Schoenholz et al. 2017, χ₁). FM1 and
  gradients need ``min_links`` links: they are rates over depth.
* ``additive`` segments (every branch normalized or opened by a norm: M_l = M_{l−1} + v_l, Xiong et al. 2020 §3; or
  scaled by η_l with Σ η_l² bounded, Hanin & Rolnick 2018 Thm 2):
  the stream may grow like a polynomial of the depth; the error is growth (or a gradient ratio) beyond
  2·log(L + 1) + 1.5 nats over L links (growth at most like L², coherent branches). Gradients beyond it are a
  warning, an error only beyond ``normalized_gradient_nats`` as well (the branches' norms divide the backward signal
  by the stream's growing length, a polynomial of higher degree with BatchNorm; Yang et al. 2019).

:func:`layer_findings` judges every weight layer by itself (a one-layer segment): a layer that changes the mean
squared length of its input by more than e^±``layer_gain_nats`` has weights orders of magnitude off its input.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import column, mean_se_log, per_init, quiet, significant, worst

__all__ = ["judge", "segment_stats", "layer_gain", "layer_findings", "additive_band", "plain_runs", "run_findings"]

SOURCE_FM = "Hanin & Rolnick 2018, Thm 5 (FM1/FM2); Schoenholz et al. 2017 (χ₁)"
SOURCE_ADDITIVE = "Xiong et al. 2020, §3 (normalized branches add to the stream)"


def additive_band(links: int) -> float:
    """Largest log growth of an additive stream over ``links`` additions: 2·log(L + 1) + 1.5 nats."""
    return 2.0 * math.log(links + 1) + 1.5


def segment_stats(report, positions) -> dict:
    """:func:`~deepstart.diagnose.verdicts.path_stats` over the main-path links ``positions`` only. With one init
    (given weights) the SEs are the spread of one net's log length, √(5β) over the segment (as ``Report.stats``)."""
    from deepstart.diagnose.parts import full_links
    from deepstart.diagnose.verdicts import path_stats

    full = np.zeros(len(report.main_idx), dtype=bool)
    full[list(positions)] = True
    full &= full_links(report)
    mask = full if np.asarray(report.links).size == full.size else full[1:]
    st = path_stats(report.sq, report.grad, report.m0, report.main_idx, mask)
    if report.sq.shape[0] == 1 and st.get("links_read"):
        main = report.main_sites
        beta = sum(1.0 / main[k]["width"] for k in positions if main[k]["kind"] == "layer" and main[k]["activation"])
        st["fm1_se"] = st["grad_se"] = math.sqrt(5.0 * beta) if beta else math.nan
    return st


def judge(seg, report, t, remedy, parts=()) -> list:
    from deepstart.diagnose.verdicts import Finding, pm

    start = _stream_start(seg, report) if seg.growth == "additive" else 0
    st = segment_stats(report, seg.links[start:])
    n, sig = st.get("links_read", 0), t["significance"]
    if not n:
        return []
    last, first = seg.sites[-1], seg.sites[start]
    where = f" over the segment {first} … {last} ({n} links)" if len(seg.sites) < len(report.main_idx) else ""
    out = []
    if seg.growth == "additive":
        band = additive_band(n)
        growth, gse = st.get("log_mean_ratio", math.nan), st.get("fm1_se", math.nan)
        if abs(growth) > band and significant(abs(growth) - band, gse, sig):
            out.append(Finding("fm1", "error", last, growth, band, None,
                               f"the residual stream {'grows' if growth > 0 else 'shrinks'} by exp({growth:.3g}){where}"
                               f", beyond the additive law of normalized or η-scaled branches (≤ exp({band:.3g})).",
                               remedy("branches"), SOURCE_ADDITIVE))
        g, se = st.get("grad_log_ratio", math.nan), st.get("grad_se", math.nan)
        if abs(g) > band and significant(abs(g) - band, se, sig):
            severe = abs(g) > t["normalized_gradient_nats"]  # BatchNorm branches: polynomial of higher degree
            out.append(Finding("gradients", "error" if severe else "warning", first, g,
                               max(band, t["normalized_gradient_nats"]) if severe else band, None,
                               f"gradients change by exp({g:.3g}) along the residual stream{where}, beyond the "
                               f"additive law (≤ exp({band:.3g})).", remedy("gradients"), SOURCE_ADDITIVE))
        return out
    pred = report.predicted_stats if len(seg.sites) == len(report.main_idx) else {}
    deep = n >= t["min_links"]
    drift, se = st.get("fm1_drift", math.nan), st.get("fm1_se", math.nan)
    if deep and abs(drift) > t["fm1_nats"] and not abs(drift) <= sig * se:
        way = "vanishing" if drift < 0 else "exploding"
        out.append(Finding("fm1", "error", last, drift, t["fm1_nats"], pred.get("fm1_drift"),
                           f"FM1 {way}: mean squared length changes by a factor {math.exp(st['fm1_rate']):.3g} "
                           f"per layer, exp({drift:.3g}){where or ' over the depth'} ({pm(se)}).",
                           remedy("fm1"), SOURCE_FM))
    var = st.get("fm2_var", math.nan)
    if var > t["fm2_var"]:
        beta = sum(1.0 / report.main_sites[k]["width"] for k in seg.links
                   if report.main_sites[k]["kind"] == "layer" and report.main_sites[k]["activation"])
        out.append(Finding("fm2", "error", last, var, t["fm2_var"], pred.get("fm2_var"),
                           f"FM2: Var log M_d = {var:.3g} ({pm(st['fm2_se'], '')}) across inits (5β = {5 * beta:.3g})"
                           f"{where}; lengths differ by orders of magnitude between initializations.",
                           remedy("fm2"), SOURCE_FM))
    g, gse = st.get("grad_log_ratio", math.nan), st.get("grad_se", math.nan)
    if deep and abs(g) > t["gradient_nats"] and not abs(g) <= sig * gse:
        way = "vanishing" if g < 0 else "exploding"
        out.append(Finding("gradients", "error", first, g, t["gradient_nats"], pred.get("grad_log_ratio"),
                           f"{way} gradients: ‖∂ℓ/∂x‖² at the first layer is exp({g:.3g}) times that at the last"
                           f"{where}.", remedy("gradients"), SOURCE_FM))
    return out


def _stream_start(seg, report) -> int:
    """Where a segment's residual stream starts: the position (in ``seg.links``) of its first addition. The plain
    layers before it (an embedding, a convolutional front end with a position table added) set the scale the stream
    starts from, M_0; the additive law bounds M_L/M_0 from there (M_l = M_{l−1} + v_l), not the front end's gain."""
    main = report.main_sites
    return next((i for i, k in enumerate(seg.links) if main[k]["kind"] == "block"), 0)


@quiet
def layer_gain(report) -> dict:
    """site name -> (log gain, SE): M of the layer's output h over M of the site feeding it (weight layers the
    mean-field law covers; zero-initialized layers, recurrent and unreadable ones are judged elsewhere)."""
    out = {}
    pre = report.pre_sq
    for j, s in enumerate(report.sites):
        if s["kind"] != "layer" or not s.get("theory_layer") or s.get("zero_init") or s.get("opaque"):
            continue
        k = column(report, s.get("source") or "")
        if k is None:
            continue
        h = pre[..., j] if pre is not None and np.isfinite(pre[..., j]).all() else report.sq[..., j]
        out[s["name"]] = mean_se_log(per_init(h, report.sq[..., k]))
    return out


def layer_findings(report, t, remedy) -> list:
    from deepstart.diagnose.verdicts import Finding, pm

    out, gains = [], layer_gain(report)
    for sign, way in ((-1, "collapses"), (1, "explodes")):
        w = worst(gains, sign)
        if w and sign * w[1] > t["layer_gain_nats"] and not abs(w[1]) <= t["significance"] * w[2]:
            out.append(Finding("fm1", "error", w[0], w[1], t["layer_gain_nats"], None,
                               f"one layer {way} the mean squared length by exp({w[1]:.3g}) ({pm(w[2])}): its "
                               "weights are orders of magnitude off the scale of its input.", remedy("layer"),
                               "mean-field law of one layer: M(h) = σ_w² M(x) + σ_b² (Poole et al. 2016)"))
    return out


def plain_runs(parts) -> list:
    """Main-path runs of consecutive plain or multiplicative segments separated only by boundaries (pooling,
    flattening, reshaping): nothing between them resets the length (no norm, recurrent layer or unreadable op).
    Each run is a tuple of segments; a run of one segment is judged by :func:`judge` alone."""
    from deepstart.diagnose.parts import Addition, Segment

    runs, current = [], []
    for part in parts:
        if isinstance(part, Addition):
            continue  # additions are links of the segment around them
        if isinstance(part, Segment) and part.growth != "additive":
            current.append(part)
            continue
        runs.append(tuple(current))
        current = []
    runs.append(tuple(current))
    return [r for r in runs if len(r) > 1]


def run_findings(report, parts, t, remedy) -> list:
    """Gradients across a run of plain segments (:func:`plain_runs`). A boundary such as max-pooling passes the
    backward signal on (it routes each gradient to one input), so a net that loses a factor per layer in every
    stage between its pools loses the product over all of them, however short each stage is (a default-initialized
    VGG-19: each stage has at most 4 links, the whole net e^-23). The gradient ratio is the sum over the run's
    layer links of the per-link log ratios (the links across a boundary are left out, so pooling's own factor is
    not counted); it is judged against the plain threshold when the run has ``min_links`` links and no single
    segment of it was already judged for gradients (Schoenholz et al. 2017, χ₁ per layer)."""
    from deepstart.diagnose.verdicts import Finding, pm

    out = []
    for run in plain_runs(parts):
        if any(len(seg.links) >= t["min_links"] for seg in run):
            continue  # a segment long enough for its own gradient law was judged by it
        positions = tuple(k for seg in run for k in seg.links)
        st = segment_stats(report, positions)
        n = st.get("links_read", 0)
        g, se = st.get("grad_log_ratio", math.nan), st.get("grad_se", math.nan)
        if n < t["min_links"] or not abs(g) > t["gradient_nats"] or abs(g) <= t["significance"] * se:
            continue
        way = "vanishing" if g < 0 else "exploding"
        first, last = run[0].sites[0], run[-1].sites[-1]
        out.append(Finding("gradients", "error", first, g, t["gradient_nats"], None,
                           f"{way} gradients: ‖∂ℓ/∂x‖² changes by exp({g:.3g}) ({pm(se)}) over the {n} layer links "
                           f"of the {len(run)} plain stages {first} … {last} (pooling and reshaping between them "
                           "reset nothing; each stage is too short to be judged alone).", remedy("gradients"),
                           SOURCE_FM))
    return out
