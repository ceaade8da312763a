"""Orthogonal and delta-orthogonal initializers.

* :func:`orthogonal_`: a Haar-distributed (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2014; Mezzadri 2007
  for the QR sign correction that makes the law exactly Haar), any shape ≥ 2-D (flattened to ``[shape[0], -1]``).
* :func:`delta_orthogonal_`: Xiao et al. 2018, Algorithm 2 ("delta-orthogonal"): the centre tap of a conv kernel is
  an orthogonal ``c_out × c_in`` matrix times ``gain``, every other tap is zero, so at stride 1 with "same" padding
  the conv maps each position by the same orthogonal matrix and preserves the norm (THEORY.md §6).
"""
from __future__ import annotations

import math

import torch

from deepstart.init.fans import LAYOUTS
from deepstart.init.tensor import check_choice, is_empty

__all__ = ["haar_orthogonal", "orthogonal_", "delta_orthogonal_"]


def _check_gain(gain) -> float:
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not math.isfinite(gain):
        raise ValueError(f"gain={gain!r} must be a finite float (the singular value of the matrix)")
    return float(gain)


def haar_orthogonal(rows: int, cols: int, *, generator: torch.Generator | None = None,
                    device=None) -> torch.Tensor:
    """A ``rows × cols`` float64 matrix with orthonormal columns (rows ≥ cols) or rows (rows < cols), Haar-distributed.

    QR of a Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri 2007, "How to generate random
    matrices from the classical compact groups", §5): without the correction Q is not Haar.
    """
    big, small = max(rows, cols), min(rows, cols)
    a = torch.randn(big, small, generator=generator, dtype=torch.float64, device=device)
    q, r = torch.linalg.qr(a)
    signs = torch.sign(torch.diagonal(r))
    q = q * torch.where(signs == 0, torch.ones_like(signs), signs)
    return q if rows >= cols else q.T


def orthogonal_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` (≥ 2-D, viewed as ``[shape[0], prod(shape[1:])]``) with a Haar (semi-)orthogonal matrix × gain.

    ``torch.nn.init.orthogonal_``'s signature and law. Same draws as torch for float64 tensors with rows ≥ cols;
    torch draws wide matrices in the other order and float32 ones in float32, deepstart always in float64 (the
    law is the same Haar measure).

    For ``rows ≥ cols``, WᵀW = gain²·I; otherwise WWᵀ = gain²·I (Saxe et al. 2014). The entries then have variance
    gain²/max(rows, cols). Drawn in float64 and rounded to the tensor's dtype, so float32 tensors are orthogonal to
    ~1e-7.

    Example:
        >>> w = orthogonal_(torch.empty(5, 3), 2.0, generator=torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(w.T @ w, 4 * torch.eye(3), atol=1e-5))
        True
    """
    if is_empty(tensor, "orthogonal_"):
        return tensor
    gain = _check_gain(gain)
    if tensor.dim() < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}; "
                         "1-D parameters (biases, norms) have no orthogonal structure: use zeros_ or ones_")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    q = haar_orthogonal(rows, cols, generator=generator, device=tensor.device)
    with torch.no_grad():
        tensor.copy_((q * gain).reshape(tensor.shape))
    return tensor


def delta_orthogonal_(tensor: torch.Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None,
                      layout: str = "auto", groups: int = 1) -> torch.Tensor:
    """Xiao et al. 2018, Algorithm 2: centre tap orthogonal × ``gain``, other taps zero.

    ``tensor`` is a conv kernel ``[c_out, c_in/groups, *k]`` (``layout="conv_transpose"``:
    ``[c_in, c_out/groups, *k]``); each group's ``c_out/g × c_in/g`` block of the centre tap gets its own Haar
    matrix with orthonormal columns, so ``||conv(x)|| = gain·||x||`` for odd kernels with "same" padding. A 2-D tensor
    gets :func:`orthogonal_`. The centre of an even kernel dimension k is tap k // 2.

    Raises:
        ValueError: ``c_out < c_in`` (per group): an orthogonal map into fewer channels cannot preserve norms;
            make the layer at least as wide as its input or use :func:`orthogonal_`.
    """
    if is_empty(tensor, "delta_orthogonal_"):
        return tensor
    gain = _check_gain(gain)
    check_choice("layout", layout, LAYOUTS)
    if tensor.dim() == 2:
        return orthogonal_(tensor, gain, generator=generator)
    if tensor.dim() < 2:
        raise ValueError(f"delta_orthogonal_ needs a tensor with at least 2 dimensions (a conv kernel "
                         f"[c_out, c_in, *k] or an [out, in] matrix), got shape {tuple(tensor.shape)}; 1-D parameters (biases, norms) "
                         "have no orthogonal structure: use zeros_ or ones_")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or tensor.shape[0] % groups:
        raise ValueError(f"groups={groups!r} must be a positive int dividing {tensor.shape[0]}")
    transpose = layout == "conv_transpose"
    if transpose:
        c_in_g, c_out_g = tensor.shape[0] // groups, tensor.shape[1]
    else:
        c_out_g, c_in_g = tensor.shape[0] // groups, tensor.shape[1]
    if c_out_g < c_in_g:
        raise ValueError(f"delta_orthogonal_ needs c_out >= c_in per group, got c_out={c_out_g * groups}, "
                         f"c_in={c_in_g * groups} (groups={groups}) for shape {tuple(tensor.shape)}; widen the layer "
                         "or use orthogonal_ / a variance-scaling init for it")
    centre = tuple(k // 2 for k in tensor.shape[2:])
    with torch.no_grad():
        tensor.zero_()
        for g in range(groups):
            block = (haar_orthogonal(c_out_g, c_in_g, generator=generator, device=tensor.device) * gain)
            rows = slice(g * (c_in_g if transpose else c_out_g), (g + 1) * (c_in_g if transpose else c_out_g))
            tensor[(rows, slice(None)) + centre] = (block.T if transpose else block).to(tensor.dtype)
    return tensor
