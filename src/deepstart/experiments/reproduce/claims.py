"""Claims of a paper and whether our measurement supports them.

A :class:`Claim` pairs the paper's statement with our measurement and a status. The status is always a *pure function
of the numbers* (``value``, ``target``, ``error``) and a documented threshold, so a saved report reproduces its
verdicts (:func:`judge`). Four rules:

- ``"relative"``: ``r = |value/target - 1|``; holds if ``r <= holds``, partially if ``r <= partial``, else not.
- ``"zscore"``: ``z = |value - target| / error`` (``error`` a standard error computed from the samples); holds if
  ``z <= holds`` (default 4), partially if ``z <= partial`` (default 8).
- ``"at_least"``: ``value >= target`` holds; ``value >= partial`` partially (e.g. a fraction of sub-checks, a rank
  correlation).
- ``"exceeds"``: ``z = (value - target) / error`` (one-sided, ``error`` a standard error); holds if ``z >= holds``
  (default 3), partially if ``z >= partial`` (default 1). "A beats B by several SEs": ``value`` = mean of A − B,
  ``target`` = 0. A negative ``holds`` states "not significantly below": ``holds=-3`` fails only when ``value`` lies
  more than 3 SE under ``target``.

Several comparisons judged by their worst one: :func:`bonferroni_z` gives the two-sided z threshold that keeps the
family-wise false-alarm rate at ``alpha`` over ``m`` comparisons.

A claim whose measurement could not be made (a missing dependency, too few runs) is ``"not evaluated"`` with the reason.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["Claim", "judge", "bonferroni_z", "STATUSES", "HOLDS", "PARTIAL", "FAILS", "NOT_EVALUATED", "RULES"]

HOLDS, PARTIAL, FAILS, NOT_EVALUATED = "holds", "partially", "does not hold", "not evaluated"
STATUSES = (HOLDS, PARTIAL, FAILS, NOT_EVALUATED)
RULES = ("relative", "zscore", "at_least", "exceeds", "none")
_DEFAULTS = {"relative": (0.1, 0.3), "zscore": (4.0, 8.0), "at_least": (None, None), "exceeds": (3.0, 1.0)}


def bonferroni_z(m: int, alpha: float = 0.01) -> float:
    """Two-sided z threshold for the worst of ``m`` independent z-scores at family-wise level ``alpha``:
    ``Φ⁻¹(1 − alpha/(2m))`` (m = 1, alpha = 0.01: 2.576; m = 9: 3.26)."""
    from statistics import NormalDist

    if int(m) < 1 or not 0 < alpha < 1:
        raise ValueError(f"bonferroni_z needs m >= 1 and 0 < alpha < 1, got m={m!r}, alpha={alpha!r}")
    return NormalDist().inv_cdf(1.0 - alpha / (2 * int(m)))


def judge(rule: str, value, target, *, error=None, holds=None, partial=None) -> str:
    """Status of a measurement under ``rule`` (see the module docstring). Pure: same numbers, same status."""
    if rule not in RULES:
        raise ValueError(f"unknown claim rule {rule!r}; valid: {', '.join(RULES)}")
    if rule == "none" or value is None or target is None or not math.isfinite(value):
        return NOT_EVALUATED
    d_holds, d_partial = _DEFAULTS[rule]
    holds = d_holds if holds is None else holds
    partial = d_partial if partial is None else partial
    if rule == "relative":
        if target == 0:
            raise ValueError("rule 'relative' needs a non-zero target; use 'zscore' with a standard error instead")
        score = abs(value / target - 1.0)
    elif rule in ("zscore", "exceeds"):
        if error is None or not error > 0:
            raise ValueError(f"rule {rule!r} needs a positive standard error, got error={error!r}")
        score = abs(value - target) / error
        if rule == "exceeds":
            z = (value - target) / error
            if z >= holds:
                return HOLDS
            return PARTIAL if z >= partial else FAILS
    else:  # at_least
        if value >= target:
            return HOLDS
        return PARTIAL if partial is not None and value >= partial else FAILS
    if score <= holds:
        return HOLDS
    return PARTIAL if score <= partial else FAILS


@dataclass(frozen=True)
class Claim:
    """One row of a reproduction's claim table.

    ``claim``: short name; ``statement``: what the paper says; ``measurement``: what we measured, in words and numbers;
    ``value``/``target``/``error``: the numbers the status is computed from with ``rule`` and thresholds
    ``holds``/``partial``; ``status`` is derived (never passed in).
    """

    claim: str
    statement: str
    measurement: str
    rule: str = "none"
    value: float | None = None
    target: float | None = None
    error: float | None = None
    holds: float | None = None
    partial: float | None = None

    @property
    def z(self) -> float | None:
        """``(value − target)/error`` where an error is given (the score of the z rules), else None."""
        if self.error is None or self.value is None or self.target is None or not self.error > 0:
            return None
        return (self.value - self.target) / self.error

    @property
    def status(self) -> str:
        return judge(self.rule, self.value, self.target, error=self.error, holds=self.holds, partial=self.partial)

    @property
    def threshold(self) -> str:
        """The rule in words, for the report table."""
        if self.rule == "relative":
            h, p = self.holds or _DEFAULTS["relative"][0], self.partial or _DEFAULTS["relative"][1]
            return f"|value/target − 1| ≤ {h:g} holds, ≤ {p:g} partially"
        if self.rule == "zscore":
            h, p = self.holds or _DEFAULTS["zscore"][0], self.partial or _DEFAULTS["zscore"][1]
            return f"|value − target| ≤ {h:g}·SE holds, ≤ {p:g}·SE partially"
        if self.rule == "exceeds":
            h, p = _DEFAULTS["exceeds"][0] if self.holds is None else self.holds, \
                _DEFAULTS["exceeds"][1] if self.partial is None else self.partial
            return f"(value − target)/SE ≥ {h:g} holds, ≥ {p:g} partially"
        if self.rule == "at_least":
            part = f", ≥ {self.partial:g} partially" if self.partial is not None else ""
            return f"value ≥ {self.target:g} holds{part}"
        return "—"

    @classmethod
    def not_evaluated(cls, claim: str, statement: str, reason: str) -> Claim:
        return cls(claim, statement, f"not evaluated: {reason}")

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status}

    @classmethod
    def from_dict(cls, data: dict) -> Claim:
        data = {k: v for k, v in data.items() if k != "status"}
        return cls(**data)
