"""Variance-scaling tensor initializers: one core, He / LeCun / Glorot as one-line specializations.

All follow ``torch.nn.init``'s contract: trailing ``_``, in place under ``torch.no_grad()``, return the tensor, keep
dtype and device, keyword ``generator=``, warn and do nothing on empty tensors, ``ValueError`` with advice where fans
are undefined (< 2-D). Fans come from :func:`deepstart.init.fans.compute_fans` (``layout=``, ``groups=``).

References: LeCun et al. 1998 (Efficient BackProp, var 1/fan_in); Glorot & Bengio 2010, eq. 12 (var 2/(fan_in +
fan_out)); He et al. 2015, eq. 10 (var 2/fan_in); JAX ``variance_scaling`` for the general form.
"""
from __future__ import annotations

import math
import warnings

import torch

from deepstart.init.fans import compute_fans

__all__ = ["MODES", "DISTRIBUTIONS", "TRUNCATED_NORMAL_STD", "variance_scaling_", "fill_with_std_", "he_normal_",
           "he_uniform_", "lecun_normal_", "lecun_uniform_", "glorot_normal_", "glorot_uniform_"]

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform", "rademacher")
# Std of a standard normal truncated to [-2, 2]: sqrt(1 - 4φ(2)/(2Φ(2)-1)) = 0.87962566103423978
# (the constant JAX's variance_scaling uses; recomputed with scipy.stats.truncnorm(-2, 2).std()).
TRUNCATED_NORMAL_STD = 0.87962566103423978


def is_empty(tensor: torch.Tensor, name: str) -> bool:
    """Warn (as ``torch.nn.init`` does) and return True for a tensor with zero elements."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(tensor).__name__}")
    if tensor.numel() == 0:
        warnings.warn(f"{name}: initializing a zero-element tensor is a no-op", UserWarning, stacklevel=3)
        return True
    return False


def check_choice(name: str, value, choices) -> None:
    """Raise ValueError naming ``value`` and the valid ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(map(str, choices))}")


def fill_with_std_(tensor: torch.Tensor, std: float, distribution: str = "normal", *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` with i.i.d. zero-mean draws of standard deviation ``std`` from ``distribution``.

    ``normal``: N(0, std²); ``truncated_normal``: N(0, (std/0.8796)²) cut at ±2 of its own std (variance
    corrected, so the result has std ``std``); ``uniform``: U(−√3·std, √3·std); ``rademacher``: ±std. The four
    laws share the variance but not the fourth moment (3, ≈2.53, 1.8, 1 in units of std⁴), which sets the
    constants of Hanin & Rolnick's FM2 bounds.
    """
    check_choice("distribution", distribution, DISTRIBUTIONS)
    if not (std >= 0 and math.isfinite(std)):
        raise ValueError(f"std={std!r} must be a finite number >= 0")
    with torch.no_grad():
        if distribution == "normal":
            return tensor.normal_(0.0, std, generator=generator)
        if distribution == "uniform":
            bound = math.sqrt(3.0) * std
            return tensor.uniform_(-bound, bound, generator=generator)
        if distribution == "rademacher":
            tensor.bernoulli_(0.5, generator=generator)
            return tensor.mul_(2.0).sub_(1.0).mul_(std)
        sigma = std / TRUNCATED_NORMAL_STD
        return torch.nn.init.trunc_normal_(tensor, 0.0, sigma, -2.0 * sigma, 2.0 * sigma, generator=generator)


def variance_scaling_(tensor: torch.Tensor, scale: float = 1.0, mode: str = "fan_in", distribution: str = "normal",
                      *, gain: float | None = None, generator: torch.Generator | None = None, layout: str = "auto",
                      groups: int = 1) -> torch.Tensor:
    """Fill ``tensor`` with weights of variance ``gain² · scale / fan`` (JAX's ``variance_scaling``; the one core of
    He, LeCun, Glorot and ``torch.nn.init``'s Kaiming and Xavier).

    ``fan`` is fan_in, fan_out or (fan_in + fan_out)/2 for ``mode`` = ``"fan_in"``, ``"fan_out"``, ``"fan_avg"``.
    Weight layout: ``nn.Linear`` is ``[out, in]``, ``nn.Conv2d`` ``[out, in/groups, k, k]``; pass
    ``layout="conv_transpose"`` for ``nn.ConvTransposeNd`` (``[in, out/groups, *k]``).

    ``gain`` is ``torch.nn.init``'s multiplier of the std (:func:`calculate_gain`). ``None`` (deepstart's schemes)
    computes the std as √(scale/fan); a number rounds it as ``torch.nn.init`` does, gain/√(fan/scale) (Kaiming:
    gain/√fan) or, for ``fan_avg``, gain·√(scale/fan) (Xavier: gain·√(2/(fan_in + fan_out))), so that
    :func:`kaiming_normal_` and friends give torch's tensors bit for bit (one ulp of the std changes float64 draws).

    Example:
        >>> w = variance_scaling_(torch.empty(256, 128), 2.0, generator=torch.Generator().manual_seed(0))
        >>> round(float(w.std()) * 128 ** 0.5, 1)  # He: std sqrt(2/fan_in)
        1.4
    """
    if is_empty(tensor, "variance_scaling_"):
        return tensor
    check_choice("mode", mode, MODES)
    if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale >= 0 and math.isfinite(scale)):
        raise ValueError(f"scale={scale!r} must be a finite number >= 0 (the weight variance times the fan)")
    if gain is not None and not (isinstance(gain, (int, float)) and not isinstance(gain, bool) and gain >= 0
                                 and math.isfinite(gain)):
        raise ValueError(f"gain={gain!r} must be a finite number >= 0 (the std multiplier, "
                         "e.g. calculate_gain('relu'))")
    fan_in, fan_out = compute_fans(tensor, layout, groups=groups)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    if gain is None:
        std = math.sqrt(scale / fan)
    else:  # torch.nn.init's rounding (see the docstring)
        std = gain * math.sqrt(scale / fan) if mode == "fan_avg" or not scale else gain / math.sqrt(fan / scale)
    return fill_with_std_(tensor, std, distribution, generator=generator)


def he_normal_(tensor, *, generator=None, layout="auto", groups=1):
    """He et al. 2015, eq. 10: N(0, 2/fan_in), the ReLU critical point (THEORY.md §1)."""
    return variance_scaling_(tensor, 2.0, "fan_in", "normal", generator=generator, layout=layout, groups=groups)


def he_uniform_(tensor, *, generator=None, layout="auto", groups=1):
    """He et al. 2015: uniform with variance 2/fan_in."""
    return variance_scaling_(tensor, 2.0, "fan_in", "uniform", generator=generator, layout=layout, groups=groups)


def lecun_normal_(tensor, *, generator=None, layout="auto", groups=1):
    """LeCun et al. 1998: N(0, 1/fan_in)."""
    return variance_scaling_(tensor, 1.0, "fan_in", "normal", generator=generator, layout=layout, groups=groups)


def lecun_uniform_(tensor, *, generator=None, layout="auto", groups=1):
    """LeCun et al. 1998: uniform with variance 1/fan_in."""
    return variance_scaling_(tensor, 1.0, "fan_in", "uniform", generator=generator, layout=layout, groups=groups)


def glorot_normal_(tensor, *, generator=None, layout="auto", groups=1):
    """Glorot & Bengio 2010, eq. 12: N(0, 2/(fan_in + fan_out))."""
    return variance_scaling_(tensor, 1.0, "fan_avg", "normal", generator=generator, layout=layout, groups=groups)


def glorot_uniform_(tensor, *, generator=None, layout="auto", groups=1):
    """Glorot & Bengio 2010, eq. 16: U(±√(6/(fan_in + fan_out)))."""
    return variance_scaling_(tensor, 1.0, "fan_avg", "uniform", generator=generator, layout=layout, groups=groups)
