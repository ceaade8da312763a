"""Model factories for the architectures of the papers deepstart reproduces.

- :func:`mlp`: fully connected nets with any width profile and activation (Hanin & Rolnick 2018, §5 and Fig. 2:
  ``width = depth`` ReLU nets on vectorized MNIST; Sussillo & Abbott 2014; Gurbuzbalaban & Hu 2021).
- :func:`cnn`: plain convolutional nets, 3×3 "same" convolutions, global average pooling and a linear read-out
  (the architecture of delta-orthogonal initialization, Xiao et al. 2018, here at small scale).
- :func:`resnet`: residual nets ``x_l = x_{l-1} + η_l N_l(x_{l-1})`` (Hanin & Rolnick 2018, §4, residual networks).

Residual convention (THEORY.md §4): ``η_l`` multiplies the branch *output*
(:class:`deepstart.nn.ScaledResidual`, ``forward(x) = x + η·branch(x)``). Each branch ``N_l`` is a two-layer block
``Linear → φ → Linear`` (``Conv → φ → Conv`` for ``kind="conv"``) whose last layer is a symmetric linear map, so a
length-preserving init of ``N_l`` gives ``E[M_L] = M_0 ∏_l (1 + η_l²)``; FM1 is avoided when ``Σ η_l² < ∞``.
Note: one scheme for every layer, ``init="he"``, does *not* make the ReLU branch length-preserving (its last layer
has no ReLU after it and doubles the length): then ``E[M_L] = M_0 ∏_l (1 + 2η_l²)`` (measured: 245 vs 3⁵ = 243 for
5 blocks at η = 1); the FM1 condition ``Σ η_l² < ∞`` is the same.

Every factory builds its layers *without* drawing from the global RNG (``torch.nn.utils.skip_init``) and then
initializes all parameters with :func:`deepstart.init.apply_` using ``init`` (a scheme name such as ``"he"`` or
``"orthogonal(gain=1.0)"``, or a ``Scheme`` object) and the explicit ``generator``. The same generator seed therefore
always gives the same network, whatever the global RNG state.

Example::

    >>> import torch
    >>> from deepstart.experiments.models import mlp
    >>> net = mlp(784, 10, depth=20, width=64, init="he", generator=torch.Generator().manual_seed(0))
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["mlp", "cnn", "resnet", "make_activation", "eta_schedule", "ACTIVATION_MODULES"]


class Erf(nn.Module):
    """φ(x) = erf(x), the activation of many mean-field results (Pennington et al. 2017, Table 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)


# name -> (constructor taking keyword params, allowed parameter names)
ACTIVATION_MODULES: dict[str, tuple] = {
    "relu": (lambda: nn.ReLU(), ()),
    "leaky_relu": (lambda negative_slope=0.01: nn.LeakyReLU(negative_slope), ("negative_slope",)),
    "linear": (lambda: nn.Identity(), ()),
    "tanh": (lambda: nn.Tanh(), ()),
    "hard_tanh": (lambda: nn.Hardtanh(), ()),
    "erf": (lambda: Erf(), ()),
    "sigmoid": (lambda: nn.Sigmoid(), ()),
    "gelu": (lambda: nn.GELU(), ()),
    "silu": (lambda: nn.SiLU(), ()),
    "elu": (lambda alpha=1.0: nn.ELU(alpha), ("alpha",)),
    "selu": (lambda: nn.SELU(), ()),
    "softplus": (lambda beta=1.0: nn.Softplus(beta), ("beta",)),
}
_ALIASES = {"identity": "linear", "hardtanh": "hard_tanh", "leaky-relu": "leaky_relu", "hard-tanh": "hard_tanh",
            "swish": "silu", "leakyrelu": "leaky_relu"}
_CALL = re.compile(r"^\s*([A-Za-z_\-]+)\s*(?:\((.*)\))?\s*$")


def make_activation(spec) -> nn.Module:
    """Return a fresh activation module for ``spec``.

    ``spec`` is a name from :data:`ACTIVATION_MODULES` (the names of ``deepstart.theory.ACTIVATION_NAMES``), optionally
    with parameters, e.g. ``"leaky_relu(negative_slope=0.2)"`` or ``"leaky_relu(0.2)"``; an ``nn.Module`` class or
    zero-argument factory; or an ``nn.Module`` instance (used as is: activations hold no parameters to share).
    """
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, type) and issubclass(spec, nn.Module) or (callable(spec) and not isinstance(spec, str)):
        module = spec()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation factory {spec!r} returned {type(module).__name__}, expected an nn.Module")
        return module
    if not isinstance(spec, str):
        raise TypeError(f"activation must be a name, an nn.Module or a factory, got {type(spec).__name__}")
    match = _CALL.match(spec)
    name = match.group(1).lower() if match else spec
    name = _ALIASES.get(name, name)
    if not match or name not in ACTIVATION_MODULES:
        raise ValueError(f"unknown activation {spec!r}; valid names: {', '.join(ACTIVATION_MODULES)}")
    factory, allowed = ACTIVATION_MODULES[name]
    kwargs = _parse_params(spec, match.group(2) or "", allowed)
    return factory(**kwargs)


def _parse_params(spec: str, text: str, allowed: Sequence[str]) -> dict:
    kwargs: dict = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    for i, part in enumerate(parts):
        key, _, value = part.rpartition("=")
        key = key.strip() or (allowed[i] if i < len(allowed) else "")
        if key not in allowed:
            raise ValueError(f"activation {spec!r}: unknown parameter {key or part!r}; valid: {list(allowed) or 'none'}")
        try:
            kwargs[key] = float(value)
        except ValueError:
            raise ValueError(f"activation {spec!r}: parameter {key} must be a number, got {value!r}") from None
    return kwargs


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _linear(n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    # skip_init: allocate without running reset_parameters, so the global RNG is never read.
    return torch.nn.utils.skip_init(nn.Linear, n_in, n_out, bias=bias)


def _conv(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return torch.nn.utils.skip_init(nn.Conv2d, c_in, c_out, 3, padding=1, bias=bias)


def _initialize(model: nn.Module, init, generator: torch.Generator | None) -> nn.Module:
    """Initialize every parameter of ``model`` with ``deepstart.init.apply_`` (the init engineer's contract)."""
    from deepstart.init import apply_  # imported here: deepstart.init is a separate part

    apply_(model, init, generator=generator)
    return model


def mlp(in_features: int, out_features: int, *, depth: int, width: int | None = None,
        widths: Sequence[int] | None = None, activation="relu", init="he", bias: bool = True,
        generator: torch.Generator | None = None) -> nn.Sequential:
    """Fully connected net ``Linear, φ, Linear, φ, …, Linear`` with ``depth`` hidden layers.

    Give either ``width`` (constant profile) or ``widths`` (one width per hidden layer, ``len(widths) == depth``),
    as in Hanin & Rolnick 2018, whose FM2 quantity is ``β = Σ_j 1/n_j`` over the hidden widths (Theorem 5).
    ``depth=0`` is a linear model.
    """
    _check_int("in_features", in_features, 1)
    _check_int("out_features", out_features, 1)
    _check_int("depth", depth, 0)
    if (width is None) == (widths is None) and depth > 0:
        raise ValueError("mlp: give exactly one of width= (constant) or widths= (one per hidden layer)")
    if widths is None:
        widths = [] if depth == 0 else [_check_int("width", width, 1)] * depth
    widths = list(widths)
    if len(widths) != depth:
        raise ValueError(f"mlp: widths has {len(widths)} entries but depth={depth}; give one width per hidden layer")
    for w in widths:
        _check_int("widths[i]", w, 1)
    sizes = [in_features, *widths, out_features]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(_linear(sizes[i], sizes[i + 1], bias))
        if i < len(sizes) - 2:
            layers.append(make_activation(activation))
    return _initialize(nn.Sequential(*layers), init, generator)


def cnn(in_channels: int, num_classes: int, *, depth: int, channels: int, activation="relu", init="he",
        generator: torch.Generator | None = None) -> nn.Sequential:
    """Plain CNN: ``depth`` 3×3 same-padding convolutions with ``channels`` channels, each followed by φ, then global
    average pooling and a linear read-out. Input ``[N, in_channels, H, W]``.

    With ``init="delta-orthogonal"`` this is the setting of Xiao et al. 2018 (dynamical isometry for CNNs, Alg. 2).
    """
    _check_int("in_channels", in_channels, 1)
    _check_int("num_classes", num_classes, 1)
    _check_int("depth", depth, 1)
    _check_int("channels", channels, 1)
    layers: list[nn.Module] = []
    c_in = in_channels
    for _ in range(depth):
        layers += [_conv(c_in, channels), make_activation(activation)]
        c_in = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), _linear(channels, num_classes)]
    return _initialize(nn.Sequential(*layers), init, generator)


def conv_mlp(in_shape: Sequence[int], num_classes: int, *, depth: int, width: int, channels: Sequence[int] = (16, 32),
             activation="relu", init="he", generator: torch.Generator | None = None) -> nn.Sequential:
    """Two (or ``len(channels)``) 3×3 stride-2 convolutions, each followed by φ, in front of :func:`mlp`'s stack of
    ``depth`` hidden layers of ``width`` (Gurbuzbalaban & Hu 2021, CIFAR-10 experiments: "two conv layers" before the
    fully connected net). Input ``[N, C, H, W]`` with ``in_shape = (C, H, W)``; every layer takes ``init``.

    Example::

        net = conv_mlp((3, 32, 32), 10, depth=20, width=64, init="fractional-moment(s=0.8, activation=relu)")
    """
    if len(in_shape) != 3:
        raise ValueError(f"in_shape must be (channels, height, width), got {tuple(in_shape)!r}")
    c_in, h, w = (_check_int(n, v, 1) for n, v in zip(("channels", "height", "width"), in_shape))
    layers: list[nn.Module] = []
    for c_out in channels:
        layers += [torch.nn.utils.skip_init(nn.Conv2d, c_in, _check_int("channels", c_out, 1), 3, stride=2,
                                            padding=1), make_activation(activation)]
        c_in, h, w = c_out, (h + 1) // 2, (w + 1) // 2
    head = mlp(c_in * h * w, num_classes, depth=depth, width=width if depth else None, activation=activation,
               init=init, generator=generator)
    front = _initialize(nn.Sequential(*layers, nn.Flatten()), init, generator)
    return nn.Sequential(*front, *head)


def eta_schedule(eta, depth: int) -> list[float]:
    """Branch weights ``η_1..η_L`` for :func:`resnet`: :func:`deepstart.init.residual_etas` (a number, ``"1/l"``,
    ``"1/L"``, ``"1/sqrt(L)"``, ``"geometric(r)"`` or a sequence of ``depth`` numbers) as a list, depth ≥ 1."""
    from deepstart.init.residual import residual_etas

    _check_int("depth", depth, 1)
    return list(residual_etas(list(eta) if not isinstance(eta, (str, int, float)) else eta, depth))


def resnet(in_features_or_channels: int, num_classes: int, *, depth: int, width: int, eta=1.0, kind: str = "mlp",
           activation="relu", init="he", generator: torch.Generator | None = None) -> nn.Sequential:
    """Residual net ``x_l = x_{l-1} + η_l N_l(x_{l-1})``, l = 1..depth (Hanin & Rolnick 2018, §4).

    ``kind="mlp"``: input projection ``Linear(in, width)``, ``depth`` blocks with branch ``Linear → φ → Linear``,
    read-out ``φ → Linear(width, num_classes)``. ``kind="conv"``: the same with 3×3 convolutions, then global average
    pooling. ``eta``: see :func:`eta_schedule`; it scales the branch output (``deepstart.nn.ScaledResidual``).
    """
    from deepstart.nn import ScaledResidual  # separate part (deepstart.nn)

    _check_int("in_features_or_channels", in_features_or_channels, 1)
    _check_int("num_classes", num_classes, 1)
    _check_int("width", width, 1)
    etas = eta_schedule(eta, depth)
    if kind == "mlp":
        block = lambda: nn.Sequential(_linear(width, width), make_activation(activation), _linear(width, width))  # noqa: E731
        stem: list[nn.Module] = [_linear(in_features_or_channels, width)]
        head: list[nn.Module] = [make_activation(activation), _linear(width, num_classes)]
    elif kind == "conv":
        block = lambda: nn.Sequential(_conv(width, width), make_activation(activation), _conv(width, width))  # noqa: E731
        stem = [_conv(in_features_or_channels, width)]
        head = [make_activation(activation), nn.AdaptiveAvgPool2d(1), nn.Flatten(), _linear(width, num_classes)]
    else:
        raise ValueError(f"resnet kind must be 'mlp' or 'conv', got {kind!r}")
    blocks = [ScaledResidual(block(), eta_l) for eta_l in etas]
    return _initialize(nn.Sequential(*stem, *blocks, *head), init, generator)
