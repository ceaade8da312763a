"""Verdicts from a probe's training curves, criteria fixed here (documented in ``docs/probe.md``), and the result.

Per init, on its loss curve ``L_t`` (the loss of step t's fresh batch before the update), smoothed by a running mean
over ``w = max(1, steps // 20)`` steps:

* **threshold** ``FRACTION · min(L_0, baseline)``: learning has to beat both where the init started and the best
  input-blind predictor (an init whose first loss is huge must do more than shrink its outputs);
* **diverges**: a non-finite loss at any step, or the smoothed final loss above ``GROWTH · L_0``;
* **stuck**: the smoothed loss never falls below the threshold within the steps;
* **slow**: it does, but later than ``SLOW ×`` the reference's median step to the threshold (with no reference, or
  a reference that does not learn: later than half the steps);
* **starts**: otherwise.

The init's overall verdict is the most common one over inits (ties go to the worse), except that *stuck* needs a
reference that learns (at least half its inits start or are slow): when it does not, the overall verdict is
**inconclusive** (the task or lr is too hard for this architecture within the steps). Relative to the reference
(trained on the same batches, seeds, optimizer and lr), the ratio of mean steps to the threshold carries a
delta-method standard error; inits that never reach it count as ``steps`` (a lower bound, said in the notes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FRACTION", "GROWTH", "SLOW", "VERDICTS", "ProbeResult", "judge_curves"]

FRACTION = 0.9
GROWTH = 2.0
SLOW = 2.0
VERDICTS = ("starts", "slow", "stuck", "diverges")  # best to worst


def smooth(loss: np.ndarray) -> np.ndarray:
    """Running mean over ``max(1, steps // 20)`` steps (trailing window), NaN once the loss has been NaN."""
    w = max(1, loss.shape[-1] // 20)
    c = np.cumsum(np.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0), axis=-1)
    out = np.empty_like(loss, dtype=float)
    for t in range(loss.shape[-1]):
        lo = max(0, t - w + 1)
        out[..., t] = (c[..., t] - (c[..., lo - 1] if lo > 0 else 0.0)) / (t - lo + 1)
    bad = np.maximum.accumulate(~np.isfinite(loss), axis=-1)
    out[bad] = np.nan
    return out


def first_below(loss: np.ndarray, baseline: float) -> np.ndarray:
    """Per row: the first step at which the smoothed loss is below ``FRACTION · min(L_0, baseline)``, else -1."""
    s = smooth(loss)
    thr = FRACTION * np.minimum(loss[:, 0], baseline)
    below = s < thr[:, None]
    return np.where(below.any(1), below.argmax(1), -1)


def judge_curves(loss: np.ndarray, baseline: float, ref_steps: float | None) -> tuple[np.ndarray, list]:
    """``(step to threshold per init (-1: never), verdict per init)``; ``ref_steps``: the reference's median step
    to the threshold, or None when there is no reference or it did not learn."""
    steps = loss.shape[1]
    hit = first_below(loss, baseline)
    s = smooth(loss)
    verdicts = []
    for i in range(loss.shape[0]):
        if not np.all(np.isfinite(loss[i])) or s[i, -1] > GROWTH * loss[i, 0]:
            verdicts.append("diverges")
        elif hit[i] < 0:
            verdicts.append("stuck")
        elif hit[i] > (SLOW * max(ref_steps, 1) if ref_steps is not None else steps / 2):
            verdicts.append("slow")
        else:
            verdicts.append("starts")
    return hit, verdicts


def overall(verdicts) -> str:
    counts = {v: list(verdicts).count(v) for v in VERDICTS}
    top = max(counts.values())
    return [v for v in VERDICTS if counts[v] == top][-1]


def ratio_se(hit: np.ndarray, ref_hit: np.ndarray, steps: int) -> tuple[float, float]:
    """Mean steps to the threshold, init over reference (never reached counts as ``steps``), and its delta-method SE
    ``r·√(s_u²/(n ū²) + s_r²/(n r̄²))``."""
    u = np.where(hit < 0, steps, hit + 1).astype(float)
    r = np.where(ref_hit < 0, steps, ref_hit + 1).astype(float)
    ratio = u.mean() / r.mean()
    var = u.var(ddof=1) / (len(u) * u.mean() ** 2) + r.var(ddof=1) / (len(r) * r.mean() ** 2) if len(u) > 1 else np.nan
    return float(ratio), float(ratio * np.sqrt(var))


def update_share(update_norm: np.ndarray) -> np.ndarray:
    """Per init and layer: the layer's share of the summed update norms, ``Σ_t ‖Δθ_l,t‖ / Σ_l Σ_t ‖Δθ_l,t‖`` over the
    statistics steps ``t`` (evenly spaced: an estimate of the share over all steps)."""
    total = np.nansum(np.where(np.isfinite(update_norm), update_norm, np.nan), axis=1)
    whole = total.sum(1, keepdims=True)
    return np.divide(total, whole, out=np.full_like(total, np.nan), where=(whole > 0) & np.isfinite(whole))


@dataclass(frozen=True)
class ProbeResult:
    """What the first steps of training said. Arrays are per init (rows) and step: ``loss`` and the reference's
    ``ref_loss`` on every step; per layer, ``grad_norm`` and ``update_ratio`` (‖Δθ_l‖/‖θ_l‖) on the steps
    ``stat_steps`` only (:func:`deepstart.probe.engine.stat_steps`: about 20, evenly spaced, and the last), and
    ``update_share`` summed over them."""

    model: str
    task: str
    optimizer: str
    lr: float
    steps: int
    n_inits: int
    baseline: float
    loss: np.ndarray
    hit: np.ndarray
    verdicts: tuple
    verdict: str
    layers: tuple
    grad_norm: np.ndarray
    update_ratio: np.ndarray
    update_share: np.ndarray
    reference: str | None = None
    ref_loss: np.ndarray | None = None
    ref_hit: np.ndarray | None = None
    ref_verdicts: tuple | None = None
    ratio: float | None = None
    ratio_se: float | None = None
    ref_update_share: np.ndarray | None = None
    lr_table: tuple = ()
    path: str = ""
    notes: tuple = ()
    seconds: float = 0.0
    criteria: dict = field(default_factory=lambda: {"fraction": FRACTION, "growth": GROWTH, "slow": SLOW})
    stat_steps: tuple = ()  # the steps of grad_norm / update_ratio (their axis 1)

    def counts(self, verdicts=None) -> dict:
        vs = self.verdicts if verdicts is None else verdicts
        return {v: list(vs).count(v) for v in VERDICTS}

    def to_dict(self) -> dict:
        def arr(a):
            return None if a is None else np.where(np.isfinite(a), a, np.nan).tolist()
        out = {k: getattr(self, k) for k in ("model", "task", "optimizer", "lr", "steps", "n_inits", "baseline",
                                              "verdict", "reference", "ratio", "ratio_se", "path", "seconds")}
        out.update(verdicts=list(self.verdicts), ref_verdicts=None if self.ref_verdicts is None else
                   list(self.ref_verdicts), counts=self.counts(), layers=list(self.layers),
                   hit=self.hit.tolist(), ref_hit=None if self.ref_hit is None else self.ref_hit.tolist(),
                   loss=arr(self.loss), ref_loss=arr(self.ref_loss), grad_norm=arr(self.grad_norm),
                   update_ratio=arr(self.update_ratio), update_share=arr(self.update_share),
                   ref_update_share=arr(self.ref_update_share), lr_table=[dict(r) for r in self.lr_table],
                   notes=list(self.notes), criteria=dict(self.criteria), stat_steps=list(self.stat_steps))
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeResult":
        """Inverse of :meth:`to_dict` (arrays back to NumPy; ``None`` in them is NaN)."""
        def arr(x, dtype=float):
            return None if x is None else np.array(x, dtype=dtype)
        kw = {k: d[k] for k in ("model", "task", "optimizer", "lr", "steps", "n_inits", "baseline", "verdict",
                                "reference", "ratio", "ratio_se", "path", "seconds")}
        kw.update(verdicts=tuple(d["verdicts"]), ref_verdicts=None if d["ref_verdicts"] is None else
                  tuple(d["ref_verdicts"]), layers=tuple(d["layers"]), hit=arr(d["hit"], int),
                  ref_hit=arr(d["ref_hit"], int), loss=arr(d["loss"]), ref_loss=arr(d["ref_loss"]),
                  grad_norm=arr(d["grad_norm"]), update_ratio=arr(d["update_ratio"]),
                  update_share=arr(d["update_share"]), ref_update_share=arr(d["ref_update_share"]),
                  lr_table=tuple(d["lr_table"]), notes=tuple(d["notes"]), criteria=dict(d["criteria"]),
                  stat_steps=tuple(d.get("stat_steps", range(d["steps"]))))  # older results: every step
        return cls(**kw)

    def summary(self) -> str:
        c = self.counts()
        lines = [f"probe of {self.model}: {self.verdict} — " + ", ".join(f"{v} {c[v]}/{self.n_inits}"
                                                                          for v in VERDICTS if c[v]),
                 f"  {self.optimizer} lr={self.lr:g}, {self.steps} steps, task: {self.task}"]
        if self.ref_verdicts is not None:
            rc = self.counts(self.ref_verdicts)
            lines.append(f"  reference ({self.reference}): " + ", ".join(f"{v} {rc[v]}/{self.n_inits}"
                                                                       for v in VERDICTS if rc[v]))
            lines.append(f"  steps to the threshold, init/reference: {self.ratio:.2f} ± {self.ratio_se:.2f}")
        share = np.nanmean(self.update_share, 0)
        top = np.argsort(share)[::-1][:3]
        lines.append("  learning happens in: " + ", ".join(f"{self.layers[i]} {share[i]:.0%}" for i in top))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary

    def plot(self, ax=None):
        """Loss curves of every init (the reference's in grey) and the update share per layer; returns the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
        else:
            fig, ax2 = ax.figure, None
        steps = np.arange(self.steps)
        if self.ref_loss is not None:
            for i, row in enumerate(self.ref_loss):
                ax.plot(steps, row, color="0.6", lw=1, label="reference" if i == 0 else None)
        for i, row in enumerate(self.loss):
            ax.plot(steps, row, color="C3", lw=1, alpha=0.8, label="init" if i == 0 else None)
        ax.axhline(self.baseline, color="k", ls=":", lw=1, label="input-blind baseline")
        ax.set(xlabel="step", ylabel="loss", title=f"{self.model}: {self.verdict}")
        if np.nanmax(self.loss) > 20 * self.baseline:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        if ax2 is not None:
            x = np.arange(len(self.layers))
            ax2.plot(x, np.nanmean(self.update_share, 0), color="C3", label="init")
            if self.ref_update_share is not None:
                ax2.plot(x, np.nanmean(self.ref_update_share, 0), color="0.6", label="reference")
            ax2.set(xlabel="layer", ylabel="share of update norm", title="where learning happens")
            ax2.legend(fontsize=8)
        fig.tight_layout()
        return fig
