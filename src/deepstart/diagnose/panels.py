"""What a report's figure shows: the mean-field panels that apply and one series per part law (NumPy only).

Every panel's x-axis is the **main-path site index** j = 1..D of the report's table (column ``#``) and of its findings
(:func:`site_ref`); a part off the main path (a norm or attention inside a residual branch) is drawn at the index of
the main-path block that contains it. A :class:`PartSeries` is one quantity of one part law (``docs/laws.md``) with
the law's limit or prediction beside it; :data:`SERIES` lists the builders, and a new part kind plugs in by adding
one (the figure draws whatever list :func:`part_series` returns).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from deepstart.diagnose.laws._stats import column, quiet

__all__ = ["PartSeries", "SERIES", "part_series", "mean_field_panels", "main_index", "site_ref", "SITE_AXIS"]

SITE_AXIS = "site j (main path: # of the table and the findings)"


@dataclass(frozen=True)
class PartSeries:
    """One point per part: ``value`` (mean over inits) ± ``se`` at ``x`` (main-path site index, or time step), the
    part names in ``names``; the law's ``limits`` (``(value, side, severity)``: a finding of that severity when a
    part is on ``side`` — "above"/"below" — of the value) and/or its prediction ``expected`` per part."""

    key: str
    title: str
    ylabel: str
    law: str
    x: np.ndarray
    names: tuple
    value: np.ndarray
    se: np.ndarray
    log: bool = False
    limits: tuple = ()
    expected: np.ndarray | None = None
    expected_label: str = ""
    bound: np.ndarray | None = None       # a limit that depends on the part (NaN: none), e.g. a growth envelope
    bound_label: str = ""
    xlabel: str = SITE_AXIS
    ylim: tuple | None = None

    def to_dict(self) -> dict:
        from deepstart.diagnose.report import _plain

        return {k: _plain(getattr(self, k)) for k in self.__dataclass_fields__}


def main_index(report) -> dict:
    """site name -> its main-path index j (1..D) or, off the main path, the index of the enclosing main-path block."""
    out = {s["name"]: k + 1 for k, s in enumerate(report.main_sites)}
    by_name = {s["name"]: s for s in report.sites}
    for s in report.sites:
        parent, seen = s.get("parent"), set()
        while s["name"] not in out and parent and parent not in seen:
            seen.add(parent)
            if parent in out:
                out[s["name"]] = out[parent]
            parent = (by_name.get(parent) or {}).get("parent")
    return out


def site_ref(report, name: str) -> str:
    """How the report names a site everywhere: ``site 7 (layers.3)``; ``layers.3.norm1 (in site 7)`` inside a
    main-path block; the name alone when it is not a site (``model``, ``input-output Jacobian``)."""
    index = main_index(report)
    if name not in index:
        return name
    main = any(s["name"] == name for s in report.main_sites)
    return f"site {index[name]} ({name})" if main else f"{name} (in site {index[name]})"


def _series(key, report, points, **kw) -> PartSeries | None:
    """``points``: (name, value, se) or (name, value, se, expected) per part; None when no value is finite."""
    index = main_index(report)
    points = [p for p in points if math.isfinite(p[1]) and p[0] in index]
    if not points:
        return None
    cols = list(zip(*points))
    if len(cols) == 4:
        kw["expected"] = np.array(cols[3], float)
    return PartSeries(key, x=np.array([index[n] for n in cols[0]]), names=tuple(cols[0]),
                      value=np.array(cols[1], float), se=np.array(cols[2], float), **kw)


@quiet
def _per_init_at(arr, j) -> tuple:
    """(mean, SE) over inits of ``arr[i, j]`` ([inits, sites]) or of its batch mean ([inits, inputs, sites])."""
    x = arr[..., j] if arr.ndim == 2 else np.nanmean(arr[..., j], axis=1)
    x = x[np.isfinite(x)]
    if not x.size:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan


def _additions(report, main_only=False) -> list:
    from deepstart.diagnose.parts import Addition, read_parts

    return [p for p in read_parts(report) if isinstance(p, Addition) and (p.main or not main_only)]


def branch_gain_series(report):
    from deepstart.diagnose.laws.addition import branch_gain

    t = report.thresholds
    pts = []
    for add in _additions(report):
        log_g, se = branch_gain(report, add)
        pts.append((add.site, math.exp(log_g) if math.isfinite(log_g) else math.nan,
                    math.exp(log_g) * se if math.isfinite(log_g) else math.nan))
    return _series("branch_gain", report, pts, title="branch gain per residual addition",
                   ylabel="g = M(η·f(x)) / M(branch input)", log=True,
                   limits=((t.get("branch_gain", 4.0), "above", "error"),),
                   law="normalized branches add a bounded increment; error above the limit (Xiong et al. 2020 §3)")


@quiet
def stream_series(report):
    """Stream length M_l at each main-path addition against the additive law M_l ≈ M_{l−1} + v_l (branch output
    uncorrelated with the stream at init; multiplicative when v_l itself scales with M_{l−1})."""
    from deepstart.diagnose.laws.addition import branch_gain

    m0 = float(np.nanmean(report.m0)) if np.size(report.m0) else math.nan
    pts = []
    for add in _additions(report, main_only=True):
        j, k = column(report, add.site), column(report, add.stream or "")
        n = column(report, add.normalizer or add.stream or "")
        m_in = m0 if add.stream == "input" else float(np.nanmean(report.sq[..., k])) if k is not None else math.nan
        if j is None or not math.isfinite(m_in):
            continue
        log_g, _ = branch_gain(report, add)
        v = math.exp(log_g) * float(np.nanmean(report.sq[..., n])) if math.isfinite(log_g) else math.nan
        pts.append((add.site, *_per_init_at(report.sq, j), m_in + v))
    s = _series("stream_length", report, pts, title="residual stream length per block",
                ylabel="M_l of the stream", log=True,
                law="M_l = M_{l−1} + v_l (v_l: the branch's output; Xiong et al. 2020 §3); a stretch of normalized "
                    "or unnormalized blocks is an error when it grows beyond exp(2·log(L + 1) + 1.5) over L links",
                expected_label="M_{l−1} + v_l (measured M_{l−1}, v_l)")
    if s is None:
        return None
    envelope = _additive_envelope(report)
    bound = np.array([envelope.get(n, math.nan) for n in s.names])
    return replace(s, bound=bound, bound_label="error above: residual-stream limit") if np.isfinite(bound).any() \
        else s


@quiet
def _additive_envelope(report) -> dict:
    """site -> M_start · exp(additive_band(k)) for the k-th link of each residual (additive or multiplicative)
    segment of at least ``min_links`` links (:func:`deepstart.diagnose.laws.segment.additive_band`, the bound that
    judges such a stretch)."""
    from deepstart.diagnose.laws.segment import additive_band
    from deepstart.diagnose.parts import Segment, read_parts

    main, out = report.main_idx, {}
    m0 = float(np.nanmean(report.m0)) if np.size(report.m0) else math.nan
    for seg in read_parts(report):
        if not isinstance(seg, Segment) or seg.growth == "plain" or \
                len(seg.links) < report.thresholds.get("min_links", 4):
            continue
        first = seg.links[0]
        start = m0 if first == 0 else float(np.nanmean(report.sq[..., main[first - 1]]))
        for k, name in enumerate(seg.sites, 1):
            out[name] = start * math.exp(additive_band(k))
    return out


def token_cos_series(report):
    if report.token_cos is None:
        return None
    pts = [(s["name"], *_per_init_at(report.token_cos, j)) for j, s in enumerate(report.sites)
           if s["kind"] == "block" and s["main"]]
    low = min([0.0] + [p[1] for p in pts if math.isfinite(p[1])])  # cosines below 0 stay in view
    return _series("token_cos", report, pts, title="token cosine similarity per block", ylabel="mean cos(x_t, x_t')",
                   limits=((report.thresholds.get("rank_cos", 0.9), "above", "warning"),), ylim=(low, 1.02),
                   law="rank collapse above the limit (Dong et al. 2021; Noci et al. 2022)")


def attn_entropy_series(report):
    h = report.attn_entropy
    if h is None or not np.isfinite(h).any():
        return None
    pts = [(s["name"], *_per_init_at(h, j)) for j, s in enumerate(report.sites)]
    return _series("attn_entropy", report, pts, title="attention entropy per layer", ylabel="entropy / log(keys)",
                   limits=((report.thresholds.get("attn_entropy", 0.1), "below", "warning"),), ylim=(0.0, 1.02),
                   law="entropy collapse below the limit (Zhai et al. 2023)")


def norm_input_series(report):
    from deepstart.diagnose.laws.norm import input_scale
    from deepstart.diagnose.parts import Norm, read_parts

    pts = []
    for p in read_parts(report):
        if isinstance(p, Norm):
            r, se = input_scale(report, p)
            pts.append((p.site, math.exp(r) if math.isfinite(r) else math.nan,
                        math.exp(r) * se if math.isfinite(r) else math.nan))
    return _series("norm_input", report, pts, title="norm input scale against ε", ylabel="M_in / ε", log=True,
                   limits=((report.thresholds.get("norm_eps_ratio", 1.0), "below", "error"),),
                   law="y = γ(x − μ)/√(σ² + ε) normalizes only for σ² ≫ ε; error below the limit")


def recurrent_series(report):
    """Per recurrent layer, ‖∂ℓ/∂x_t‖² over time steps t relative to the last step (the recurrent gain per step)."""
    data = getattr(report, "recurrent", None) or {}
    out = []
    for site, d in data.items():
        g = np.asarray(d.get("time_grad", []), float)
        if g.ndim != 2 or g.shape[1] < 2:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = g / g[:, -1:]
            mean = np.nanmean(rel, axis=0)
            se = np.nanstd(rel, axis=0, ddof=1) / math.sqrt(g.shape[0]) if g.shape[0] > 1 else np.full(
                mean.shape, np.nan)
        nats = report.thresholds.get("gradient_nats", math.log(10.0))
        out.append(PartSeries("recurrent", f"recurrent gain over time: {site}", "G_t / G_last",
                              "gradient back in time relative to the last step; the first step's is judged: an "
                              "error above e^gradient_nats (exploding), a warning below e^−gradient_nats (short "
                              "memory; Chen, Pennington & Schoenholz 2018)", np.arange(1, mean.size + 1),
                              tuple(f"{site} t={t}" for t in range(1, mean.size + 1)), mean, se, log=True,
                              limits=((math.exp(nats), "above", "error"), (math.exp(-nats), "below", "warning")),
                              xlabel="time step t (ℓ on the last step)"))
    return out


# builders, in the order the figure shows them; each returns a PartSeries, a list of them, or None
SERIES = (branch_gain_series, stream_series, token_cos_series, attn_entropy_series, norm_input_series,
          recurrent_series)


def part_series(report) -> list:
    """The per-part series that apply to ``report`` (none for a plain net)."""
    out = []
    for build in SERIES:
        s = build(report)
        out += s if isinstance(s, list) else [] if s is None else [s]
    return out


def mean_field_panels(report) -> list:
    """Names of the mean-field panels that apply: ``lengths`` and ``gradients`` whenever there is a main path;
    ``fm2`` when a stretch is judged by FM2 (a plain or multiplicative segment of at least ``min_links`` links, more
    than one init); ``spectrum`` when the
    Jacobian was measured."""
    from deepstart.diagnose.parts import Segment, read_parts

    out = ["lengths", "gradients"] if report.main_idx else []
    deep = report.thresholds.get("min_links", 4)
    if report.main_idx and report.sq.shape[0] > 1 and any(
            isinstance(p, Segment) and p.growth != "additive" and len(p.links) >= deep for p in read_parts(report)):
        out.append("fm2")
    if report.jacobian:
        out.append("spectrum")
    return out
