"""Tensor initializers from the papers: random walk, fractional moment, critical (mean field).

The scalar formulas live in :mod:`deepstart.theory` (NumPy only); these are thin torch adapters that follow the
``torch.nn.init`` contract (in place, ``generator=``, dtype/device kept, ``layout=``/``groups=`` for fans).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from deepstart.init.fans import compute_fans
from deepstart.init.orthogonal import delta_orthogonal_, orthogonal_
from deepstart.init.tensor import check_choice, fill_with_std_, is_empty

__all__ = ["CRITICAL_WEIGHTS", "random_walk_", "fractional_moment_", "critical_", "critical_parameters",
           "output_units"]

CRITICAL_WEIGHTS = ("orthogonal", "gaussian")


def output_units(tensor, layout: str = "auto", groups: int = 1) -> int:
    """Units a layer writes at one position: ``shape[0]`` (linear/conv), ``shape[1]·groups`` (conv_transpose),
    ``shape[1]`` (linear_transposed ``[in, out]``, embedding ``[num_embeddings, dim]``)."""
    if layout in ("conv_transpose", "linear_transposed", "embedding"):
        return tensor.shape[1] * groups
    return tensor.shape[0]


def random_walk_(tensor: torch.Tensor, activation: str, *, exact: bool = True,
                 generator: torch.Generator | None = None, layout: str = "auto", groups: int = 1) -> torch.Tensor:
    """Sussillo & Abbott 2014, eq. 8: N(0, g²/N) with N = fan_in and g the gain that makes ln|δ| an unbiased
    random walk (:func:`deepstart.theory.random_walk_gain`; ``exact=False`` uses the paper's eq. 9/11).

    With N = fan_in the backward map δ ↦ Wᵀδ sums N terms, so |δ| is preserved in the mean of its log for any
    layer shape. ``activation``: linear, relu or tanh.

    Example:
        >>> w = random_walk_(torch.empty(100, 100), "relu", generator=torch.Generator().manual_seed(0))
        >>> round(float(w.std()) * 10, 1)  # std g/√N with g = 1.4323, N = 100
        1.4
    """
    from deepstart.theory.random_walk import random_walk_gain

    if is_empty(tensor, "random_walk_"):
        return tensor
    fan_in, _ = compute_fans(tensor, layout, groups=groups)
    gain = random_walk_gain(activation, fan_in, exact=exact)
    return fill_with_std_(tensor, gain / math.sqrt(fan_in), "normal", generator=generator)


def fractional_moment_std(tensor, s, activation, *, negative_slope=0.01, exact=True, layout="auto", groups=1,
                          slope_range=None) -> float:
    """The weight std :func:`fractional_moment_` draws with (see there)."""
    from deepstart.theory.fractional import RRELU_RANGE, fractional_moment_var

    fan_in, _ = compute_fans(tensor, layout, groups=groups)
    n_out = output_units(tensor, layout, groups)
    var = fractional_moment_var(s, activation, n_out, negative_slope=negative_slope, exact=exact,
                                slope_range=RRELU_RANGE if slope_range is None else slope_range)
    return math.sqrt(var * n_out / fan_in)


def fractional_moment_(tensor: torch.Tensor, s: float, activation: str, *, negative_slope: float = 0.01,
                       exact: bool = True, generator: torch.Generator | None = None, layout: str = "auto",
                       groups: int = 1, slope_range=None) -> torch.Tensor:
    """Gurbuzbalaban & Hu 2021, Thm. 3 / eq. (3.5): Gaussian weights with E||x^k||^s = E||x^{k−1}||^s.

    Variance n_out·σ_s²(n_out)/fan_in with σ_s² from :func:`deepstart.theory.fractional_moment_var` (n_out the
    output units per position). For square layers this is the paper's σ_s² exactly; for any shape it preserves the
    s/2-th moment of the normalized length M = ||x||²/n and equals He (ReLU) / LeCun (linear) at s = 2.

    Args:
        s: moment in (0, 2]; the paper uses 0.8 for ReLU and 1 for leaky ReLU and linear nets.
        activation: relu, leaky_relu, rrelu (``slope_range``, default PyTorch's (1/8, 1/3)) or linear.
        exact: exact law or the paper's approximation 2/n + 5(2−s)/(2n²) (ReLU), 1/n + (2−s)/(2n²) (linear).
    """
    if is_empty(tensor, "fractional_moment_"):
        return tensor
    std = fractional_moment_std(tensor, s, activation, negative_slope=negative_slope, exact=exact, layout=layout,
                                groups=groups, slope_range=slope_range)
    return fill_with_std_(tensor, std, "normal", generator=generator)


@lru_cache(maxsize=128)
def _critical_point(activation: str, q_star, sigma_b):
    from deepstart.theory import critical_point

    return critical_point(activation, q_star=q_star, sigma_b=sigma_b)


def critical_parameters(activation: str, q_star=None, sigma_b=None) -> tuple[float, float]:
    """(σ_w, σ_b) on the critical line χ₁ = 1 (Schoenholz et al. 2017; THEORY.md §1), cached."""
    cp = _critical_point(str(activation), None if q_star is None else float(q_star),
                         None if sigma_b is None else float(sigma_b))
    return float(cp.sigma_w), float(cp.sigma_b)


def orthogonal_gain(tensor, sigma_w: float, layout: str = "auto", groups: int = 1) -> float:
    """Gain g such that an orthogonal (2-D) or delta-orthogonal (conv) matrix × g has the per-entry variance of
    Gaussian weights of variance σ_w²/fan_in: a Haar ``rows × cols`` matrix × g has entries of variance
    g²/max(rows, cols), so g = σ_w·√(max(rows, cols)/fan_in), with the centre tap's ``c_out/g × c_in/g`` block for
    convs. For ``[out, in]`` matrices and conv taps this is σ_w·√max(out/in, 1), which gives pre-activations of
    variance σ_w²·mean(x²); an embedding (fan_in 1) gets σ_w·√max(num_embeddings, dim), rows of mean square σ_w²."""
    if tensor.dim() == 2:
        rows, cols = tensor.shape
        fan_in = compute_fans(tensor, layout, groups=groups)[0]
    elif layout == "conv_transpose":  # [c_in, c_out/g, *k]
        rows, cols = tensor.shape[1], tensor.shape[0] // groups
        fan_in = cols
    else:  # [c_out, c_in/g, *k]
        rows, cols = tensor.shape[0] // groups, tensor.shape[1]
        fan_in = cols
    return sigma_w * math.sqrt(max(rows, cols) / fan_in)


def critical_(tensor: torch.Tensor, activation: str, *, q_star: float | None = None, sigma_b: float | None = None,
              weights: str = "orthogonal", generator: torch.Generator | None = None, layout: str = "auto",
              groups: int = 1) -> torch.Tensor:
    """Weights on the edge of chaos (χ₁ = 1) for ``activation`` at fixed point ``q_star`` (or bias std ``sigma_b``).

    σ_w comes from :func:`deepstart.theory.critical_point` (Poole et al. 2016; Schoenholz et al. 2017, eq. 5);
    ``weights="gaussian"`` draws N(0, σ_w²/fan_in) (for ReLU: He); ``"orthogonal"`` uses a Haar matrix (2-D) or
    the delta-orthogonal kernel (conv, Xiao et al. 2018) scaled by :func:`orthogonal_gain` — the combination that
    reaches dynamical isometry for tanh at small q* (Pennington et al. 2017). The bias std σ_b is the scheme's
    business (:class:`deepstart.init.Critical` and :func:`apply_` draw biases N(0, σ_b²)).

    Example:
        >>> w = critical_(torch.empty(64, 64), "tanh", q_star=1/64, generator=torch.Generator().manual_seed(0))
        >>> round(float(torch.linalg.svdvals(w)[0]) ** 2, 4)  # σ_w² on the critical line at q* = 1/64
        1.0306
    """
    check_choice("weights", weights, CRITICAL_WEIGHTS)
    if is_empty(tensor, "critical_"):
        return tensor
    fan_in, _ = compute_fans(tensor, layout, groups=groups)
    sigma_w, _ = critical_parameters(activation, q_star, sigma_b)
    if weights == "gaussian":
        return fill_with_std_(tensor, math.sqrt(sigma_w**2 / fan_in), "normal", generator=generator)
    gain = orthogonal_gain(tensor, sigma_w, layout, groups)
    if tensor.dim() == 2:
        return orthogonal_(tensor, gain, generator=generator)
    try:
        return delta_orthogonal_(tensor, gain, generator=generator, layout=layout, groups=groups)
    except ValueError as err:
        raise ValueError(f"{err}; or pass weights='gaussian' to critical_") from None
