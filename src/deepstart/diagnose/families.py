"""The family of a model as a *description* (plain, pre-LN, post-LN, BatchNorm, …), and the per-model summaries of
the laws' statistics that reports show.

The family no longer switches thresholds: ``check`` judges each part by its own law (:mod:`deepstart.diagnose.laws`,
``docs/laws.md``). :data:`NORMALIZED` lists the families whose streams are renormalized, for the recommendations.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import quiet as _quiet
from deepstart.diagnose.laws._stats import worst as _worst

__all__ = ["NORMALIZED", "activation_gain", "layer_gain", "branch_gain", "family_summary"]

NORMALIZED = ("plain-bn", "residual-bn", "pre-ln", "post-ln", "sandwich", "deepnorm")


@_quiet
def activation_gain(report) -> np.ndarray:
    """Per site: E φ(h)²/E h² of the elementwise ops after a layer (M after over M before; NaN: no activation)."""
    if report.pre_sq is None or report.sq.shape[-1] == 0:
        return np.full(len(report.sites), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(np.nanmean(report.sq, axis=1) / np.nanmean(report.pre_sq, axis=1), axis=0) \
            if np.isfinite(report.pre_sq).any() else np.full(len(report.sites), np.nan)


def layer_gain(report) -> dict:
    """site name -> (log gain, SE) of every weight layer (:func:`deepstart.diagnose.laws.segment.layer_gain`)."""
    from deepstart.diagnose.laws.segment import layer_gain as gains

    return gains(report)


def branch_gain(report) -> dict:
    """block name -> (log g_l, SE) (:func:`deepstart.diagnose.laws.addition.gains`): M of the branch output η·f(x)
    over M of what the branch reads (its norm, else the stream); blocks with η = 0 (ReZero) add nothing."""
    from deepstart.diagnose.laws.addition import gains

    return gains(report)


@_quiet
def family_summary(report) -> dict:
    """Worst branch gain, extreme layer gains (log, nats) and the last block's token cosine similarity."""
    out = {}
    worst = _worst(branch_gain(report), 1)
    if worst:
        out["branch_gain_max"], out["branch_gain_site"] = math.exp(worst[1]), worst[0]
    gains = layer_gain(report)
    for key, sign in (("layer_gain_min_nats", -1), ("layer_gain_max_nats", 1)):
        w = _worst(gains, sign)
        if w:
            out[key] = w[1]
    if report.token_cos is not None:
        blocks = [j for j, s in enumerate(report.sites) if s["kind"] == "block" and s["main"]]
        cos = [float(np.mean(report.token_cos[:, j])) for j in blocks if np.isfinite(report.token_cos[:, j]).all()]
        if cos:
            out["token_cos_first"], out["token_cos_last"] = cos[0], cos[-1]
    if report.attn_entropy is not None and report.attn_entropy.size:
        per_block = np.nanmean(report.attn_entropy, axis=0)
        if np.isfinite(per_block).any():
            out["attn_entropy_min"] = float(np.nanmin(per_block))
    return out
