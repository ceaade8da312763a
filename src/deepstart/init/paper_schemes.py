"""Schemes from the papers: random walk, fractional moment, critical; residual scaling lives in :mod:`.residual`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from deepstart.init.papers import (CRITICAL_WEIGHTS, critical_, critical_parameters, fractional_moment_,
                                   fractional_moment_std, random_walk_)
from deepstart.init.schemes import Scheme, register_scheme
from deepstart.init.tensor import check_choice

__all__ = ["RandomWalk", "FractionalMoment", "Critical"]


def _bool(name, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be true or false")
    return value


@register_scheme
@dataclass(frozen=True)
class RandomWalk(Scheme):
    """Sussillo & Abbott 2014: N(0, g²/fan_in) with the unbiased random-walk gain (:func:`~deepstart.init.random_walk_`)."""

    name: ClassVar[str] = "random-walk"
    _id_always: ClassVar[tuple] = ("activation",)
    activation: str = "relu"
    exact: bool = True

    def __post_init__(self):
        from deepstart.theory.random_walk import RANDOM_WALK_ACTIVATIONS

        check_choice("activation", self.activation, RANDOM_WALK_ACTIVATIONS)
        _bool("exact", self.exact)
        if not self.exact and self.activation == "tanh":
            raise ValueError("random-walk: the paper gives no tanh formula; use exact=true for tanh")

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        random_walk_(weight, self.activation, exact=self.exact, generator=generator, layout=layout, groups=groups)
        from deepstart.init.fans import compute_fans
        from deepstart.theory.random_walk import random_walk_gain

        fan_in = compute_fans(weight, layout, groups=groups)[0]
        return random_walk_gain(self.activation, fan_in, exact=self.exact) / math.sqrt(fan_in)


@register_scheme
@dataclass(frozen=True)
class FractionalMoment(Scheme):
    """Gurbuzbalaban & Hu 2021: Gaussian weights preserving E||x||^s (:func:`~deepstart.init.fractional_moment_`)."""

    name: ClassVar[str] = "fractional-moment"
    _id_always: ClassVar[tuple] = ("s", "activation")
    s: float
    activation: str = "relu"
    negative_slope: float = 0.01
    exact: bool = True

    def __post_init__(self):
        from deepstart.theory.fractional import FRACTIONAL_ACTIVATIONS

        if isinstance(self.s, bool) or not isinstance(self.s, (int, float)) or not 0.0 < self.s <= 2.0:
            raise ValueError(f"s={self.s!r} must lie in (0, 2]; the paper uses s=0.8 (relu) and s=1 (leaky, linear)")
        object.__setattr__(self, "s", float(self.s))
        object.__setattr__(self, "negative_slope", float(self.negative_slope))
        check_choice("activation", self.activation, FRACTIONAL_ACTIVATIONS)
        _bool("exact", self.exact)

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        kwargs = dict(negative_slope=self.negative_slope, exact=self.exact, layout=layout, groups=groups)
        fractional_moment_(weight, self.s, self.activation, generator=generator, **kwargs)
        return fractional_moment_std(weight, self.s, self.activation, **kwargs)


@register_scheme
@dataclass(frozen=True)
class Critical(Scheme):
    """Edge of chaos χ₁ = 1 at fixed point ``q_star`` (or bias std ``sigma_b``): weights by
    :func:`~deepstart.init.critical_`, biases N(0, σ_b²) (Schoenholz et al. 2017; Pennington et al. 2017).

    Example: ``parse_scheme("critical(activation=tanh, q_star=1/64)")``.
    """

    name: ClassVar[str] = "critical"
    _id_always: ClassVar[tuple] = ("activation",)
    activation: str
    q_star: float | None = None
    sigma_b: float | None = None
    weights: str = "orthogonal"

    def __post_init__(self):
        from deepstart.theory import get_activation

        if not isinstance(self.activation, str):
            raise TypeError(f"activation must be a name such as 'tanh', got {self.activation!r}")
        get_activation(self.activation)  # raises ValueError listing the valid names
        for field in ("q_star", "sigma_b"):
            value = getattr(self, field)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"{field}={value!r} must be a finite number or none")
                object.__setattr__(self, field, float(value))
        check_choice("weights", self.weights, CRITICAL_WEIGHTS)
        critical_parameters(self.activation, self.q_star, self.sigma_b)  # fail early if there is no critical point

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        critical_(weight, self.activation, q_star=self.q_star, sigma_b=self.sigma_b, weights=self.weights,
                  generator=generator, layout=layout, groups=groups)
        from deepstart.init.fans import compute_fans

        sigma_w, _ = critical_parameters(self.activation, self.q_star, self.sigma_b)
        return sigma_w / math.sqrt(compute_fans(weight, layout, groups=groups)[0])

    def bias_std(self) -> float:
        return critical_parameters(self.activation, self.q_star, self.sigma_b)[1]


import deepstart.init.residual  # noqa: E402,F401  (registers residual-scaled)

