"""Per-site statistics of one forward's tapped tensors, batched: small tensors of one shape are stacked and reduced
together, results stay on the tensors' device, and all inits reach the host in one transfer at the end.

The statistics are those of :mod:`deepstart.diagnose.stream`, reduced in float32 (float64 for float64 tensors;
half precisions are widened first; sums of squares go on in float64 after blocks of ~10³ elements), ≈ 1e-7
relative, far below the Monte Carlo error of any statistic across inits, and returned as float64:

* ``sq``: ``‖x_b‖²/n`` per input b (``grad``: ``‖x_b‖²``, a sum); a tensor whose leading size is a multiple of the
  batch (``[B, …]`` or a folded ``[B·T, …]``) is split by rows, any other gives its mean (sum / B) to every input;
* ``dead``: the fraction of units along the feature axis that are exactly 0 for every input and position
  (< 2-D tensors: the fraction of exact zeros);
* ``cos``: the mean cosine similarity of distinct tokens of one input, averaged over inputs (``[B, T, C]``);
* ``entropy``: the mean entropy of attention rows over log(keys each row sees); rows seeing one key are left out.

Stacking one shape at a time replaces hundreds of small per-site reductions (each a Python call and, when read
with ``float()``, a host synchronization) by a few larger ones. Memory stays that of the tapped tensors: only
tensors under ``_SMALL`` elements are stacked, at most ``_CHUNK`` elements at once; larger ones are reduced alone,
not copied (:mod:`.stream` reduces them as they are made), and no reduction makes a temporary of a tensor's size
(``‖x‖²`` by ``vector_norm`` over blocks, dead units by ``amax``/``amin``, the token cosine from ``‖Σ_t x̂_t‖²``
instead of the ``T × T`` Gram matrix). Large temporaries are what made a peak grow: freed, they raise glibc's
mmap threshold, later ones come from the heap and fragment it (+250 MB RSS on a ResNet-56, 8 inits).
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["Pending", "to_host"]

_CHUNK = 1 << 18  # elements stacked at once (1 MB in float32): bounds the extra memory of a stack
_BLOCK = 1 << 10  # elements of a tensor's float32 sum of squares before it is carried on in float64
_SMALL = 1 << 14  # tensors with fewer elements are worth stacking (a reduction's call costs more than its work)


def _stacks(items: list):
    """``(shape, keys, stacked tensor)`` per group of ``(key, tensor)`` items of one shape, dtype and device, in
    float32 (float64 tensors stay float64)."""
    groups = {}
    for key, t in items:
        groups.setdefault((tuple(t.shape), t.dtype, t.device), []).append((key, t))
    for (shape, _, _), group in groups.items():
        n = max(1, math.prod(shape))
        step = 1 if n >= _SMALL else _CHUNK // n  # 1: reduced alone, a view (no copy)
        for i in range(0, len(group), step):
            part = group[i:i + step]
            x = part[0][1].unsqueeze(0) if len(part) == 1 else torch.stack([t for _, t in part])
            yield shape, [k for k, _ in part], x if x.dtype in (torch.float32, torch.float64) else x.float()


def _block(dims: tuple) -> int:
    """Elements of the trailing ``dims`` that make up at least ``_BLOCK`` (all of them if fewer)."""
    size = 1
    for d in reversed(dims):
        if size >= _BLOCK:
            break
        size *= d
    return max(1, size)


def _sum_sq(x: torch.Tensor, rows: tuple, block: int) -> torch.Tensor:
    """``Σ x²`` over each of ``rows`` (a shape ``x`` reshapes to, then flattened), float64, with no temporary of
    ``x``'s size: ``vector_norm`` over blocks of ``block`` trailing elements (its float32 sum is not pairwise: it
    drifts ≈ n·1e-11 relative over n elements, 1e-3 at 10⁷, 1e-6 at 5·10⁴), the blocks' squares summed in float64."""
    if block == 0 or math.prod(rows) == 0:
        return x.new_zeros(rows, dtype=torch.float64)
    return torch.linalg.vector_norm(x.reshape(*rows, -1, block), dim=-1).double().square().sum(-1)


def _per_sample_sq(x: torch.Tensor, shape: tuple, batch: int, mean: bool) -> torch.Tensor:
    k, n = x.shape[0], math.prod(shape)
    if len(shape) >= 1 and shape[0] > 0 and shape[0] % batch == 0:
        v = _sum_sq(x, (k, batch), _block(shape[1:]) if n else 0)
        return v / (n // batch) if mean else v  # 0/0 = NaN: the mean of no elements
    v = _sum_sq(x, (k,), _block(shape) if n else 0)
    v = v / n if mean else v / batch
    return v[:, None].expand(k, batch)


def _dead(x: torch.Tensor, shape: tuple, axis) -> torch.Tensor:
    k = x.shape[0]
    if len(shape) < 2:
        return x.eq(0).double().reshape(k, -1).mean(1)
    axis = 1 if axis is None else axis % len(shape)
    others = tuple(d + 1 for d in range(len(shape)) if d != axis)
    # max = min = 0: 0 for every input (NaN: alive); two reductions, no |x| temporary
    return (x.amax(dim=others).eq(0) & x.amin(dim=others).eq(0)).double().mean(1)


def _token_cos(x: torch.Tensor) -> torch.Tensor:
    """Σ_{s≠t} x̂_s·x̂_t = ‖Σ_t x̂_t‖² − Σ_t ‖x̂_t‖² (a zero token's x̂ is 0), without the ``T × T`` Gram matrix."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    scale = norm.clamp_min(torch.finfo(x.dtype).tiny)
    x = x / scale
    n = x.shape[-2]
    pairs = x.sum(-2).pow(2).sum(-1) - (norm / scale).square().sum((-2, -1))  # ‖x̂_t‖² = 1, or 0 for a zero token
    return (pairs / (n * (n - 1))).mean(1)


def _entropy(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    support = (x > 0).sum(-1)
    keep = support > 1
    h = -torch.special.xlogy(x, x).sum(-1)  # 0 log 0 = 0
    ratio = torch.where(keep, h / support.double().log().clamp_min(1e-300), torch.zeros_like(h))
    return ratio.sum(1) / keep.sum(1)  # 0/0 = NaN: no row sees two keys


class Pending:
    """Statistics of one init, still on the device: ``add(kind, keys, values)`` with ``values`` ``[len(keys)]`` or
    ``[len(keys), width]``; :func:`to_host` brings every init's at once."""

    def __init__(self):
        self.layout, self.values = [], []

    def add(self, kind: str, keys: list, values: torch.Tensor) -> None:
        self.layout.append((kind, keys, tuple(values.shape)))
        self.values.append(values.reshape(-1))

    def sq(self, items: list, batch: int, *, mean: bool, kind: str) -> None:
        for shape, keys, x in _stacks(items):
            self.add(kind, keys, _per_sample_sq(x, shape, batch, mean))

    def dead(self, items: list, axes: dict) -> None:
        by_axis = {}
        for key, t in items:
            by_axis.setdefault(axes.get(key), []).append((key, t))
        for axis, group in by_axis.items():
            for shape, keys, x in _stacks(group):
                self.add("dead", keys, _dead(x, shape, axis))

    def cos(self, items: list, batch: int) -> None:
        good = [(k, t) for k, t in items if t.ndim == 3 and t.shape[0] == batch and t.shape[1] >= 2]
        for _, keys, x in _stacks(good):
            self.add("cos", keys, _token_cos(x))

    def entropy(self, items: list) -> None:
        for _, keys, x in _stacks(items):
            self.add("entropy", keys, _entropy(x))


def to_host(pending: list) -> list:
    """``[[(kind, keys, float64 ndarray), …] per init]``: one device-to-host transfer for all inits."""
    flat = [v for p in pending for v in p.values]
    host = torch.cat(flat).cpu().numpy() if flat else np.zeros(0)
    out, at = [], 0
    for p in pending:
        rows = []
        for kind, keys, shape in p.layout:
            n = math.prod(shape)
            rows.append((kind, keys, host[at:at + n].reshape(shape)))
            at += n
        out.append(rows)
    return out
