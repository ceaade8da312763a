"""Activation registry: φ, φ', φ'' in NumPy plus the closed-form Gaussian integrals that exist.

Every activation knows where it is not smooth (``kinks``), so Gaussian quadrature can split there
(:mod:`deepstart.theory.gaussian`). Closed forms (THEORY.md §1):

* piecewise linear ``φ(x) = x`` (x > 0), ``a x`` (x < 0) — relu (a = 0), leaky_relu (a = slope), linear (a = 1):
  ``E φ(u)² = q (1 + a²)/2``, ``E φ'² = (1 + a²)/2``, and the arc-cosine kernel for the 2-point integrals
  (Cho & Saul 2009; Poole et al. 2016 for ReLU: ``c' = (√(1−c²) + (π − arccos c) c)/π``).
* erf(s·x): ``E φ(u₁)φ(u₂) = (2/π) arcsin(2s²q₁₂/√((1+2s²q₁)(1+2s²q₂)))`` (Williams 1997),
  ``E φ'(u₁)φ'(u₂) = (4s²/π)/√((1+2s²q₁)(1+2s²q₂) − 4s⁴q₁₂²)``. ``scale = √π/2`` matches tanh's slope at 0.
* hard_tanh(min_val=a, max_val=b) (and relu6 = hard_tanh(0, 6)): with α = a/√q, β = b/√q, ``p = Φ(β) − Φ(α)``,
  ``E φ'² = p``, ``E φ² = q(p − βϕ(β) + αϕ(α)) + a²Φ(α) + b²(1 − Φ(β))``; a = −1, b = 1 gives
  ``E φ² = q(p − 2tϕ(t)) + 1 − p`` with t = 1/√q, p = erf(1/√(2q)).

The other activations of ``torch.nn`` (gelu_tanh, mish, hardswish, ..., rrelu) are in :mod:`._torch_activations`,
appended to the registry after these names.

Other activations use quadrature. A user function is accepted too; its derivatives, when not given, come from
central finite differences (error ~1e-10 for smooth φ of unit scale).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.special import erf as _erf, erfc, expit

__all__ = ["Activation", "ACTIVATION_NAMES", "get_activation"]

Array = np.ndarray
_SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, eq. 14
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True, eq=False)
class Activation:
    """An elementwise nonlinearity with its derivatives and what Gaussian integrals need to know.

    Attributes:
        name, params: registry name and its parameters (e.g. ``{"negative_slope": 0.01}``).
        phi, dphi, d2phi: vectorized NumPy functions φ, φ', φ''.
        kinks: points where φ (or a derivative up to the second) is not smooth; quadrature splits there.
        split_points: further points where quadrature splits although φ is smooth: the edges of the region
            where a sigmoidal φ bends, so that φ(√q z) stays resolved when q is large (Gauss–Hermite alone
            loses 1e-3 accuracy on E tanh'(√q z)² at q = 4 with 64 nodes; split at ±2, 0 it keeps 1e-8).
        jumps: ``(t, φ(t⁻), φ(t⁺))`` where φ itself jumps (hardshrink, threshold); ``dphi`` is then the pointwise
            derivative and dV/dq carries the jump term (:func:`deepstart.theory.mean_field.q_map_slope`).
        bound: sup |φ| (``inf`` if unbounded); bounds the fixed point q* ≤ σ_w² bound² + σ_b².
        growth: lim E φ(√q z)²/q as q → ∞ (0 for bounded φ); σ_w² growth > 1 means q* = ∞.
        slopes: ``(a₊, a₋)`` when φ(x) = a₊x (x > 0), a₋x (x < 0) exactly, else ``None``.
        second_moment, dphi_second_moment: optional closed forms q ↦ E φ(√q z)², E φ'(√q z)².
        cross_moment, dphi_cross_moment: optional closed forms (q₁, q₂, q₁₂) ↦ E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂)
            for (u₁, u₂) centred Gaussian with variances q₁, q₂ and covariance q₁₂.
    """

    name: str
    phi: Callable[[Array], Array]
    dphi: Callable[[Array], Array]
    d2phi: Callable[[Array], Array]
    kinks: tuple = ()
    split_points: tuple = ()
    params: dict = field(default_factory=dict)
    jumps: tuple = ()
    bound: float = math.inf
    growth: float = 0.0
    slopes: tuple | None = None
    second_moment: Callable | None = None
    dphi_second_moment: Callable | None = None
    cross_moment: Callable | None = None
    dphi_cross_moment: Callable | None = None

    @property
    def breakpoints(self) -> tuple:
        """Sorted kinks ∪ split_points: where :func:`~deepstart.theory.gaussian.gaussian_nodes` splits."""
        return tuple(sorted(set(self.kinks) | set(self.split_points)))

    def __call__(self, x):
        return self.phi(np.asarray(x, dtype=float))

    def to_dict(self) -> dict:
        """``{"name": ..., "params": ...}``; user callables serialize by name only."""
        return {"name": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict) -> "Activation":
        return get_activation(d["name"], **d.get("params", {}))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Activation({self.name}{'(' + args + ')' if args else ''})"


# ---------------------------------------------------------------- piecewise linear (relu, leaky_relu, linear)
def _arccos_kernel(q1, q2, q12):
    """E relu(u₁) relu(u₂) = √(q₁q₂)(√(1−c²) + (π − arccos c)c)/(2π) (Cho & Saul 2009, n = 1)."""
    norm = np.sqrt(q1 * q2)
    c = np.clip(np.divide(q12, norm, out=np.zeros(np.broadcast(q12, norm).shape), where=norm > 0), -1.0, 1.0)
    return norm * (np.sqrt(1.0 - c * c) + (np.pi - np.arccos(c)) * c) / (2.0 * np.pi)


def _both_positive(q1, q2, q12):
    """P(u₁ > 0, u₂ > 0) = (π − arccos c)/(2π)."""
    norm = np.sqrt(np.asarray(q1, float) * q2)
    c = np.clip(np.divide(q12, norm, out=np.zeros(np.broadcast(q12, norm).shape), where=norm > 0), -1, 1)
    return (np.pi - np.arccos(c)) / (2.0 * np.pi)


def _piecewise_linear(name: str, a: float, params: dict) -> Activation:
    a = float(a)
    c2 = (1.0 + a * a) / 2.0

    def cross(q1, q2, q12):  # φ = a x + (1 − a) relu(x); E u₁ relu(u₂) = q₁₂/2 by symmetry
        q12 = np.asarray(q12, dtype=float)
        return a * a * q12 + a * (1.0 - a) * q12 + (1.0 - a) ** 2 * _arccos_kernel(q1, q2, q12)

    def dcross(q1, q2, q12):  # φ' = a + (1 − a)1{x>0}
        return a * a + a * (1.0 - a) + (1.0 - a) ** 2 * _both_positive(q1, q2, q12)

    return Activation(
        name=name, params=params,
        phi=lambda x: np.where(x > 0, x, a * x),
        dphi=lambda x: np.where(x > 0, 1.0, a) + 0.0 * x,
        d2phi=lambda x: np.zeros_like(np.asarray(x, dtype=float)),
        kinks=() if a == 1.0 else (0.0,), growth=c2, slopes=(1.0, a),
        second_moment=lambda q: c2 * np.asarray(q, dtype=float),
        dphi_second_moment=lambda q: c2 + 0.0 * np.asarray(q, dtype=float),
        cross_moment=cross, dphi_cross_moment=dcross,
    )


# ---------------------------------------------------------------- bounded sigmoidal
def _tanh(params) -> Activation:
    def d2(x):
        t = np.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    return Activation("tanh", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, d2, params=params, bound=1.0,
                      split_points=(-2.0, 0.0, 2.0))


def _clip(name: str, lo: float, hi: float, params) -> Activation:
    """φ = clip(x, lo, hi) (hard_tanh, relu6) with closed-form E φ², E φ'² (module docstring)."""
    def ab(q):
        s = np.sqrt(np.maximum(np.asarray(q, dtype=float), 1e-300))  # q → 0: α, β → ±∞ or 0 (a kink at 0)
        return lo / s, hi / s

    def p_inside(q):  # P(lo < h < hi); ½ at q = 0 when lo or hi is 0 (both sides of the kink averaged)
        a, b = ab(q)
        return 0.5 * (_erf(b / math.sqrt(2.0)) - _erf(a / math.sqrt(2.0)))

    def second(q):  # E[h² 1{lo<h<hi}] + lo² P(h < lo) + hi² P(h > hi), h ~ N(0, q)
        q = np.asarray(q, dtype=float)
        a, b = ab(q)
        pdf = lambda t: np.exp(-0.5 * t * t) / _SQRT_2PI  # noqa: E731
        tails = 0.5 * lo * lo * erfc(-a / math.sqrt(2.0)) + 0.5 * hi * hi * erfc(b / math.sqrt(2.0))
        return q * (p_inside(q) - b * pdf(b) + a * pdf(a)) + tails

    return Activation(
        name, lambda x: np.clip(x, lo, hi), lambda x: ((x > lo) & (x < hi)).astype(float),
        lambda x: np.zeros_like(np.asarray(x, dtype=float)), kinks=(lo, hi), params=params,
        bound=max(abs(lo), abs(hi)), second_moment=second, dphi_second_moment=p_inside)


def _hard_tanh(params) -> Activation:
    return _clip("hard_tanh", float(params["min_val"]), float(params["max_val"]), params)


def _erf_act(params) -> Activation:
    s = float(params["scale"])
    k = 2.0 * s / math.sqrt(math.pi)

    def cross(q1, q2, q12):
        return (2.0 / np.pi) * np.arcsin(np.clip(
            2 * s * s * np.asarray(q12, float) / np.sqrt((1 + 2 * s * s * q1) * (1 + 2 * s * s * q2)), -1, 1))

    def dcross(q1, q2, q12):
        det = (1 + 2 * s * s * np.asarray(q1, float)) * (1 + 2 * s * s * q2) - 4 * s ** 4 * np.square(q12)
        return k * k / np.sqrt(det)

    return Activation(
        "erf", lambda x: _erf(s * x), lambda x: k * np.exp(-(s * x) ** 2),
        lambda x: -2.0 * s * s * x * k * np.exp(-(s * x) ** 2), params=params, bound=1.0,
        split_points=(-1.5 / s, 0.0, 1.5 / s),
        second_moment=lambda q: cross(q, q, q), dphi_second_moment=lambda q: dcross(q, q, q),
        cross_moment=cross, dphi_cross_moment=dcross)


def _sigmoid(params) -> Activation:
    def d1(x):
        s = expit(x)
        return s * (1.0 - s)

    def d2(x):
        s = expit(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    return Activation("sigmoid", expit, d1, d2, params=params, bound=1.0, split_points=(-4.0, 0.0, 4.0))


# ---------------------------------------------------------------- smooth / exponential unbounded
def _gelu(params) -> Activation:
    def cdf(x):
        return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))

    def pdf(x):
        return np.exp(-0.5 * np.square(x)) / _SQRT_2PI
    return Activation("gelu", lambda x: x * cdf(x), lambda x: cdf(x) + x * pdf(x),
                      lambda x: pdf(x) * (2.0 - np.square(x)), params=params, growth=0.5,
                      split_points=(-2.0, 0.0, 2.0))


def _silu(params) -> Activation:
    def d1(x):
        s = expit(x)
        return s + x * s * (1.0 - s)

    def d2(x):
        s = expit(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))
    return Activation("silu", lambda x: x * expit(x), d1, d2, params=params, growth=0.5,
                      split_points=(-4.0, 0.0, 4.0))


def _elu_like(name: str, alpha: float, scale: float, params) -> Activation:
    def neg_exp(x):
        return np.expm1(np.minimum(x, 0.0))
    return Activation(
        name, lambda x: scale * np.where(x > 0, x, alpha * neg_exp(x)),
        lambda x: scale * np.where(x > 0, 1.0, alpha * (neg_exp(x) + 1.0)),
        lambda x: scale * np.where(x > 0, 0.0, alpha * (neg_exp(x) + 1.0)),
        kinks=(0.0,), split_points=(-3.0,), params=params, growth=scale * scale / 2.0)


def _softplus(params) -> Activation:
    b = float(params["beta"])
    return Activation("softplus", lambda x: np.logaddexp(0.0, b * x) / b, lambda x: expit(b * x),
                      lambda x: b * expit(b * x) * (1.0 - expit(b * x)), params=params, growth=0.5,
                      split_points=(-4.0 / b, 0.0, 4.0 / b))


# name -> (factory(params), default params)
_REGISTRY: dict[str, tuple[Callable[[dict], Activation], dict]] = {
    "relu": (lambda p: _piecewise_linear("relu", 0.0, p), {}),
    "leaky_relu": (lambda p: _piecewise_linear("leaky_relu", p["negative_slope"], p), {"negative_slope": 0.01}),
    "linear": (lambda p: _piecewise_linear("linear", 1.0, p), {}),
    "tanh": (_tanh, {}),
    "hard_tanh": (_hard_tanh, {"min_val": -1.0, "max_val": 1.0}),
    "erf": (_erf_act, {"scale": 1.0}),
    "sigmoid": (_sigmoid, {}),
    "gelu": (_gelu, {}),
    "silu": (_silu, {}),
    "elu": (lambda p: _elu_like("elu", float(p["alpha"]), 1.0, p), {"alpha": 1.0}),
    "selu": (lambda p: _elu_like("selu", _SELU_ALPHA, _SELU_SCALE, p), {}),
    "softplus": (_softplus, {"beta": 1.0}),
}
_VALIDATORS: dict[str, Callable[[dict], None]] = {
    "hard_tanh": lambda p: None if p["min_val"] < p["max_val"] else _raise(
        f"activation 'hard_tanh': min_val={p['min_val']!r} must be < max_val={p['max_val']!r}")}


def _raise(message: str):
    raise ValueError(message)


from deepstart.theory._torch_activations import (  # noqa: E402  (needs Activation and the helpers above)
    NONNEGATIVE_PARAMS, SIGNED_PARAMS, TORCH_REGISTRY)

for _name, (_factory, _defaults, _check) in TORCH_REGISTRY.items():
    _REGISTRY[_name] = (_factory, _defaults)
    if _check is not None:
        _VALIDATORS[_name] = _check
ACTIVATION_NAMES: tuple[str, ...] = tuple(_REGISTRY)
_ALIASES = {"hardtanh": "hard_tanh", "identity": "linear", "swish": "silu", "leakyrelu": "leaky_relu",
            "hard_swish": "hardswish", "hard_sigmoid": "hardsigmoid", "log_sigmoid": "logsigmoid"}
_SPEC_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")


def _parse_spec(text: str) -> tuple[str, dict]:
    """``"leaky_relu(negative_slope=0.2)"`` -> ``("leaky_relu", {"negative_slope": 0.2})``."""
    m = _SPEC_RE.match(text)
    if not m:
        raise ValueError(f"unknown activation {text!r} (not a name or 'name(key=value, ...)'); "
                         f"valid names: {', '.join(ACTIVATION_NAMES)}")
    name, args = m.group(1).lower(), m.group(2)
    params = {}
    for part in filter(None, (s.strip() for s in (args or "").split(","))):
        key, sep, value = part.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"activation {text!r}: parameter {part!r} must look like key=number") from None
        if not sep:
            raise ValueError(f"activation {text!r}: parameter {part!r} must look like key=number")
    return _ALIASES.get(name, name), params


def _finite_difference(f: Callable) -> Callable:
    """Central difference with step ~ ε^{1/3}·max(1, |x|) (error ~1e-10 for smooth f of unit scale)."""
    def df(x):
        x = np.asarray(x, dtype=float)
        h = 6e-6 * np.maximum(1.0, np.abs(x))
        return (np.asarray(f(x + h), float) - np.asarray(f(x - h), float)) / (2.0 * h)
    return df


def _from_callable(fn, dphi=None, d2phi=None, kinks=(), name=None, bound=math.inf, growth=None) -> Activation:
    def phi(x):
        return np.asarray(fn(np.asarray(x, dtype=float)), dtype=float)
    d1 = dphi if dphi is not None else _finite_difference(phi)
    d2 = d2phi if d2phi is not None else _finite_difference(d1)
    if growth is None:  # E φ(√q z)²/q at large q ≈ (φ(R)² + φ(−R)²)/(2R²) for homogeneous-at-infinity φ
        r = 1e6
        growth = 0.0 if math.isfinite(bound) else float((phi(r) ** 2 + phi(-r) ** 2) / (2 * r * r))
    return Activation(name or getattr(fn, "__name__", "custom"), phi, d1, d2, kinks=tuple(float(k) for k in kinks),
                      bound=float(bound), growth=float(growth))


def get_activation(spec, **params) -> Activation:
    """Look up an activation by name (or ``"name(key=value)"``), or wrap a user function.

    Args:
        spec: one of :data:`ACTIVATION_NAMES`, an :class:`Activation`, or a callable φ (NumPy, vectorized).
        params: the named activation's parameters (``negative_slope`` for leaky_relu, ``alpha`` for elu and
            celu, ``beta`` for softplus, ``scale`` for erf, ``min_val``/``max_val`` for hard_tanh, ``lambd`` for
            softshrink/hardshrink, ``threshold``/``value`` for threshold, ``init`` for prelu, ``lower``/``upper``
            for rrelu and rrelu_train); for a callable: ``dphi``, ``d2phi`` (else finite
            differences), ``kinks``, ``name``, ``bound`` (sup|φ|), ``growth``.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or a bad parameter value.
        TypeError: unknown parameter or a spec that is neither a string nor callable.

    Example:
        >>> get_activation("leaky_relu", negative_slope=0.2).phi(np.array([-1.0, 2.0]))
        array([-0.2,  2. ])
    """
    if isinstance(spec, Activation):
        if params:
            raise TypeError(f"parameters {sorted(params)} cannot be applied to an existing Activation {spec!r}")
        return spec
    if callable(spec):
        allowed = {"dphi", "d2phi", "kinks", "name", "bound", "growth"}
        bad = set(params) - allowed
        if bad:
            raise TypeError(f"unknown keyword(s) {sorted(bad)} for a callable activation; valid: {sorted(allowed)}")
        return _from_callable(spec, **params)
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name from {list(ACTIVATION_NAMES)} or a callable, got {spec!r}")
    name, parsed = _parse_spec(spec)
    if name not in _REGISTRY:
        raise ValueError(f"unknown activation {spec!r}; valid names: {', '.join(ACTIVATION_NAMES)} "
                         "(or pass a callable φ)")
    factory, defaults = _REGISTRY[name]
    merged = {**parsed, **params}
    bad = set(merged) - set(defaults)
    if bad:
        valid = sorted(defaults) or "none"
        raise TypeError(f"activation {name!r} got unknown parameter(s) {sorted(bad)}; valid parameters: {valid}")
    full = {**defaults, **{k: float(v) for k, v in merged.items()}}
    for key, value in full.items():
        kind = "" if key in SIGNED_PARAMS else " non-negative" if key in NONNEGATIVE_PARAMS else " positive"
        if not math.isfinite(value) or (kind == " positive" and value <= 0) or (kind and value < 0):
            raise ValueError(f"activation {name!r}: {key}={value!r} must be a finite{kind} number")
    if name in _VALIDATORS:
        _VALIDATORS[name](full)
    return factory(full)
