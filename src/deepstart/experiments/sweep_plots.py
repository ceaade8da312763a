"""Pictures of a sweep: learning curves and a depth × init heatmap (Hanin & Rolnick 2018, Fig. 2 style)."""
from __future__ import annotations

import math
from collections import defaultdict

__all__ = ["plot_curves", "plot_heatmap", "heatmap_table"]


def _label(config: dict) -> str:
    init = config.get("init", "?")
    params = config.get("init_params") or {}
    return init + ("(" + ", ".join(f"{k}={v}" for k, v in sorted(params.items())) + ")" if params else "")


def plot_curves(results, metric: str = "test_acc", x: str = "epoch", ax=None):
    """One curve per trial, coloured by init scheme. Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    colours: dict = {}
    for r in results:
        label = _label(r.config)
        colour = colours.setdefault(label, f"C{len(colours) % 10}")
        pts = [(h[x], h[metric]) for h in r.history if h.get(metric) is not None and math.isfinite(h[metric])]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, color=colour, alpha=0.7, lw=1, label=label if label not in ax.get_legend_handles_labels()[1] else None)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    if colours:
        ax.legend(fontsize="small")
    return fig, ax


def heatmap_table(results, value: str = "best_test_acc"):
    """``(depths, inits, matrix)``: mean of ``value`` (a key of ``TrialResult.summary()``) per depth and init;
    NaN where missing or never reached (e.g. ``epochs_to_20`` of a run that never got there)."""
    cells = defaultdict(list)
    for r in results:
        v = r.summary().get(value)
        cells[(r.config.get("depth"), _label(r.config))].append(math.nan if v is None else float(v))
    depths = sorted({d for d, _ in cells})
    inits = sorted({i for _, i in cells})
    matrix = [[(sum(cells[(d, i)]) / len(cells[(d, i)])) if cells.get((d, i)) else math.nan for i in inits]
              for d in depths]
    return depths, inits, matrix


def plot_heatmap(results, value: str = "best_test_acc", ax=None):
    """Depth × init heatmap of the mean ``value``, annotated. Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt
    import numpy as np

    depths, inits, matrix = heatmap_table(results, value)
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * max(len(inits), 1), 1 + 0.5 * max(len(depths), 1))) \
        if ax is None else (ax.figure, ax)
    m = np.array(matrix, dtype=float).reshape(len(depths), len(inits))
    im = ax.imshow(np.ma.masked_invalid(m), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(inits)), inits, rotation=30, ha="right", fontsize="small")
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    ax.set_xlabel("init")
    ax.set_ylabel("depth")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, "—" if not np.isfinite(v) else f"{v:.3g}", ha="center", va="center", fontsize="x-small",
                color="w")
    fig.colorbar(im, ax=ax, label=value)
    return fig, ax
