"""Training metrics: one record per evaluation point, and the summaries the papers report.

A :class:`TrialResult` holds the history of one trained network: at step 0 and then every ``eval_every`` steps (or
at the end of every epoch) a record ``{"step", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "time"}``.
``train_loss``/``train_acc`` are averages over the minibatches since the previous record; ``test_*`` are computed on
the (possibly limited) test split; ``time`` is wall-clock seconds since the start of the batch the trial ran in.

"Epochs to reach X% accuracy" (Hanin & Rolnick 2018, Fig. 2 and 4: epochs to reach 20% on vectorized MNIST) is
:meth:`TrialResult.epochs_to` / :meth:`TrialResult.steps_to`: the first evaluation point at which the metric is at
least X; ``None`` when never reached (a diverged trial never reaches anything after diverging).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["TrialResult", "first_reaching", "DEFAULT_TARGETS"]

DEFAULT_TARGETS = (0.2, 0.5, 0.9)  # 20% is Hanin & Rolnick's threshold; 50% / 90% for harder comparisons
_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


def first_reaching(history, threshold: float, metric: str = "test_acc", key: str = "step"):
    """``key`` of the first record whose ``metric`` is ≥ ``threshold`` (``None`` if none is)."""
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(_METRICS)}")
    for record in history:
        value = record.get(metric)
        if value is not None and math.isfinite(value) and value >= threshold:
            return record[key]
    return None


@dataclass(frozen=True)
class TrialResult:
    """Outcome of training one network (one :class:`deepstart.experiments.train.Trial`).

    ``diverged`` is True when the training loss became NaN/Inf; ``diverged_at_step`` is the 1-based step whose
    loss was not finite, after which the member was dropped from its batch (no further compute).
    ``batch_members`` is how many trials were trained together in the vectorized batch.
    """

    trial_id: str
    config: dict
    history: tuple = ()
    diverged: bool = False
    diverged_at_step: int | None = None
    steps_run: int = 0
    seconds: float = 0.0
    batch_members: int = 1
    extra: dict = field(default_factory=dict)

    # -- summaries -------------------------------------------------------------------------------------------
    def steps_to(self, accuracy: float, metric: str = "test_acc") -> int | None:
        """Optimizer steps until ``metric`` first reached ``accuracy`` (a fraction, e.g. 0.2 for 20%)."""
        return first_reaching(self.history, accuracy, metric, "step")

    def epochs_to(self, accuracy: float, metric: str = "test_acc") -> float | None:
        """Epochs (fractional when evaluating every N steps) until ``metric`` first reached ``accuracy``."""
        return first_reaching(self.history, accuracy, metric, "epoch")

    @property
    def final(self) -> dict:
        """The last record (empty dict if there is none)."""
        return dict(self.history[-1]) if self.history else {}

    def summary(self, targets=DEFAULT_TARGETS) -> dict:
        """Flat metrics for tables and the store: final values, best test accuracy, steps/epochs to targets."""
        out = {f"final_{m}": self.final.get(m) for m in _METRICS}
        accs = [r["test_acc"] for r in self.history if r.get("test_acc") is not None]
        out["best_test_acc"] = max(accs) if accs else None
        for t in targets:
            pct = int(round(100 * t))
            out[f"steps_to_{pct}"] = self.steps_to(t)
            out[f"epochs_to_{pct}"] = self.epochs_to(t)
        out.update(diverged=self.diverged, diverged_at_step=self.diverged_at_step, steps_run=self.steps_run,
                   seconds=self.seconds)
        return out

    # -- (de)serialization -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"trial_id": self.trial_id, "config": dict(self.config), "history": [dict(r) for r in self.history],
                "diverged": self.diverged, "diverged_at_step": self.diverged_at_step, "steps_run": self.steps_run,
                "seconds": self.seconds, "batch_members": self.batch_members, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: dict) -> TrialResult:
        data = dict(data)
        data["history"] = tuple(dict(r) for r in data.get("history", ()))
        return cls(**data)

    def plot(self, ax=None, metric: str = "test_acc", x: str = "epoch", label: str | None = None):
        """Learning curve of ``metric`` against ``x`` ("epoch", "step" or "time"). Returns ``(fig, ax)``."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 3.5))
        else:
            fig = ax.figure
        pts = [(r[x], r[metric]) for r in self.history if r.get(metric) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=label or self.config.get("init", self.trial_id))
        if self.diverged and self.diverged_at_step is not None and x == "step":
            ax.axvline(self.diverged_at_step, color="r", ls=":", lw=1)
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        return fig, ax
