"""Per-site statistics of one forward's tapped tensors, batched: tensors of one shape are stacked and reduced
together, results stay on the tensors' device, and all inits reach the host in one transfer at the end.

The statistics are those of :mod:`deepstart.diagnose.stream`, reduced in float32 (float64 for float64 tensors;
half precisions are widened first) with pairwise sums, ≈ 1e-7 relative, far below the Monte Carlo error of any
statistic across inits, and returned as float64:

* ``sq``: ``‖x_b‖²/n`` per input b (``grad``: ``‖x_b‖²``, a sum); a tensor whose leading size is a multiple of the
  batch (``[B, …]`` or a folded ``[B·T, …]``) is split by rows, any other gives its mean (sum / B) to every input;
* ``dead``: the fraction of units along the feature axis that are exactly 0 for every input and position
  (< 2-D tensors: the fraction of exact zeros);
* ``cos``: the mean cosine similarity of distinct tokens of one input, averaged over inputs (``[B, T, C]``);
* ``entropy``: the mean entropy of attention rows over log(keys each row sees); rows seeing one key are left out.

Stacking one shape at a time replaces hundreds of small per-site reductions (each a Python call and, when read
with ``float()``, a host synchronization) by a few large ones.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["Pending", "to_host"]

_CHUNK = 1 << 22  # elements stacked at once (32 MB in float64): bounds the extra memory of a stack


def _stacks(items: list):
    """``(shape, keys, stacked tensor)`` per group of ``(key, tensor)`` items of one shape, dtype and device, in
    float32 (float64 tensors stay float64)."""
    groups = {}
    for key, t in items:
        groups.setdefault((tuple(t.shape), t.dtype, t.device), []).append((key, t))
    for (shape, _, _), group in groups.items():
        step = max(1, _CHUNK // max(1, math.prod(shape)))
        for i in range(0, len(group), step):
            part = group[i:i + step]
            x = part[0][1].unsqueeze(0) if len(part) == 1 else torch.stack([t for _, t in part])
            yield shape, [k for k, _ in part], x if x.dtype in (torch.float32, torch.float64) else x.float()


def _per_sample_sq(x: torch.Tensor, shape: tuple, batch: int, mean: bool) -> torch.Tensor:
    k = x.shape[0]
    sq = x.pow(2)
    if len(shape) >= 1 and shape[0] > 0 and shape[0] % batch == 0:
        sq = sq.reshape(k, batch, -1)
        return sq.mean(2) if mean else sq.sum(2)
    sq = sq.reshape(k, -1)
    v = sq.mean(1) if mean else sq.sum(1) / batch
    return v[:, None].expand(k, batch)


def _dead(x: torch.Tensor, shape: tuple, axis) -> torch.Tensor:
    k = x.shape[0]
    if len(shape) < 2:
        return x.eq(0).double().reshape(k, -1).mean(1)
    axis = 1 if axis is None else axis % len(shape)
    others = tuple(d + 1 for d in range(len(shape)) if d != axis)
    return x.abs().amax(dim=others).eq(0).double().mean(1)  # max |x| = 0: 0 for every input (NaN: alive)


def _token_cos(x: torch.Tensor) -> torch.Tensor:
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    g = x @ x.transpose(-1, -2)
    n = g.shape[-1]
    return ((g.sum((-2, -1)) - g.diagonal(dim1=-2, dim2=-1).sum(-1)) / (n * (n - 1))).mean(1)


def _entropy(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    support = (x > 0).sum(-1)
    keep = support > 1
    h = -(x * torch.where(x > 0, x.log(), torch.zeros_like(x))).sum(-1)
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
