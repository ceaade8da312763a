"""The parts of a model along its main path, read from the sites of a report (a pure function of ``report.sites``,
and of the measured mean square of each gate of a gated addition).

``check`` judges each part by its own law (:mod:`deepstart.diagnose.laws`, ``docs/laws.md``) instead of giving the
whole model one family label:

* :class:`Segment`: consecutive main-path links into weight layers and residual additions with no normalization,
  recurrent layer or unreadable op in between and no boundary (pooling, reshaping, a tensor that is not the previous
  site's) — the mean-field law per link, judged over the segment's own length (Hanin & Rolnick 2018);
* :class:`Addition`: a residual addition y = x + η·f(x): its branch, what opens the branch, the scale η (a learned
  layer scale γ or a Fixup multiplier is part of the branch) and the number of parallel branches summed first;
* :class:`Concat`: a concatenation [x, f(x)] of the stream and a new layer's output (DenseNet): a link of a plain
  segment (the width-weighted mean of its pieces' lengths);
* :class:`Branches`: parallel branches of one input concatenated (Inception): one link of the stream from the
  module's input to the concatenation, each branch a plain segment off the main path;
* :class:`Norm`: a normalization (resets the length: its input scale against ε, the gradient it passes back);
* :class:`Recurrent`: an ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (the law across stacked layers and across time steps);
* :class:`Opaque`: a part whose law cannot be stated (a custom autograd Function, an op the reader could not read).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Segment", "Addition", "Concat", "Branches", "Norm", "Recurrent", "Opaque", "read_parts", "full_links"]


@dataclass(frozen=True)
class Segment:
    """Main-path positions ``links`` (link k goes into main site k) read as one stretch; ``growth`` is ``plain``
    (weight layers only), ``multiplicative`` (an addition whose branch is not normalized: M_l = M_{l−1}(1 + η²g_l))
    or ``additive`` (every branch normalized: M_l = M_{l−1} + v_l, Xiong et al. 2020; or scaled by η_l with bounded
    Σ η_l², Hanin & Rolnick 2018 Thm 2)."""

    sites: tuple
    links: tuple
    growth: str

    def to_dict(self) -> dict:
        return {"part": "segment", **asdict(self)}


@dataclass(frozen=True)
class Addition:
    """A residual addition ``site`` on stream ``stream``; ``branch`` the site measuring the branch (None: a tap),
    ``opener`` what the stream enters first in the branch, ``normalizer`` the norm whose output the branch gain is
    measured against (None: the stream), ``scale`` the branch multiplier η (None: not read)."""

    site: str
    stream: str | None
    branch: str | None
    opener: str
    normalizer: str | None
    normalized: bool
    scale: float | None
    parallel: int
    attention: bool
    main: bool

    def to_dict(self) -> dict:
        return {"part": "addition", **asdict(self)}


@dataclass(frozen=True)
class Concat(Addition):
    """A concatenation y = [x, f(x)] along the feature axis (a DenseNet layer): the fields of :class:`Addition`
    (``branch`` is the new piece f(x)). Its mean square is the width-weighted mean of its pieces, so it is a link of
    a plain segment whose per-link gain is the new layer's (``laws/concat.py``)."""

    def to_dict(self) -> dict:
        return {**super().to_dict(), "part": "concat"}


@dataclass(frozen=True)
class Branches(Addition):
    """Parallel branches of one input joined by concatenation along the feature axis (an Inception module, Szegedy
    et al. 2015): the fields of :class:`Addition` (``stream`` the module's input, ``parallel`` the number of
    branches). Each branch is a plain segment from the module's input to the concatenation, whose mean square is the
    width-weighted mean of its pieces'; the module is one link of the stream, judged at matching points — its input
    and its output (``laws/branches.py``)."""

    def to_dict(self) -> dict:
        return {**super().to_dict(), "part": "branches"}


@dataclass(frozen=True)
class Norm:
    site: str
    kind: str
    eps: float
    source: str | None
    main: bool

    def to_dict(self) -> dict:
        return {"part": "norm", **asdict(self)}


@dataclass(frozen=True)
class Recurrent:
    site: str
    cell: str
    layers: int
    module: str

    def to_dict(self) -> dict:
        return {"part": "recurrent", **asdict(self)}


@dataclass(frozen=True)
class Opaque:
    """A part whose law cannot be stated; ``around`` names the sites measured before and after it."""

    site: str
    module: str
    reason: str
    around: tuple
    main: bool

    def to_dict(self) -> dict:
        return {"part": "opaque", **asdict(self)}


def full_links(report) -> np.ndarray:
    """``report.links`` with one entry per main site (link k into main site k; k = 0 from the input)."""
    links = np.asarray(report.links, dtype=bool)
    return links if links.size == len(report.main_idx) else np.r_[False, links]


def read_parts(report) -> tuple:
    """The parts of ``report``'s model: main-path parts in order, then the additions, norms, recurrent and opaque
    parts off the main path (inside residual branches)."""
    sites = report.sites
    main = report.main_sites
    use = full_links(report)
    names = {s["name"]: s for s in sites}
    parts, current = [], []
    gates = gate_eta2(report)

    def close():
        if current:
            parts.append(_segment(current, main, names, gates))
            current.clear()

    for k, s in enumerate(main):
        own = _own_part(s, names, main, k)
        if own is not None:
            if not isinstance(own, Addition) or isinstance(own, Branches) and own.normalized:
                # an addition is judged by its own law and as a link of the stream; parallel branches with a norm
                # reset the length like the norm (laws/branches.py judges them)
                close()  # a norm (recurrent, opaque part) ends the segment before it, in order
                parts.append(own)
                continue
            parts.append(own)
        if use[k]:
            current.append(k)
        else:
            close()
    close()
    for s in sites:
        if not s["main"]:
            own = _own_part(s, names, main, None)
            if own is not None and not isinstance(own, Segment):
                parts.append(own)
    return tuple(parts)


def _own_part(s, names, main, k):
    if s.get("opaque"):
        around = tuple(x for x in (s.get("source"), main[k + 1]["name"] if k is not None and k + 1 < len(main)
                                   else None) if x)
        return Opaque(s["name"], s.get("module_name") or s["name"], s["opaque"], around, k is not None)
    if s.get("recurrent"):
        r = s["recurrent"]
        return Recurrent(s["name"], r["cell"], int(r["layers"]), r.get("module", s.get("module_name", "")))
    if s["kind"] == "norm":
        return Norm(s["name"], s.get("norm") or "norm", float(s.get("eps") or 1e-5), s.get("source"), k is not None)
    if s["kind"] == "block":
        return _addition(s, names, k is not None)
    return None


def _addition(s, names, main) -> Addition:
    cls = {"concat": Concat, "branches": Branches}.get(s.get("norm"), Addition)
    inner = [t for t in names.values() if t.get("parent") == s["name"]]
    opener = next((t for t in inner if t.get("source") == s.get("source")), None)
    norms = [t for t in inner if t["kind"] == "norm"]
    normalizer = next((t for t in norms if t.get("source") == s.get("source")), norms[0] if norms else None)
    stream = names.get(s.get("source") or "")
    normalized = bool(norms) or (stream is not None and stream["kind"] == "norm")
    what = ("attention" if s.get("attention") and opener is None else
            "none" if opener is None else f"{opener['kind']}:{opener.get('norm') or opener['module_type']}")
    if (s.get("parallel") or 1) > 1:
        what = f"{s['parallel']} parallel branches, first {what}"
    return cls(s["name"], s.get("source"), s.get("branch_site"), what,
               normalizer["name"] if normalizer is not None else None, normalized, s.get("eta"),
               int(s.get("parallel") or 1), bool(s.get("attention")), main)


BOUNDED_ETA2 = 2.0  # Σ η_l² at most this: the branches' total weight is bounded (η_l = 1/l gives π²/6)


def gate_eta2(report) -> dict:
    """block name -> measured E[g²] of the gate of a gated addition y = g⊙f(x) + (1 − g)⊙x (a highway layer,
    Srivastava et al. 2015): the block's stream enters through a sigmoid layer (the carry (1 − g)⊙x is read as
    the main path through the gate), whose output g ∈ (0, 1) scales the branch f(x) as η_l does. Its mean square
    is read at the gate's own site (over inits and inputs)."""
    from deepstart.diagnose.laws._stats import column

    names, out = {s["name"]: s for s in report.sites}, {}
    for s in report.main_sites:
        gate = names.get(s.get("source") or "")
        if s["kind"] != "block" or gate is None or gate["kind"] != "layer" or gate.get("activation") != "sigmoid":
            continue
        j = column(report, gate["name"])
        if j is not None:
            with np.errstate(all="ignore"):
                out[s["name"]] = float(np.nanmean(np.asarray(report.sq, float)[..., j]))
    return out


def _bounded_eta(blocks, gates=None) -> bool:
    """Every branch scaled by a read η_l with Σ η_l² ≤ ``BOUNDED_ETA2``: E[M_L] = M_0 ∏(1 + η_l² g_l) ≤
    M_0 exp(g Σ η_l²) stays bounded in depth (Hanin & Rolnick 2018, Thm 2 and §4), so the stream grows at most
    additively, not exponentially; unscaled branches (η = 1) sum to L and stay multiplicative. A gated addition's
    η_l² is its gate's measured E[g²] (:func:`gate_eta2`); its carry (1 − g_l) shrinks the stream by at most
    ∏(1 − g_l)², polynomial in L when Σ g_l² is bounded (g_l = 1/l: ~1/L²), the additive band's 2·log(L + 1)."""
    gates = gates or {}
    etas2 = [gates[b["name"]] if b["name"] in gates else
             None if b.get("eta") is None else float(b["eta"]) ** 2 for b in blocks]
    return all(e is not None and math.isfinite(e) for e in etas2) and sum(etas2) <= BOUNDED_ETA2


def _segment(positions, main, names, gates=None) -> Segment:
    blocks = [main[k] for k in positions if main[k]["kind"] == "block" and main[k].get("norm") not in ("concat",
                                                                                                     "branches")]
    unnormalized = [b for b in blocks if not _addition(b, names, True).normalized]
    if not blocks:
        growth = "plain"
    elif not unnormalized or _bounded_eta(unnormalized, gates):
        growth = "additive"
    else:
        growth = "multiplicative"
    return Segment(tuple(main[k]["name"] for k in positions), tuple(positions), growth)
