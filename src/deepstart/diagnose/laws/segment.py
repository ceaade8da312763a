"""The law of a segment: mean-field propagation per link, judged over the segment's own length.

A segment (:class:`deepstart.diagnose.parts.Segment`) is a stretch of the main path with no normalization, recurrent
layer or unreadable op in it and no boundary (pooling, reshaping). Its links j carry the per-link mean length ratios
ξ_j = M_j/M_{j−1} and gradient ratios (:func:`deepstart.diagnose.verdicts.path_stats`, restricted to the segment):

* ``plain`` segments (weight layers only): FM1 drift of the mean length over the segment's links, FM2 =
  Σ Var log ξ_j, and the gradient ratio across the segment (Hanin & Rolnick 2018, Thm 5 and §1; Schoenholz et al.
  2017, χ₁). FM1 and gradients need ``min_links`` links: they are rates over depth. At the critical init E ξ_j = 1
  exactly, so a drift beyond ``fm1_nats`` (1 nat) measures an init off criticality.
* residual segments, judged from the stream's first addition by their total growth (and gradient ratio) over their
  L links against the bound of a residual stream, :func:`additive_band` = 2·log(L + 1) + 1.5 nats (growth at most
  like L², coherent branches):

  - ``additive`` (every branch normalized or opened by a norm: M_l = M_{l−1} + v_l, Xiong et al. 2020 §3; or scaled
    by η_l with Σ η_l² bounded, Hanin & Rolnick 2018 Thm 2): the stream may grow like a polynomial of the depth;
  - ``multiplicative`` (branches not normalized, Σ η_l² unbounded: E M_l = E M_{l−1}(1 + η_l² g_l), Hanin &
    Rolnick 2018 Thm 2 and §4): the growth is exponential in depth at any init, and FM1 is its L → ∞ statement; at
    the model's finite depth the total growth is what is judged, against the same bound, and the finding says the
    growth is exponential and at how many links it leaves the bound (:func:`crossing_depth`). Needs ``min_links``
    links (shorter stretches: the addition law's branch gain); FM2 as a plain segment (rule made after the fourth
    held-out zoo was scored, ``docs/laws.md``).

  Gradients beyond the bound are a warning, an error only beyond ``normalized_gradient_nats`` as well (the
  branches' norms divide the backward signal by the stream's growing length, a polynomial of higher degree with
  BatchNorm, Yang et al. 2019; unnormalized branches grow it with the forward signal, over the same blocks).

:func:`layer_findings` judges every weight layer by itself (a one-layer segment): a layer that changes the mean
squared length of its input by more than e^±``layer_gain_nats`` has weights orders of magnitude off its input.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import column, mean_se_log, per_init, quiet, significant, worst

__all__ = ["judge", "segment_stats", "layer_gain", "layer_findings", "additive_band", "crossing_depth", "plain_runs",
           "run_findings"]

SOURCE_FM = "Hanin & Rolnick 2018, Thm 5 (FM1/FM2); Schoenholz et al. 2017 (χ₁)"
SOURCE_ADDITIVE = "Xiong et al. 2020, §3 (normalized branches add to the stream)"
SOURCE_RESIDUAL = ("Hanin & Rolnick 2018, Thm 2 and §4 (E M_L = M_0 ∏(1 + η_l² g_l)); the bound of a residual "
                   "stream, 2·log(L + 1) + 1.5 nats (Xiong et al. 2020, §3)")


def additive_band(links: int) -> float:
    """Largest log growth of an additive stream over ``links`` additions: 2·log(L + 1) + 1.5 nats."""
    return 2.0 * math.log(links + 1) + 1.5


def segment_stats(report, positions) -> dict:
    """:func:`~deepstart.diagnose.verdicts.path_stats` over the main-path links ``positions`` only. With one init
    (given weights) the SEs are the spread of one net's log length, √(5β) over the segment (as ``Report.stats``)."""
    from deepstart.diagnose.parts import full_links
    from deepstart.diagnose.verdicts import padding_factors, path_stats

    full = np.zeros(len(report.main_idx), dtype=bool)
    full[list(positions)] = True
    full &= full_links(report)
    mask = full if np.asarray(report.links).size == full.size else full[1:]
    st = path_stats(report.sq, report.grad, report.m0, report.main_idx, mask, padding_factors(report.main_sites))
    if report.sq.shape[0] == 1 and st.get("links_read"):
        main = report.main_sites
        beta = sum(1.0 / main[k]["width"] for k in positions if main[k]["kind"] == "layer" and main[k]["activation"])
        st["fm1_se"] = st["grad_se"] = math.sqrt(5.0 * beta) if beta else math.nan
    return st


def judge(seg, report, t, remedy, parts=()) -> list:
    """Findings of segment ``seg``: a ``plain`` one by the mean-field law per link (:func:`_plain_law`), a residual
    one (``additive`` or ``multiplicative``) by its total growth against :func:`additive_band` (:func:`_stream_law`);
    a ``multiplicative`` one also by FM2, as a plain one."""
    if seg.growth == "plain":
        return _plain_law(seg, report, t, remedy)
    if seg.growth == "additive":
        return _stream_law(seg, report, t, remedy, parts)
    out = _stream_law(seg, report, t, remedy) if len(seg.links) >= t["min_links"] else []
    return out + _plain_law(seg, report, t, remedy, fm2_only=True)


def crossing_depth(rate: float, limit: int = 10**9) -> int | None:
    """The fewest links L at which a stream growing by |``rate``| nats per link leaves the bound of a residual stream,
    |rate|·L > :func:`additive_band` (L) (None: not below ``limit``). f(L) = |rate|·L − 2·log(L + 1) − 1.5 is convex
    with f(0) < 0, so it has one root; found by bisection over the integers."""
    r = abs(rate)
    if not r > 0 or not math.isfinite(r):
        return None
    beyond = lambda n: r * n > additive_band(n)  # noqa: E731
    hi = 1
    while not beyond(hi):
        if hi >= limit:
            return None
        hi *= 2
    lo = hi // 2  # not beyond at lo (or lo = 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if beyond(mid) else (mid, hi)
    return hi


def _stream_law(seg, report, t, remedy, parts=()) -> list:
    """A residual stream judged by its total growth and gradient ratio from its first addition, against the bound
    2·log(L + 1) + 1.5 nats over its L links (:func:`additive_band`).

    * ``additive`` (normalized branches, or bounded Σ η_l²): that bound is the law (module docstring).
    * ``multiplicative`` (unnormalized branches with unbounded Σ η_l², E M_l = E M_{l−1}(1 + η_l² g_l)): the stream
      grows exponentially in depth at *any* init — Hanin & Rolnick 2018, Thm 2 and §4: log E[M_L]/M_0 =
      Σ_l log(1 + η_l² g_l), bounded in L iff Σ η_l² is; FM1 is a statement about L → ∞. A plain segment at its
      critical init has E ξ_j = 1 exactly (Thm 5; Poole et al. 2016), so its drift measures how far the init is off
      criticality and ``fm1_nats`` (1 nat) judges it; a residual stream with η_l = 1 has no such init short of
      zeroing its branches, and what decides whether it starts training at the model's actual depth is its total
      growth and gradient ratio there. Those are judged by the same bound as every residual stream (growth like L²
      plus slack, the additive law's, Xiong et al. 2020 §3), and the finding says that the growth is exponential and
      at how many links (:func:`crossing_depth`) it leaves the bound at the measured rate per link: an ``info``
      within the bound when the growth is beyond ``fm1_nats``, an error beyond it.

    Gradients beyond the bound are a warning, an error only beyond ``normalized_gradient_nats`` too (for a
    multiplicative stream the backward signal grows with the forward one, G_{l−1} = G_l(1 + χ_l), over the same
    blocks; the forward growth is the error)."""
    from deepstart.diagnose.verdicts import Finding

    start = _stream_start(seg, report)
    st = segment_stats(report, seg.links[start:])
    n, sig = st.get("links_read", 0), t["significance"]
    if not n:
        return []
    last, first = seg.sites[-1], seg.sites[start]
    where = f" over the segment {first} … {last} ({n} links)" if len(seg.sites) < len(report.main_idx) else ""
    band, out = additive_band(n), []
    exponential = seg.growth == "multiplicative"
    growth, gse = st.get("log_mean_ratio", math.nan), st.get("fm1_se", math.nan)
    growth -= _shortcut_gain(report, seg.sites[start], parts)
    way, span = "grows" if growth > 0 else "shrinks", where or f" over {n} links"
    beyond = abs(growth) > band and significant(abs(growth) - band, gse, sig)
    if exponential and (beyond or abs(growth) > t["fm1_nats"] and significant(abs(growth), gse, sig)):
        at = crossing_depth(growth / n)
        rate = (f"exponentially in depth, by a factor {math.exp(growth / n):.3g} per link (its branches are not "
                f"normalized: E M_l = E M_{{l−1}}(1 + η_l² g_l), unbounded unless Σ η_l² is)")
        if beyond:
            depth = f"; it stays within the bound up to {at - 1} links" if at and at > 1 else ""
            text = (f"the residual stream {way} by exp({growth:.3g}){span}, {rate}, beyond the "
                    f"bound of a residual stream at this depth (≤ exp({band:.3g})){depth}.")
        else:
            depth = f"; at this rate it leaves the bound at about {at} links" if at else ""
            text = (f"the residual stream {way} by exp({growth:.3g}){span}, within the bound of a "
                    f"residual stream at this depth (≤ exp({band:.3g})), but {rate}{depth}: deeper stacks of these "
                    "blocks need branch scaling (η_l = 1/l) or normalized branches.")
        out.append(Finding("fm1", "error" if beyond else "info", last, growth, band, None, text,
                           remedy("fm1"), SOURCE_RESIDUAL))
    elif beyond:
        out.append(Finding("fm1", "error", last, growth, band, None,
                           f"the residual stream {way} by exp({growth:.3g}){where}, beyond the additive law of "
                           f"normalized or η-scaled branches (≤ exp({band:.3g})).", remedy("branches"),
                           SOURCE_ADDITIVE))
    g, se = st.get("grad_log_ratio", math.nan), st.get("grad_se", math.nan)
    if abs(g) > band and significant(abs(g) - band, se, sig):
        severe = abs(g) > t["normalized_gradient_nats"]  # BatchNorm branches: polynomial of higher degree
        law = "the bound of a residual stream" if exponential else "the additive law"
        out.append(Finding("gradients", "error" if severe else "warning", first, g,
                           max(band, t["normalized_gradient_nats"]) if severe else band, None,
                           f"gradients change by exp({g:.3g}) along the residual stream{where}, beyond {law} "
                           f"(≤ exp({band:.3g})).", remedy("gradients"),
                           SOURCE_RESIDUAL if exponential else SOURCE_ADDITIVE))
    return out


def _shortcut_gain(report, site: str, parts) -> float:
    """log M_0/M(x) at the segment's first addition ``site``, y = P(x) + f(x): the gain of a projection shortcut P
    (a conv restarting the stream at each stage of a ResNetV2/BiT, He et al. 2016b), with M_0 = M(y) − v read at the
    addition (branch uncorrelated with the stream at init, Xiong et al. 2020 §3). A weight layer's gain, not growth
    of the stream: the additive law bounds M_L/M_0. 0 where the shortcut is the identity (M_0 within a factor e of
    M(x)) or not measured (rule made after the fifth held-out zoo was scored)."""
    from deepstart.diagnose.laws._stats import column
    from deepstart.diagnose.laws.addition import stream_gain
    from deepstart.diagnose.parts import Addition

    add = next((p for p in parts if isinstance(p, Addition) and p.site == site), None)
    k = column(report, add.stream or "") if add is not None else None
    if k is None:
        return 0.0
    log_v, _ = stream_gain(report, add)  # v / M_0
    j = column(report, site)
    if not math.isfinite(log_v) or not (np.isfinite(report.sq[..., j]).all() and np.isfinite(report.sq[..., k]).all()):
        return 0.0
    y, x = float(report.sq[..., j].mean()), float(report.sq[..., k].mean())
    if not (y > 0 and x > 0):
        return 0.0
    gain = math.log(y) - math.log1p(math.exp(log_v)) - math.log(x)
    return gain if math.isfinite(gain) and abs(gain) > 1.0 else 0.0


def _plain_law(seg, report, t, remedy, fm2_only=False) -> list:
    """The mean-field law per link over a plain segment: FM1 drift (deeper half, extrapolated over the segment's
    links) beyond ``fm1_nats``, FM2 beyond ``fm2_var``, gradients beyond ``gradient_nats`` (Hanin & Rolnick 2018,
    Thm 5; Schoenholz et al. 2017); ``fm2_only``: FM2 alone (a multiplicative stream's FM2)."""
    from deepstart.diagnose.verdicts import Finding, pm

    st = segment_stats(report, seg.links)
    n, sig = st.get("links_read", 0), t["significance"]
    if not n:
        return []
    last, first = seg.sites[-1], seg.sites[0]
    where = f" over the segment {first} … {last} ({n} links)" if len(seg.sites) < len(report.main_idx) else ""
    out = []
    pred = report.predicted_stats if len(seg.sites) == len(report.main_idx) else {}
    deep = n >= t["min_links"] and not fm2_only
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
        log_gain, se = mean_se_log(per_init(h, report.sq[..., k]))
        out[s["name"]] = (log_gain - math.log(s.get("padding") or 1.0), se)  # ρ: the conv law's padding factor
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
