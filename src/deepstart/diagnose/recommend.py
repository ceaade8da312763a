"""Concrete changes for a report's findings, best first (a pure function of the report).

* FM1 / gradients in plain piecewise-linear nets: variance 1/(c₂ fan_in) — He (2/fan_in) for ReLU, LeCun for
  linear, ``variance-scaling(scale=2/(1+a²))`` for leaky ReLU — keeps E[M_d] = M_0 (Hanin & Rolnick 2018, Thm 5;
  χ₁ = 1, Poole et al. 2016).
* FM1 / gradients in smooth nets (tanh, …): the critical line χ₁ = 1 at small q* with orthogonal weights.
* FM1 in residual nets: η_l = 1/l, so Σ η_l² < ∞ and E[M_L]/M_0 = ∏(1 + g η_l²) stays bounded (H&R 2018 §4):
  set on the blocks' ``eta`` where they have one, else applied in place to the layer closing each branch (its
  weight and bias times η_l, Fixup/SkipInit-style branch scaling: the forward graph is unchanged). Both 1/l and
  1/√L bound E[M_L]/M_0 at every depth (by e^{π²g/6} and e^g for branch gain g); 1/l is H&R's schedule, the
  same as ``residual_eta``, and leaves the deeper blocks adding almost nothing, while 1/√L spreads a drift of
  ≈ g nats evenly over the depth (measured on a He ResNet-56 without norms: FM1 drift −0.24 ± 0.24 vs
  0.32 ± 0.19 nats).
* FM2: widths, since Var log M_d ≈ 5β depends only on β = Σ 1/n_j (H&R 2018 Thm 5): the smallest constant width
  with Var log M_d ≤ half the FM2 threshold (exact digamma variance per layer).
* normalized families (pre-/post-LN transformers): GPT-2's rule, N(0, 0.02²) weights with the branch output
  projections scaled by 1/√(number of residual additions) (Radford et al. 2019); BatchNorm nets: no init change
  (their gradient explosion is BatchNorm's, Yang et al. 2019), architectural advice only.
* poor isometry: tanh-like nets, orthogonal weights on the critical line at q* = 1/64 (Pennington et al. 2017 §4);
  ReLU nets cannot reach isometry: orthogonal weights with gain √2 halve the spread (Var λ ≈ L instead of 2L),
  offered as a *partial* remedy (``partial=True``: it reduces the finding, it does not claim to fix it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = ["Recommendation", "recommend", "suggest_width"]

_SMOOTH = ("tanh", "erf", "hard_tanh", "sigmoid", "gelu", "silu", "elu", "selu", "softplus")
CRITICAL_Q_STAR = "1/64"  # Pennington et al. 2017's best runs used small q* (THEORY.md §2 [open])
_MAX_Q_STAR = 100.0       # a stable critical point beyond this needs weights and biases far from any usable scale


@dataclass(frozen=True)
class Recommendation:
    """One change. ``kind``: ``"init"`` (apply ``scheme``), ``"transformer_init"`` (GPT-2's rule on the weights
    in ``params``), ``"residual_eta"`` (set η_l), ``"branch_scale"`` (the layer closing branch l times η_l, in
    place), ``"widths"``, ``"architecture"`` (advice; not applied). ``partial``: the change reduces the findings
    it addresses but the law says it cannot remove them (ReLU nets and isometry)."""

    kind: str
    addresses: tuple
    reason: str
    scheme: str | None = None
    params: dict = field(default_factory=dict)
    partial: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["addresses"] = list(self.addresses)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recommendation":
        return cls(**{**d, "addresses": tuple(d["addresses"])})

    def __str__(self) -> str:
        what = {"init": f"init scheme {self.scheme!r}",
                "transformer_init": f"re-initialize {self.scheme}",
                "architecture": "change the architecture",
                "residual_eta": f"residual η_l = {self.params.get('eta')}",
                "branch_scale": f"each residual branch's last layer × η_l = {self.params.get('eta')}",
                "widths": f"constant width {self.params.get('width')}"}[self.kind]
        verb = "reduces, cannot remove" if self.partial else "fixes"
        return f"{what} ({verb} {', '.join(self.addresses)}): {self.reason}"


def _base(spec):
    return (spec or "linear").split("(")[0]


def _init_for(acts: set) -> tuple:
    """(scheme, reason) of the length-preserving init for the activations seen on the main path."""
    bases = {_base(a) for a in acts}
    if bases <= {"relu"} or bases <= {"relu", "linear"}:
        return "he", "variance 2/fan_in keeps E[M_j] = M_0 and χ₁ = 1 for ReLU (Hanin & Rolnick 2018, Thm 5)"
    if bases <= {"linear"}:
        return "lecun", "variance 1/fan_in keeps lengths and gradients for linear layers (χ₁ = 1)"
    if bases <= {"leaky_relu", "linear"}:
        a = next((float(s.split("=")[1].rstrip(")")) for s in acts if s and s.startswith("leaky_relu(")), 0.01)
        scale = 2.0 / (1.0 + a * a)
        return f"variance-scaling(scale={scale:.6g})", "variance 2/((1+a²)fan_in) gives χ₁ = 1 for leaky ReLU"
    if len(bases - {"linear"}) == 1:
        act = next(iter(bases - {"linear"}))
        scheme, why = critical_scheme(act)
        return scheme, f"orthogonal weights on the critical line χ₁ = 1 at small q* (Pennington et al. 2017) for {act}" \
            + why if scheme else ""
    return None, ""


def critical_scheme(act: str) -> tuple:
    """(scheme, note) on the critical line at a q* the network can sit at: q* = 1/64 where that fixed point of
    the q-map is stable, else the stable critical point (gelu, silu: q* = 1/64 is unstable, dq'/dq > 1, and a
    net started there drifts away); (None, why) when the activation has none."""
    import warnings

    from deepstart.theory import critical_point, stable_critical_point

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if critical_point(act, q_star=1 / 64).stable:
                return f"critical(activation={act}, q_star={CRITICAL_Q_STAR}, weights=orthogonal)", ""
    except ValueError:
        pass
    try:
        q = stable_critical_point(act).q_star
    except ValueError as exc:
        return None, f"; no stable critical point for {act} ({exc})"
    if not q <= _MAX_Q_STAR:  # e.g. sigmoid: the slope only vanishes as q* → ∞ (σ_w ≈ 39 at q* = 10⁴)
        return None, f"; the only stable critical points of {act} have q* ≳ {q:.3g}, far outside a usable range"
    return (f"critical(activation={act}, q_star={q:.6g}, weights=orthogonal)",
            f"; q* = 1/64 is not a stable fixed point for {act}, so the stable critical point q* = {q:.3g} is used")


def suggest_width(depth: int, var_target: float) -> int:
    """Smallest constant width n with depth · Var log ξ(n) ≤ var_target (relu, exact digamma form)."""
    from deepstart.theory.finite_width import relu_log_xi_moments

    if not var_target > 0:  # Var log ξ(n) > 0 at every finite width: no width reaches a target ≤ 0
        raise ValueError(f"var_target={var_target!r} must be > 0 (the fm2_var threshold sets it)")

    def ok(n):
        return depth * relu_log_xi_moments(n)[1] <= var_target

    lo, hi = 1, 2
    while not ok(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


TRANSFORMER_FAMILIES = ("pre-ln", "post-ln", "sandwich", "deepnorm")
GPT2_STD = 0.02   # Radford et al. 2019 (GPT-2) / Devlin et al. 2019 (BERT): N(0, 0.02²) for every weight matrix


def _branch_outputs(report) -> list:
    """Parameter names of the layers whose output closes a residual branch (the output projections)."""
    by_name = {s["name"]: s for s in report.sites}
    out = []
    for b in report.sites:
        site = by_name.get(b.get("branch_site") or "") if b["kind"] == "block" else None
        if site is None or not site.get("weight_params"):
            continue
        named = [p for p in site["weight_params"] if "out_proj" in p]
        out += named or [site["weight_param"]]
    return out


def _normalized(report, errors: set) -> list:
    """Remedies that fit normalized families: no He on BatchNorm nets, no scheme chosen from a pooler's tanh."""
    if report.family in TRANSFORMER_FAMILIES and errors & {"fm1", "branches", "gradients"}:
        blocks = [s for s in report.main_sites if s["kind"] == "block"]
        scale = 1.0 / math.sqrt(max(len(blocks), 1))
        weights = sorted({p for s in report.sites if s["kind"] == "layer" for p in s.get("weight_params") or []})
        return [Recommendation(
            "transformer_init", tuple(sorted(errors & {"fm1", "branches", "gradients"})),
            f"weights N(0, {GPT2_STD}²) and the {len(blocks)} branch output projections scaled by "
            f"1/√{len(blocks)} = {scale:.3g} keep every branch's output small against the stream, so the stream "
            "grows additively by a bounded amount (Radford et al. 2019, GPT-2; for deep post-LN stacks DeepNorm's "
            "α skip scaling, Wang et al. 2022, is the architectural alternative)",
            scheme=f"gpt2(std={GPT2_STD}, residual_scale={scale:.6g})",
            params={"std": GPT2_STD, "residual_scale": scale, "weights": weights,
                    "outputs": _branch_outputs(report)})]
    if "bn" in report.family and "fm1" in errors:  # a layer orders of magnitude off its input's scale (below eps)
        return [Recommendation("init", ("fm1",), "a layer's weights are orders of magnitude off the scale of its "
                               "input (below batch norm's ε nothing renormalizes); variance 2/fan_in puts every "
                               "conv back at the scale batch norm expects (He et al. 2015)", "he")]
    if "bn" in report.family and "gradients" in errors:
        return [Recommendation("architecture", ("gradients",), "BatchNorm's gradient explosion at init grows with "
                               "depth whatever the weights (Yang et al. 2019): residual connections around each few "
                               "layers, or fewer layers; a different weight init does not help")]
    return []


def _branch_scale(report, blocks: list, etas: list) -> list:
    """η_l applied to the weight closing each main-path branch (for blocks without an ``eta`` to set); none when
    a branch's output is not a weight layer's (the site measured at the branch's end, :mod:`.structure`)."""
    by_name = {s["name"]: s for s in report.sites}
    layers = [(by_name.get(b.get("branch_site") or "") or {}).get("weight_param") for b in blocks]
    if not layers or not all(layers) or len(set(layers)) != len(layers):
        return []
    return [Recommendation("branch_scale", ("fm1", "gradients"),
                           "the weight and bias closing residual branch l multiplied by η_l = 1/l in place "
                           "(Fixup/SkipInit-style branch scaling, the forward graph unchanged): Σ η_l² = π²/6 finite "
                           "keeps E[M_L]/M_0 bounded (Hanin & Rolnick 2018, §4)",
                           params={"eta": "1/l", "values": etas, "layers": layers})]


def recommend(report) -> list:
    """Recommendations for ``report`` (see the module docstring), best first; empty when nothing needs fixing."""
    from deepstart.diagnose.families import NORMALIZED

    recurrent = {s["name"] for s in report.sites if s.get("recurrent")}
    judged = [f for f in report.findings if f.severity in ("error", "warning")]
    # a recurrent layer's findings follow the recurrent law (its own remedy: orthogonal W_hh), not a feed-forward init
    cats = {f.category for f in judged if f.layer not in recurrent}
    if report.family in NORMALIZED:
        return _normalized(report, {f.category for f in report.findings if f.severity == "error"})
    main = report.main_sites
    layers = [s for s in main if s["kind"] == "layer"]
    blocks = [s for s in main if s["kind"] == "block"]
    acts = {s["activation"] for s in layers if s["activation"]} or {"linear"}
    scheme, why = _init_for(acts)
    out = []
    if blocks and cats & {"fm1", "gradients"}:
        etas = [1.0 / (l + 1) for l in range(len(blocks))]
        out.append(Recommendation("residual_eta", ("fm1", "gradients"),
                                  "η_l = 1/l makes Σ η_l² = π²/6 finite, so E[M_L]/M_0 stays bounded "
                                  "(Hanin & Rolnick 2018, §4)", params={"eta": "1/l", "values": etas}))
        out += _branch_scale(report, blocks, etas)
    elif scheme and cats & {"fm1", "gradients", "nonfinite"}:  # χ₁ = 1 is the law of lengths and gradients both
        out.append(Recommendation("init", tuple(sorted({"fm1", "gradients"} | cats & {"nonfinite"})), why, scheme))
    if "isometry" in cats:
        bases = {_base(a) for a in acts} - {"linear"}
        if bases and bases <= set(_SMOOTH) and len(bases) == 1:
            act = next(iter(bases))
            iso, _ = critical_scheme(act)
            if iso and not any(r.scheme == iso for r in out):
                out.append(Recommendation("init", ("isometry",), "orthogonal weights on the critical line at small "
                                          "q* concentrate the Jacobian spectrum near 1 (Pennington et al. 2017)",
                                          iso))
        elif bases <= {"relu"} and not blocks:
            out.append(Recommendation("init", ("isometry",), "orthogonal weights with gain √2 halve the spectral "
                                      "spread of a ReLU net's Jacobian; no init gives ReLU nets dynamical isometry "
                                      "(Pennington et al. 2017)", f"orthogonal(gain={math.sqrt(2):.6g})",
                                      partial=True))
    if "fm2" in cats and layers:
        depth = sum(1 for s in layers if s["activation"])
        target = report.thresholds.get("fm2_var", 10.0) / 2
        width = suggest_width(max(depth, 1), target)
        out.append(Recommendation("widths", ("fm2",), f"Var log M_d ≈ 5β depends only on β = Σ1/n_j; width {width} "
                                  f"at depth {depth} gives Var log M_d ≤ {target:g} (Hanin & Rolnick 2018)",
                                  params={"width": width, "depth": depth}))
    return out
