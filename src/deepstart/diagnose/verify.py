"""Is a change an improvement toward the law? The decision of :func:`deepstart.fix_` (issue 18), a pure function
of two reports of the same model, before and after the change.

Per finding category (its worst warning or error in each report), the quantity compared is the *distance from the
law*:

* FM1 and gradients in nets judged by the mean-field law (plain and residual, no normalization): the law holds
  per layer (E ξ_j = 1 with ξ_j = M_j/M_{j−1}, χ₁ = 1; Hanin & Rolnick 2018 Thm 5, Schoenholz et al. 2017), so the
  distance is Σ_j |log E ξ_j| over the main-path links read (for gradients the backward ratios G_{j−1}/G_j), with
  its standard error across inits. Unlike the verdict's drift, extrapolated from the deeper half, it does not
  read biases that hold a vanished signal at their own scale as health, nor a sign change as no progress.
* anything else: how far the finding is past its threshold (|x|/t, or t/|x| for a statistic that fails low).

A change is accepted when every category it targets (in ``Recommendation.addresses`` and flagged in either report)
is removed or its distance shrinks by more than ``significance`` standard errors (``REL_TOL`` of the distance
where there is no standard error), and no other category becomes an error or, as an error, grows as much.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np

__all__ = ["FindingChange", "verify_change", "law_distance", "OUTCOMES", "REL_TOL"]

OUTCOMES = ("removed", "shrunk", "unchanged", "grew", "new")
REL_TOL = 0.1  # a distance without a standard error (one Jacobian spectrum) must move by more than 10%
_PER_LINK = ("fm1", "gradients")
_LAW_NAMES = {"fm1": "Σ|log ξ_j|", "gradients": "Σ|log G_j−1/G_j|"}


@dataclass(frozen=True)
class FindingChange:
    """One finding category before → after a change. ``before``/``after``: the finding's measured value as the
    report states it (None: no warning or error of that category); ``distance_before``/``distance_after``: the
    distance from the law compared (module docstring), ``compared`` what it is, and ``se`` the standard error of
    their difference (0: none);
    ``outcome``: one of ``OUTCOMES``; ``targeted``: the change meant to fix this category."""

    category: str
    layer: str
    severity_before: str | None
    severity_after: str | None
    before: float | None
    after: float | None
    threshold: float
    distance_before: float | None
    distance_after: float | None
    compared: str
    se: float
    outcome: str
    targeted: bool

    @property
    def ok(self) -> bool:
        """Acceptable for this category: a target removed or shrunk; any other not a new error nor a worse one
        (a warning may move: "without creating new errors")."""
        if self.targeted:
            return self.outcome in ("removed", "shrunk")
        return self.outcome != "new" and not (self.outcome == "grew" and self.severity_after == "error")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FindingChange":
        return cls(**d)

    def __str__(self) -> str:
        def fmt(v, sev):
            return "—" if v is None else f"{v:.3g} ({sev})"

        law = ""
        if self.distance_before is not None and self.distance_after is not None:
            se = f" ± {self.se:.2g}" if self.se > 0 else ""
            law = f"; {self.compared} {self.distance_before:.3g} → {self.distance_after:.3g}{se}"
        aim = "target" if self.targeted else "other"
        return (f"{self.category} at {self.layer} [{aim}]: {fmt(self.before, self.severity_before)} → "
                f"{fmt(self.after, self.severity_after)} (threshold {self.threshold:.3g}){law}: {self.outcome}")


def _link_ratios(report, category: str) -> tuple:
    """(mean, SE) per main-path link read of the ratio the law fixes at 1: M_j/M_{j−1} (``fm1``) or G_{j−1}/G_j
    (``gradients``), mean over inputs then inits as the verdicts take it (:func:`.verdicts.path_stats`)."""
    from deepstart.diagnose.verdicts import _ratio_stats

    idx = report.main_idx
    links = np.asarray(report.links, dtype=bool)
    if category == "fm1":
        chain = np.asarray(report.sq, float)[..., idx]
        m0 = np.asarray(report.m0, float)
        if m0.size and np.all(np.isfinite(m0)):
            chain = np.concatenate([np.broadcast_to(m0[None, :, None], (*chain.shape[:2], 1)), chain], axis=-1)
        mean, se, _ = _ratio_stats(chain)
    else:
        mean, se, _ = _ratio_stats(np.asarray(report.grad, float)[..., idx][..., ::-1])
        mean, se = mean[::-1], se[::-1]  # link j−1 → j, in forward order
    n = np.size(mean)
    if n == 0 or links.size < n:
        return np.zeros(0), np.zeros(0)
    use = links[-n:]
    return mean[use], se[use]


def law_distance(report, category: str) -> tuple:
    """``(distance, SE)`` from the law for ``category`` (module docstring); ``(nan, nan)`` where the per-link law
    does not apply (normalized families, other categories, nothing read)."""
    from deepstart.diagnose.families import NORMALIZED

    if category not in _PER_LINK or report.family in NORMALIZED or len(report.main_idx) < 2:
        return math.nan, math.nan
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, se = _link_ratios(report, category)
    use = np.isfinite(mean) & (mean > 0)
    if not use.any():
        return math.nan, math.nan
    rel = np.where(np.isfinite(se[use]), se[use] / mean[use], 0.0)  # one init: no SE
    return float(np.sum(np.abs(np.log(mean[use])))), float(np.sqrt(np.sum(rel ** 2)))


def _worst(report) -> dict:
    """category -> its worst warning/error finding (by :func:`_badness`)."""
    out = {}
    for f in report.findings:
        if f.severity in ("warning", "error") and (f.category not in out or _badness(f) > _badness(out[f.category])):
            out[f.category] = f
    return out


def _badness(f) -> float:
    """How far a finding is past its threshold, in the direction it fails (|x|/t above, t/|x| below: attention
    entropy fails low); the measured magnitude when the threshold is 0 or not finite."""
    m, t = abs(f.measured), abs(f.threshold)
    if not math.isfinite(m):
        return math.inf
    if not (t > 0 and math.isfinite(t)):
        return m
    return m / t if m >= t else (t / m if m > 0 else math.inf)


_STAT_SE = {"fm1": ("fm1_drift", "fm1_se"), "gradients": ("grad_log_ratio", "grad_se"), "fm2": ("fm2_var", "fm2_se")}


def _stat_se(report, f) -> float:
    """Standard error of a finding's statistic where the report has one (FM1, FM2, gradients), else NaN."""
    keys = _STAT_SE.get(f.category)
    if keys is None:
        return math.nan
    st = report.stats
    value, se = st.get(keys[0], math.nan), st.get(keys[1], math.nan)
    return float(se) if math.isfinite(se) and math.isclose(value, f.measured, rel_tol=1e-9) else math.nan


def _distances(before, after, cat, fb, fa) -> tuple:
    """(distance before, distance after, SE of the difference, what was compared, per-link law?) of one
    category: the per-link law distance where it applies, else the finding's statistic with its SE, else how far
    it is past its threshold."""
    (db, sb), (da, sa) = law_distance(before, cat), law_distance(after, cat)
    if math.isfinite(db) and math.isfinite(da):
        se = math.hypot(sb if math.isfinite(sb) else 0.0, sa if math.isfinite(sa) else 0.0)
        return db, da, se, _LAW_NAMES[cat], True
    if fb is not None and fa is not None and fb.threshold == fa.threshold:
        sb, sa = _stat_se(before, fb), _stat_se(after, fa)
        if math.isfinite(sb) and math.isfinite(sa):
            return abs(fb.measured), abs(fa.measured), math.hypot(sb, sa), "|statistic|", False
    return (None if fb is None else _badness(fb)), (None if fa is None else _badness(fa)), 0.0, \
        "times past the threshold", False


def _compare(db, da, se, k) -> str:
    tol = k * se if se > 0 else REL_TOL * db
    return "shrunk" if da + tol < db else "grew" if da > db + tol else "unchanged"


def verify_change(before, after, rec, *, significance: float | None = None) -> tuple:
    """``(accepted, changes)``: is ``after`` an improvement toward the law over ``before`` for the change
    ``rec`` (a :class:`~deepstart.diagnose.recommend.Recommendation`)? See the module docstring; ``changes`` holds
    a :class:`FindingChange` per category flagged in either report, targets first. Both reports are judged with
    ``before``'s thresholds; ``significance`` defaults to theirs."""
    if after.thresholds != before.thresholds:
        after = replace(after, thresholds=dict(before.thresholds))
    k = before.thresholds.get("significance", 3.0) if significance is None else significance
    b, a = _worst(before), _worst(after)
    changes = []
    for cat in sorted(set(b) | set(a), key=lambda c: (c not in rec.addresses, c)):
        fb, fa = b.get(cat), a.get(cat)
        db, da, se, compared, law = _distances(before, after, cat, fb, fa)
        targeted = cat in rec.addresses and (fb is not None or law)
        if fa is None:
            outcome = "removed"
        elif fb is None or (fa.severity == "error" and fb.severity != "error"):  # flagged only after
            outcome = _compare(db, da, se, k) if targeted and law else "new" if fa.severity == "error" else \
                "unchanged"
        else:
            outcome = _compare(db, da, se, k)
        ref = fb or fa
        changes.append(FindingChange(cat, ref.layer if fa is None else fa.layer, fb and fb.severity,
                                     fa and fa.severity, fb and float(fb.measured), fa and float(fa.measured),
                                     float(ref.threshold), db, da, compared, float(se), outcome, targeted))
    return all(c.ok for c in changes), tuple(changes)
