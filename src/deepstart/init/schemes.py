"""Initialization schemes: small frozen dataclasses with a string id and a parser.

``parse_scheme("fractional-moment(s=0.8, activation=relu)") == FractionalMoment(0.8, "relu")`` and
``parse_scheme(scheme.id) == scheme`` for every scheme. A scheme initializes one module's weight (and, where it
prescribes one, its bias law); :func:`deepstart.init.apply_` walks a model and calls it.

Names (aliases in brackets): he [kaiming, kaiming-normal, kaiming-uniform, he-normal, he-uniform], lecun
[lecun-normal, lecun-uniform], glorot [xavier, xavier-normal, xavier-uniform, glorot-normal, glorot-uniform],
variance-scaling, orthogonal, delta-orthogonal, random-walk, fractional-moment, critical, residual-scaled,
pytorch-default [default]. ``_`` and ``-`` are the same in names, so ``torch.nn.init``'s words work:
``kaiming_uniform(mode=fan_out, nonlinearity=leaky_relu, a=0.2)`` is ``he(distribution=uniform, mode=fan_out,
a=0.2)``; a ``*-uniform`` alias fixes ``distribution=uniform``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from deepstart.init._parse import format_value, parse_call
from deepstart.init.fans import compute_fans
from deepstart.init.record import InitEntry
from deepstart.init.tensor import DISTRIBUTIONS, MODES, check_choice, fill_with_std_, variance_scaling_
from deepstart.init.torch_init import KAIMING_MODES, gain_var

__all__ = ["Scheme", "He", "LeCun", "Glorot", "VarianceScaling", "Orthogonal", "DeltaOrthogonal", "PyTorchDefault",
           "SCHEMES", "parse_scheme", "register_scheme"]

SCHEMES: dict[str, type] = {}
_ALIASES = {"kaiming": "he", "kaiming-normal": "he", "he-normal": "he", "xavier": "glorot", "xavier-normal": "glorot",
            "glorot-normal": "glorot", "default": "pytorch-default", "torch-default": "pytorch-default",
            "lecun-normal": "lecun", "delta": "delta-orthogonal", "residual": "residual-scaled",
            "fractional": "fractional-moment", "sussillo-abbott": "random-walk"}
# aliases that also fix arguments: name -> (scheme name, fixed keyword arguments)
_FIXING_ALIASES = {f"{alias}-uniform": (name, {"distribution": "uniform"}) for alias, name in
                   (("kaiming", "he"), ("he", "he"), ("xavier", "glorot"), ("glorot", "glorot"), ("lecun", "lecun"))}


def register_scheme(cls):
    """Class decorator: make ``cls`` reachable by its ``name`` in :func:`parse_scheme`."""
    SCHEMES[cls.name] = cls
    return cls


def _finite(name: str, value, *, low=None, strict=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(f"{name}={value!r} must be {'>' if strict else '>='} {low}")
    return float(value)


@dataclass(frozen=True)
class Scheme:
    """Base class. Subclasses set ``name`` and implement :meth:`init_weight_`."""

    name: ClassVar[str] = ""
    _id_always: ClassVar[tuple] = ()

    @property
    def id(self) -> str:
        """Canonical text, parsed back by :func:`parse_scheme`: required and non-default fields only."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            has_default = f.default is not dataclasses.MISSING
            if f.name in self._id_always or not has_default or value != f.default:
                parts.append(f"{f.name}={format_value(value)}")
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def __str__(self) -> str:
        return self.id

    def to_dict(self) -> dict:
        return {"scheme": self.id}

    @classmethod
    def from_dict(cls, d: dict) -> "Scheme":
        return parse_scheme(d["scheme"])

    def init_weight_(self, weight: torch.Tensor, *, layout: str = "auto", groups: int = 1,
                     generator: torch.Generator | None = None) -> float:
        """Initialize ``weight`` in place; return the per-entry std used."""
        raise NotImplementedError

    def bias_std(self) -> float | None:
        """The bias std this scheme prescribes, or None (then :func:`apply_`'s ``bias`` policy decides)."""
        return None

    def init_module_(self, module: torch.nn.Module, *, index: int = 0, depth: int = 1,
                     generator: torch.Generator | None = None, bias="zeros", prefix: str = "") -> list[InitEntry]:
        """Initialize ``module.weight`` (and ``module.bias`` per ``bias``, see :func:`apply_`); return records.

        ``index``/``depth`` give the module's position among the matched modules (for depth-aware schemes).
        """
        from deepstart.init.fans import layout_of

        weight = module.weight
        layout, groups = layout_of(module), int(getattr(module, "groups", 1))
        fan_in = compute_fans(weight, layout, groups=groups)[0]
        std = self.init_weight_(weight, layout=layout, groups=groups, generator=generator)
        note = zero_padding_row_(module, layout)
        entries = [InitEntry(prefix + "weight", tuple(weight.shape), fan_in, float(std), self.id, note)]
        entry = init_bias_(module, self.bias_std(), bias, generator=generator, prefix=prefix, scheme=self.id,
                           fan_in=fan_in)
        return entries + ([entry] if entry else [])

    def for_modules(self, modules: list, model=None) -> list["Scheme"]:
        """The scheme each matched ``(name, module)`` gets: ``self`` for all, unless a scheme reads the model
        (``he`` with ``a`` unset takes the slope of the leaky ReLU / PReLU that follows each layer)."""
        return [self] * len(modules)

    def apply_to_(self, modules: list, *, bias="zeros", generator=None, model=None) -> list[InitEntry]:
        """Initialize the ``(name, module)`` pairs :func:`apply_` matched in ``model``, in order."""
        from deepstart.init.fans import layout_of

        entries = []
        for i, ((name, module), scheme) in enumerate(zip(modules, self.for_modules(modules, model))):
            prefix = f"{name}." if name else ""
            try:
                entries += scheme.init_module_(module, index=i, depth=len(modules), generator=generator, bias=bias,
                                               prefix=prefix)
            except ValueError as err:
                raise ValueError(f"{self.id} cannot initialize {name or 'the model'!r} ({type(module).__name__}, "
                                 f"layout {layout_of(module)!r}): {err}; to skip it, pass apply_(include=...)"
                                 ) from err
        return entries


def zero_padding_row_(module, layout: str) -> str:
    """Zero an embedding's ``padding_idx`` row (as ``nn.Embedding.reset_parameters`` does: that row is the output
    for padding and gets no gradient); return the record's note, ``""`` when there is none."""
    idx = getattr(module, "padding_idx", None)
    if layout != "embedding" or idx is None:
        return ""
    with torch.no_grad():
        module.weight[idx].zero_()
    return f"padding_idx={idx}"


def init_bias_(module, prescribed, policy, *, generator, prefix, scheme, fan_in) -> InitEntry | None:
    """Apply the bias policy of :func:`apply_`: "zeros" (or the scheme's law), "keep", or a float σ_b."""
    b = getattr(module, "bias", None)
    if not isinstance(b, torch.Tensor) or policy == "keep" or b.numel() == 0:
        return None
    std = prescribed if policy == "zeros" else float(policy)
    with torch.no_grad():
        if std:
            b.normal_(0.0, std, generator=generator)
        else:
            b.zero_()
    return InitEntry(prefix + "bias", tuple(b.shape), fan_in, float(std or 0.0), scheme)


@register_scheme
@dataclass(frozen=True)
class VarianceScaling(Scheme):
    """Weight variance ``scale / fan`` (JAX's variance_scaling); ``variance-scaling(scale=1.5)`` is 1.5/fan_in, the
    "below, at and above 2/fan_in" axis of Hanin & Rolnick 2018, Fig. 2."""

    name: ClassVar[str] = "variance-scaling"
    _id_always: ClassVar[tuple] = ("scale",)
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "normal"

    def __post_init__(self):
        object.__setattr__(self, "scale", _finite("scale", self.scale, low=0.0))
        check_choice("mode", self.mode, MODES)
        check_choice("distribution", self.distribution, DISTRIBUTIONS)

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        variance_scaling_(weight, self.scale, self.mode, self.distribution, generator=generator, layout=layout,
                          groups=groups)
        fan_in, fan_out = compute_fans(weight, layout, groups=groups)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return math.sqrt(self.scale / fan)


@dataclass(frozen=True)
class _FixedScaling(Scheme):
    """Variance scaling with the paper's scale and mode (:meth:`law`); the distribution is free."""

    SCALE: ClassVar[float] = 1.0
    MODE: ClassVar[str] = "fan_in"
    distribution: str = "normal"

    def __post_init__(self):
        check_choice("distribution", self.distribution, DISTRIBUTIONS)

    def law(self) -> tuple[float, str]:
        """``(scale, mode)``: the weight variance is scale/fan_mode."""
        return self.SCALE, self.MODE

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        scheme = VarianceScaling(*self.law(), self.distribution)
        return scheme.init_weight_(weight, layout=layout, groups=groups, generator=generator)


@register_scheme
@dataclass(frozen=True)
class He(_FixedScaling):
    """He et al. 2015 (``torch.nn.init.kaiming_*``): variance gain²/fan_mode, gain² = 2/(1 + a²) for the default
    ``nonlinearity=leaky_relu`` (eq. 15; a = 0 is ReLU's 2/fan_in, eq. 10, the critical point of THEORY.md §1), or
    :func:`~deepstart.init.gain_var` of another ``nonlinearity``; ``mode`` fan_in (forward) or fan_out (eq. 14).

    ``a=None`` (the default) reads the slope from the model in :func:`~deepstart.init.apply_`: each layer followed by
    an ``nn.LeakyReLU``/``nn.PReLU`` gets 2/((1 + a²)·fan) with that module's slope, recorded as ``he(a=…)``
    (found by module order, :mod:`deepstart.init.activations`), every other layer a = 0. A number fixes a for all
    layers (``he(a=0)``: plain 2/fan_in everywhere); on a bare tensor None is 0, torch's default.
    """

    name: ClassVar[str] = "he"
    mode: str = "fan_in"
    nonlinearity: str = "leaky_relu"
    a: float | None = None

    def __post_init__(self):
        super().__post_init__()
        check_choice("mode", self.mode, KAIMING_MODES)
        gain_var(self.nonlinearity, 0.0)  # raises for an unknown name, listing the valid ones
        if self.a is not None:
            object.__setattr__(self, "a", _finite("a", self.a))
            if self.nonlinearity != "leaky_relu":
                raise ValueError(f"a={self.a!r} is the leaky ReLU slope, used only with nonlinearity=leaky_relu "
                                 f"(got nonlinearity={self.nonlinearity}); drop a or set nonlinearity=leaky_relu")

    def law(self):
        return gain_var(self.nonlinearity, self.a or 0.0), self.mode

    def for_modules(self, modules, model=None):
        if self.a is not None or self.nonlinearity != "leaky_relu" or model is None:
            return super().for_modules(modules, model)
        from deepstart.init.activations import rectifier_slopes

        slopes = rectifier_slopes(model)
        return [dataclasses.replace(self, a=slopes[id(m)]) if id(m) in slopes else self for _, m in modules]


@register_scheme
@dataclass(frozen=True)
class LeCun(_FixedScaling):
    """LeCun et al. 1998 (Efficient BackProp): variance 1/fan_in (the linear critical point)."""

    name: ClassVar[str] = "lecun"


@register_scheme
@dataclass(frozen=True)
class Glorot(_FixedScaling):
    """Glorot & Bengio 2010, eq. 12 (``torch.nn.init.xavier_*``): variance gain²·2/(fan_in + fan_out)."""

    name: ClassVar[str] = "glorot"
    MODE: ClassVar[str] = "fan_avg"
    gain: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "gain", _finite("gain", self.gain, low=0.0))

    def law(self):
        return self.gain**2, self.MODE


@register_scheme
@dataclass(frozen=True)
class Orthogonal(Scheme):
    """Haar orthogonal weights times ``gain`` (Saxe et al. 2014), see :func:`deepstart.init.orthogonal_`."""

    name: ClassVar[str] = "orthogonal"
    _id_always: ClassVar[tuple] = ("gain",)
    gain: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "gain", _finite("gain", self.gain))

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        from deepstart.init.orthogonal import orthogonal_

        orthogonal_(weight, self.gain, generator=generator)
        return abs(self.gain) / math.sqrt(max(weight.shape[0], weight.numel() // weight.shape[0]))


@register_scheme
@dataclass(frozen=True)
class DeltaOrthogonal(Orthogonal):
    """Xiao et al. 2018, Algorithm 2: conv kernels' centre tap orthogonal × gain; linear layers orthogonal."""

    name: ClassVar[str] = "delta-orthogonal"

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        from deepstart.init.orthogonal import delta_orthogonal_

        if weight.dim() == 2:
            return super().init_weight_(weight, layout=layout, groups=groups, generator=generator)
        delta_orthogonal_(weight, self.gain, generator=generator, layout=layout, groups=groups)
        return float(weight.detach().double().pow(2).mean().sqrt())


@register_scheme
@dataclass(frozen=True)
class PyTorchDefault(Scheme):
    """Each module's own ``reset_parameters()`` (PyTorch's default: U(±1/√fan_in) for Linear/Conv weights and
    biases, N(0, 1) for embeddings), run with the global RNG forked and seeded from ``generator``, so the result
    depends only on the generator and the global RNG state is left as it was. Hugging Face ``Conv1D`` has no
    ``reset_parameters`` and gets ``nn.Linear``'s law with its own fan_in. Records the measured weight RMS as
    ``std``."""

    name: ClassVar[str] = "pytorch-default"

    def init_module_(self, module, *, index=0, depth=1, generator=None, bias="zeros", prefix=""):
        from deepstart.init.fans import layout_of

        weight = module.weight
        layout, groups = layout_of(module), int(getattr(module, "groups", 1))
        fan_in = compute_fans(weight, layout, groups=groups)[0]
        if layout == "linear_transposed":
            _linear_default_(module, fan_in, generator)
        elif hasattr(module, "reset_parameters"):
            _reset_(module, generator)
        else:
            raise TypeError(f"pytorch-default: module {prefix.rstrip('.') or type(module).__name__} has no "
                            "reset_parameters(); exclude it with include=")
        std = float(weight.detach().double().pow(2).mean().sqrt())
        note = zero_padding_row_(module, layout)
        entries = [InitEntry(prefix + "weight", tuple(weight.shape), fan_in, std, self.id, note)]
        b = getattr(module, "bias", None)
        if isinstance(b, torch.Tensor) and b.numel():
            if bias in ("zeros", "keep"):  # the module's own bias law is this scheme's prescription
                entries.append(InitEntry(prefix + "bias", tuple(b.shape), fan_in,
                                         float(b.detach().double().pow(2).mean().sqrt()), self.id))
            else:
                entries.append(init_bias_(module, None, bias, generator=generator, prefix=prefix, scheme=self.id,
                                          fan_in=fan_in))
        return entries


def _reset_(module, generator) -> None:
    """``module.reset_parameters()`` with the global RNG forked and seeded from ``generator``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if generator is not None else None
    devices = [] if module.weight.device.type == "cpu" else [module.weight.device]
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        module.reset_parameters()


def _linear_default_(module, fan_in: int, generator) -> None:
    """``nn.Linear.reset_parameters``' law for Hugging Face ``Conv1D``, which has none of its own: weight and bias
    U(±1/√fan_in) (``kaiming_uniform_(a=√5)``: bound √(6/((1 + 5)·fan_in)) = 1/√fan_in), i.e. std 1/√(3·fan_in)."""
    for p in (module.weight, getattr(module, "bias", None)):
        if isinstance(p, torch.Tensor) and p.numel():
            fill_with_std_(p, 1.0 / math.sqrt(3.0 * fan_in), "uniform", generator=generator)


def parse_scheme(text) -> Scheme:
    """A :class:`Scheme` from its text form (a Scheme is returned unchanged).

    Example:
        >>> parse_scheme("critical(activation=tanh, q_star=1/64)").id
        'critical(activation=tanh, q_star=0.015625)'
    """
    if isinstance(text, Scheme):
        return text
    import deepstart.init.paper_schemes  # noqa: F401  (registers random-walk, fractional-moment, critical, residual)

    name, args, kwargs = parse_call(text)
    alias = name
    name, fixed = _FIXING_ALIASES.get(name, (_ALIASES.get(name, name), {}))
    if name not in SCHEMES:
        raise ValueError(f"unknown init scheme {name!r} in {text!r}; valid names: {', '.join(sorted(SCHEMES))} "
                         f"(aliases: {', '.join(sorted({*_ALIASES, *_FIXING_ALIASES}))})")
    cls = SCHEMES[name]
    names = [f.name for f in dataclasses.fields(cls)]
    if len(args) > len(names):
        raise ValueError(f"{name} takes at most {len(names)} positional arguments ({', '.join(names)}), got {text!r}")
    unknown = set(kwargs) - set(names)
    if unknown:
        raise ValueError(f"unknown argument(s) {sorted(unknown)} for {name}; valid: {', '.join(names) or 'none'}")
    given = set(names[:len(args)]) | set(kwargs)
    for key, value in fixed.items():
        if key in given:
            raise ValueError(f"{alias} fixes {key}={value}; write {name}({key}=...) to choose it, got {text!r}")
    kwargs.update(fixed)
    try:
        return cls(*args, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for {name} in {text!r}: {err}; valid arguments: {', '.join(names)}") from None
