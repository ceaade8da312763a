"""Which law were the weights drawn from? The scale the theory predicts with, and the law re-inits are drawn from.

Mean-field and Hanin–Rolnick predictions are statements about the *law* of the weights, σ_w² = fan_in·Var W, not
about one draw: the empirical variance of a 64 × 64 Gaussian matrix is off by √(2/4096) ≈ 2 % per layer, which
over 30 layers moves the predicted E[M_d] by a few percent. So the variance of every weight matrix is compared
with the standard variance-scaling laws Var W = s/fan (s ∈ {1, 2, 1/3}, fan ∈ {fan_in, fan_out, fan_avg}: LeCun,
He, Glorot, PyTorch's default, …; Glorot & Bengio 2010, He et al. 2015):

* a matrix *matches* a law when its mean is within z_k standard errors of 0 and its variance within z_k
  standard errors of s/fan, with SE = v·√(κ/numel) (κ = 2 normal, 0.8 uniform: the variance of W²/v) and
  z_k = max(``Z_MAX``, Φ⁻¹(1 − ``ALPHA``/(2k))) for k matrices tested (family-wise error ``ALPHA``: one 3.3σ
  layer among 30 is expected, not a sign of another law);
* all matrices matched to the same law must also agree *together*: the pooled z = Σ z_i/√k stays within
  ``Z_MAX`` (so a scale a few percent off a standard one — random-walk or critical tanh inits — is not rounded
  to it: each layer alone may look close, the whole net cannot).

Matched matrices get the nominal variance; all others keep their measured variance (``source="measured"``).
Orthogonal families are exact (σ² = scale², no sampling error). This is inference with a documented test, not a
guess: the report lists the law each site was read as.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

__all__ = ["Law", "Z_MAX", "infer_laws", "weight_name"]

Z_MAX = 3.0
ALPHA = 0.01
_SCALES = ((1.0, "1"), (2.0, "2"), (1.0 / 3.0, "1/3"))
_MODES = ("fan_in", "fan_out", "fan_avg")
_NAMES = {(1.0, "fan_in"): "lecun", (2.0, "fan_in"): "he", (1.0, "fan_avg"): "glorot",
          (1.0 / 3.0, "fan_in"): "pytorch-default"}
_KAPPA = {"normal": 2.0, "uniform": 0.8}


@dataclass(frozen=True)
class Law:
    """The law one weight tensor is read as: ``var`` per entry about ``mean``; ``label`` names it."""

    family: str
    mean: float
    var: float
    label: str
    source: str          # "nominal" (matched a standard law) or "measured"
    fan_in: float | None = None

    @property
    def sigma_w(self) -> float | None:
        """√(fan_in · E W²), the σ_w of mean-field theory."""
        if self.fan_in is None:
            return None
        return math.sqrt(self.fan_in * (self.var + self.mean ** 2))


def _fans(model, name, p):  # p: the model's parameter (its shape and owner)
    from deepstart.init import compute_fans
    from deepstart.init.fans import layout_of

    owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    layout = layout_of(owner)
    if layout == "auto":
        layout = "conv" if p.ndim > 2 else "linear"
    groups = getattr(owner, "groups", 1) if p is getattr(owner, "weight", None) else 1
    try:
        return compute_fans(tuple(p.shape), layout=layout, groups=groups)
    except (ValueError, TypeError):
        return None


def _candidate(v, se, fan_in, fan_out, z_max):
    best = None
    for s, s_text in _SCALES:
        for mode in _MODES:
            fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
            c = s / fan
            z = (v - c) / (se * c / v) if v > 0 else math.inf  # SE at the candidate's variance
            if abs(z) <= z_max and (best is None or abs(z) < abs(best[1])):
                label = _NAMES.get((s, mode), f"variance-scaling(scale={s_text}, mode={mode})")
                best = (label, z, c)
    return best


def infer_laws(model, stacked: dict, families: dict) -> dict:
    """Parameter name -> :class:`Law` for every weight with ≥ 2 dims. ``stacked`` holds the measured inits
    (name -> array or tensor with a leading init axis, pooled) and ``families`` name -> family (:func:`infer_family`)."""
    laws, matched = {}, {}
    k = sum(1 for name, p in model.named_parameters() if p.ndim >= 2 and name in stacked)
    z_k = max(Z_MAX, NormalDist().inv_cdf(1 - ALPHA / (2 * max(k, 1))))
    for name, p in model.named_parameters():
        if p.ndim < 2 or name not in stacked:
            continue
        x = stacked[name]
        w = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
        fans = _fans(model, name, p)
        fan_in, fan_out = (None, None) if fans is None else (float(fans[0]), float(fans[1]))
        family = families.get(name, "normal")
        n = w.size
        finite = bool(np.isfinite(w).all())
        mean = float(w.mean()) if finite else math.nan
        v = float(np.mean(w * w)) if finite else math.nan
        var = v - mean ** 2 if finite else math.nan
        laws[name] = Law(family, mean, var, "measured", "measured", fan_in)
        if family not in _KAPPA or fan_in is None or not (var > 0) or not math.isfinite(var):
            if family in ("orthogonal", "delta_orthogonal"):
                laws[name] = Law(family, mean, var, family, "nominal", fan_in)
            continue
        se = v * math.sqrt(_KAPPA[family] / n)
        if abs(mean) > z_k * math.sqrt(v / n):
            continue
        cand = _candidate(v, se, fan_in, fan_out, z_k)
        if cand is not None:
            matched.setdefault(cand[0], []).append((name, cand[1], cand[2]))
    for label, items in matched.items():
        pooled = sum(z for _, z, _ in items) / math.sqrt(len(items))
        if abs(pooled) > Z_MAX:
            continue
        for name, _, c in items:
            law = laws[name]
            laws[name] = Law(law.family, 0.0, c, label, "nominal", law.fan_in)
    return laws


def weight_name(module_name: str, module) -> str | None:
    """Name (in the model) of a module's main weight: ``weight`` if a ≥ 2-D tensor, else its largest matrix."""
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.ndim >= 2:
        local = "weight"
    else:
        params = [(k, q) for k, q in module.named_parameters(recurse=False) if q.ndim >= 2]
        if not params:
            return None
        local = max(params, key=lambda kq: kq[1].numel())[0]
    return f"{module_name}.{local}" if module_name else local
