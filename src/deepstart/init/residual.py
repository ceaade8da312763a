"""Residual scaling: multiply the last layer of each residual branch by η_l (Hanin & Rolnick 2018, §4, ResNets).

η convention (THEORY.md §4; ``docs/residual-eta.md``): x_l = x_{l−1} + η_l N_l(x_{l−1}) with η_l multiplying the
branch's *output*, i.e. its standard deviation; the branch's variance is scaled by η_l². With a length-preserving He
branch whose last layer is symmetric, E[M_L] = M_0 ∏_l (1 + η_l²), so FM1 (exploding mean length) is avoided iff
Σ η_l² < ∞ in this convention. Hanin & Rolnick state the condition as Σ η_l < ∞, which is the same statement when
their η scales the branch's variance (η_HR = η_ours²). η_l = 1 gives E[M_L] = 2^L M_0.

This is the convention of :class:`deepstart.nn.ScaledResidual` (``x + η·branch(x)``), of
:func:`deepstart.experiments.models.resnet`'s ``eta`` and of :class:`ResidualScaled`. Do not combine
:class:`ResidualScaled` with ``ScaledResidual(eta≠1)``: the branch would be scaled twice.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

import torch

from deepstart.init._parse import convert_value
from deepstart.init.schemes import Scheme, parse_scheme, register_scheme

__all__ = ["ETA_SCHEDULES", "residual_etas", "ResidualScaled"]

ETA_SCHEDULES = ("a number", "1/l", "1/L", "1/sqrt(L)", "geometric(r)", "a list of L numbers")


def residual_etas(eta, depth: int) -> tuple[float, ...]:
    """η_1..η_L for ``depth`` = L branches: a constant, ``"1/l"``, ``"1/L"``, ``"1/sqrt(L)"``, ``"geometric(r)"``
    (η_l = r^l) or a sequence of L numbers.

    Example:
        >>> residual_etas("1/l", 3)
        (1.0, 0.5, 0.3333333333333333)
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth={depth!r} must be an int >= 0 (the number of residual branches)")
    if isinstance(eta, (int, float)) and not isinstance(eta, bool):
        values = [float(eta)] * depth
    elif isinstance(eta, str):
        raw = eta.replace(" ", "")
        geo = re.fullmatch(r"geometric\(([^)]+)\)", raw)
        if raw == "1/l":
            values = [1.0 / l for l in range(1, depth + 1)]
        elif raw == "1/L":
            values = [1.0 / depth] * depth
        elif raw == "1/sqrt(L)":
            values = [1.0 / math.sqrt(depth)] * depth
        elif geo and isinstance(convert_value(geo.group(1)), float):
            values = [convert_value(geo.group(1)) ** l for l in range(1, depth + 1)]
        else:
            raise ValueError(f"unknown eta schedule {eta!r}; valid: {', '.join(ETA_SCHEDULES)}")
    elif isinstance(eta, (list, tuple)):
        if len(eta) != depth or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in eta):
            raise ValueError(f"eta list {eta!r} must hold exactly {depth} numbers, one per residual branch")
        values = [float(v) for v in eta]
    else:
        raise TypeError(f"eta={eta!r}: valid: {', '.join(ETA_SCHEDULES)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"eta schedule {eta!r} gives non-finite values")
    return tuple(values)


def _branches(model, pattern):
    from deepstart.nn import ScaledResidual

    if pattern is None:
        return [(f"{name}.branch" if name else "branch", m.branch) for name, m in model.named_modules()
                if isinstance(m, ScaledResidual)]
    regex = re.compile(pattern)
    return [(name, m) for name, m in model.named_modules() if name and regex.fullmatch(name)]


@register_scheme
@dataclass(frozen=True)
class ResidualScaled(Scheme):
    """Initialize with ``base``, then multiply the last matched layer of residual branch l by η_l (weight and bias).

    Branches: the ``branch`` of every :class:`deepstart.nn.ScaledResidual` (build those with ``eta=1.0``), or the
    modules whose names fully match the regex ``branches``. Text form:
    ``"residual-scaled(base=he, eta=1/l)"``, ``"residual-scaled(base=orthogonal(gain=1.0), eta=geometric(0.9))"``.
    """

    name: ClassVar[str] = "residual-scaled"
    _id_always: ClassVar[tuple] = ("base", "eta")
    base: Scheme = None
    eta: object = 1.0
    branches: str | None = None

    def __post_init__(self):
        if self.base is None:
            raise ValueError("residual-scaled needs base=, e.g. 'residual-scaled(base=he, eta=1/l)'")
        object.__setattr__(self, "base", parse_scheme(self.base))
        if isinstance(self.base, ResidualScaled):
            raise ValueError("residual-scaled cannot wrap another residual-scaled scheme")
        if isinstance(self.eta, list):
            object.__setattr__(self, "eta", tuple(self.eta))
        if isinstance(self.eta, int) and not isinstance(self.eta, bool):
            object.__setattr__(self, "eta", float(self.eta))
        residual_etas(self.eta, len(self.eta) if isinstance(self.eta, tuple) else 1)  # validate the schedule
        if self.branches is not None:
            re.compile(self.branches)

    def bias_std(self):
        return self.base.bias_std()

    def init_weight_(self, weight, **kwargs):
        return self.base.init_weight_(weight, **kwargs)

    def apply_to_(self, modules, *, bias="zeros", generator=None, model=None):
        entries = self.base.apply_to_(modules, bias=bias, generator=generator, model=model)
        branches = _branches(model, self.branches)
        if not branches:
            raise ValueError("residual-scaled found no residual branches: wrap them in deepstart.nn.ScaledResidual "
                             "(eta=1.0) or pass branches='<regex on module names>'")
        etas = residual_etas(self.eta, len(branches))
        scaled = {}
        for (prefix, _), eta in zip(branches, etas):
            inside = [(n, m) for n, m in modules if n == prefix or n.startswith(prefix + ".")]
            if not inside:
                raise ValueError(f"residual branch {prefix!r} has no initialized layer; check include=")
            name, last = inside[-1]
            with torch.no_grad():
                for p in (last.weight, getattr(last, "bias", None)):
                    if isinstance(p, torch.Tensor):
                        p.mul_(eta)
            scaled[f"{name}." if name else ""] = eta
        out = []
        for e in entries:
            prefix = e.name.rsplit(".", 1)[0] + "." if "." in e.name else ""
            if prefix in scaled:
                note = "; ".join(filter(None, (e.note, f"eta={scaled[prefix]:g}")))
                e = type(e)(e.name, e.shape, e.fan_in, e.std * abs(scaled[prefix]), self.id, note)
            else:
                e = type(e)(e.name, e.shape, e.fan_in, e.std, self.id, e.note)
            out.append(e)
        return out
