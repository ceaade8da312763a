"""The law of a recurrent layer (``nn.RNN``/``nn.LSTM``/``nn.GRU``, stacked): mean-field propagation across its
stacked layers *and* across time steps.

Measured by :mod:`deepstart.diagnose.recurrent` (per-layer taps of the fused module, and the gradient of the last
step's output with respect to every input step):

* across layers: the log ratios of the mean squared length from the first layer's output to the last one's,
  log E M_{k+1}/E M_k — FM1 of the stack (Hanin & Rolnick 2018; a tanh cell with σ_w² < 1 has the fixed point
  q* = 0 and shrinks the signal geometrically), read as a rate over the deeper half of the stack like a segment's
  FM1 (stacks with at least ``min_links`` links between layers) — and the gradient gain χ_k of each layer at one
  time step, Σ_k log χ_k over the layers 2..L, each measured at its own input (stacks of 3 layers or more: a
  2-layer LSTM has one link, the one-layer law). Every step's loss reaches the input of its own step only through
  all L layers, so this is the law of starting to train. Errors: FM1 beyond ±``fm1_nats``; the gradient beyond
  max(``gradient_nats``, 2·log(L) + 1.5) over the L − 1 links (a few stacked layers may lose a polynomial factor).
  Recorded change (tuning half of the held-out zoo, 2026-12-07): the gradient limit was ``gradient_nats`` alone,
  which called PyTorch's default 4-layer ``nn.RNN`` (exp(−3.7), trains: loss 1.61 vs 1.45 orthogonal) broken; the
  ×0.3 orthogonal stack (exp(−7.25)) is caught under both.
* across time: the recurrent Jacobian's gain per step, log χ_t = (log G_first − log G_last)/(T − 1) with
  G_t = ‖∂ℓ/∂x_t‖² for ℓ on the last step (Pennington-style; Chen, Pennington & Schoenholz 2018 for gated cells).
  Exploding over the sequence, log(G_first/G_last) > ``gradient_nats``: a warning, an error above
  ``normalized_gradient_nats`` (recorded change on the tuning half, 2026-12-07: it was an error above
  ``gradient_nats``, which called an LSTM LM with weights ×10 (+5.65 nats over the sequence; trains, loss
  6.73 → 1.68) broken; saturated gates bound the growth, and clipping handles a finite one). Vanishing is the memory length
  ξ = 1/|log χ_t| steps: a warning when the first step's gradient is below e^−``gradient_nats`` of the last one's
  (gated cells with forget gate ≈ ½ at init remember a few steps; that is how stock LSTMs start).
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.diagnose.laws._stats import quiet
from deepstart.diagnose.laws.segment import additive_band

__all__ = ["judge", "layer_drift", "time_gain"]

SOURCE = "Hanin & Rolnick 2018 (FM1 across stacked layers); Chen, Pennington & Schoenholz 2018 (recurrent gain)"


def _log_mean(per_init_ratios: np.ndarray) -> tuple:
    """(log mean_i r_ik, SE of it) per link k from per-init ratios [inits, links]."""
    r = np.where(np.isfinite(per_init_ratios) & (per_init_ratios > 0), per_init_ratios, np.nan)
    mean = np.nanmean(r, axis=0)
    n = np.sum(np.isfinite(r), axis=0)
    se = np.nanstd(r, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1)) if r.shape[0] > 1 else np.full(mean.shape, np.nan)
    return np.log(mean), se / mean


def _drift(logs: np.ndarray, se: np.ndarray) -> tuple:
    """(L · mean of the deeper half's log ratios, its SE, L): a rate over the stack, as FM1 is read on a segment
    (convergence to a fixed point q* over the first layers is not a drift; Hanin & Rolnick 2018)."""
    n = logs.size
    if n == 0:
        return math.nan, math.nan, 0
    half = slice(n // 2, n)
    k = logs[half].size
    return float(n * np.mean(logs[half])), float(n / k * np.sqrt(np.sum(se[half] ** 2))), n


@quiet
def layer_drift(data: dict) -> tuple:
    """(FM1 drift across the stacked layers, SE, links): lengths from the first layer's output to the last's."""
    sq = np.asarray(data["layer_sq"], float)
    if sq.ndim != 2 or sq.shape[1] < 2:
        return math.nan, math.nan, 0
    return _drift(*_log_mean(sq[:, 1:] / sq[:, :-1]))


@quiet
def layer_gradient(data: dict) -> tuple:
    """(log gradient gain across the stacked layers 2..L at one step, SE, links): Σ_k log χ_k, each layer's gain
    measured at its own input (no extrapolation: a fixed point cannot hide in a gain read layer by layer)."""
    chi = np.asarray(data.get("layer_chi", []), float)
    if chi.ndim != 2 or chi.shape[1] < 2:
        return math.nan, math.nan, 0
    logs, se = _log_mean(chi[:, 1:])
    return float(np.sum(logs)), float(np.sqrt(np.sum(se ** 2))), logs.size


@quiet
def time_gain(data: dict) -> tuple:
    """(log G_first/G_last over the steps, SE, steps − 1): negative when gradients vanish back in time."""
    g = np.asarray(data["time_grad"], float)
    if g.ndim != 2 or g.shape[1] < 2:
        return math.nan, math.nan, 0
    logs, se = _log_mean(g[:, :1] / g[:, -1:])
    return float(logs[0]), float(se[0]), g.shape[1] - 1


def judge(part, report, t, remedy, parts=()) -> list:
    from deepstart.diagnose.verdicts import NOT_ASSESSED, Finding, pm

    data = (getattr(report, "recurrent", None) or {}).get(part.site)
    if data is None:
        return [Finding("structure", "warning", part.site, math.nan, 0.0, None,
                        f"{NOT_ASSESSED}: recurrent layer {part.site} ({part.cell}, {part.layers} layers) was not "
                        "probed per layer and per step (an input it cannot be run on alone).",
                        "check the recurrent module by itself with a [batch, time, features] input.", SOURCE)]
    out, sig = [], t["significance"]
    drift, se, links = layer_drift(data)
    if links >= t["min_links"] and abs(drift) > t["fm1_nats"] and not abs(drift) <= sig * se:
        way = "vanishing" if drift < 0 else "exploding"
        out.append(Finding("fm1", "error", part.site, drift, t["fm1_nats"], None,
                           f"FM1 {way} across the {part.layers} stacked {part.cell} layers: the mean squared length "
                           f"drifts by exp({drift:.3g}) from the first layer's output to the last's ({pm(se)}).",
                           remedy("recurrent"), SOURCE))
    grad, gse, links = layer_gradient(data)
    limit = max(t["gradient_nats"], additive_band(links)) if links else math.nan
    if links >= 2 and abs(grad) > limit and not abs(grad) - limit <= sig * gse:
        way = "vanishing" if grad < 0 else "exploding"
        out.append(Finding("gradients", "error", part.site, grad, limit, None,
                           f"{way} gradients across the {part.layers} stacked {part.cell} layers: at one time step "
                           f"‖∂ℓ/∂x‖² changes by exp({grad:.3g}) from the last layer to the second ({pm(gse)}).",
                           remedy("recurrent"), SOURCE))
    g, gse, steps = time_gain(data)
    if steps and g > t["gradient_nats"] and not g - t["gradient_nats"] <= sig * gse:
        severe = g > t["normalized_gradient_nats"]
        out.append(Finding("gradients", "error" if severe else "warning", part.site, g,
                           t["normalized_gradient_nats"] if severe else t["gradient_nats"], None,
                           f"gradients explode back in time: ‖∂ℓ/∂x_t‖² of the first step is exp({g:.3g}) times that "
                           f"of the last ({steps} steps; recurrent gain {math.exp(g / steps):.3g} per step).",
                           remedy("recurrent"), SOURCE))
    elif steps and g < -t["gradient_nats"] and not -g - t["gradient_nats"] <= sig * gse:
        memory = steps / -g
        out.append(Finding("gradients", "warning", part.site, g, -t["gradient_nats"], None,
                           f"gradients vanish back in time: ‖∂ℓ/∂x_t‖² of the first step is exp({g:.3g}) times that "
                           f"of the last over {steps} steps (memory ≈ {memory:.3g} steps at init).",
                           remedy("recurrent"), SOURCE))
    return out
