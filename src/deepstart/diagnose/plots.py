"""The figures of a ``check`` report: the mean-field panels that apply (lengths, gradients, FM2, Jacobian spectrum),
one panel per part law (:mod:`deepstart.diagnose.panels`: branch gain, stream length, token cosine, attention
entropy, norm input scale, recurrent gain) and one small figure per finding (matplotlib, imported on first use).
Every site axis is the main-path index j of the report's table and findings; legends sit below the axes."""
from __future__ import annotations

import base64
import io
import math

import numpy as np

from deepstart.diagnose.html import _quiet

__all__ = ["plot_report", "plot_finding", "panels_of", "_figure_png", "_png"]


def plot_report(report, ax=None):
    """The signal-propagation figure: the mean-field panels that apply, then one panel per part series
    (:mod:`deepstart.diagnose.panels`); ``ax``: at least that many axes (else a new figure, two panels a row).
    Returns ``(fig, axes)``."""
    with _quiet():
        return _plot_report(report, ax)


def panels_of(report) -> list:
    """(title-less key, draw) per panel of ``report``'s figure, in order: draw(ax, report, layer=None)."""
    from deepstart.diagnose.panels import mean_field_panels, part_series

    out = [(name, _MEAN_FIELD[name]) for name in mean_field_panels(report)]
    for series in part_series(report):
        out.append((series.key, lambda a, r, layer=None, s=series: _panel_series(a, r, s, layer)))
    return out


def _plot_report(report, ax):
    import matplotlib.pyplot as plt

    panels = panels_of(report)
    if ax is None:
        rows = max(1, (len(panels) + 1) // 2)
        fig, axes = plt.subplots(rows, 2, figsize=(11, 3.9 * rows), squeeze=False)
        axes = axes.ravel()
        for a in axes[len(panels):]:
            a.set_axis_off()
    else:
        axes = np.ravel(ax)
        fig = axes[0].figure
        if axes.size < len(panels):
            raise ValueError(f"plot needs {len(panels)} axes ({', '.join(k for k, _ in panels)}), got {axes.size}")
    for a, (_, draw) in zip(axes, panels):
        draw(a, report)
    fig.suptitle(f"{report.model}: {report.verdict}")
    fig.tight_layout()  # counts the legends below the axes
    return fig, axes[:len(panels)]


def _legend(a, **kw):
    """The legend below the axes (never over the data), two columns."""
    if a.get_legend_handles_labels()[0]:
        a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False, **kw)


def _site_axis(a, report):
    from deepstart.diagnose.panels import SITE_AXIS

    from matplotlib.ticker import MaxNLocator

    a.set_xlabel(SITE_AXIS, fontsize=8)
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    if report.main_idx:
        a.set_xlim(0.5, len(report.main_idx) + 0.5)


def _panel_series(a, report, series, layer=None):
    """One :class:`~deepstart.diagnose.panels.PartSeries`: measured mean ± SE per part, the law's prediction and
    limit, the finding's part marked."""
    yerr = np.where(np.isfinite(series.se), series.se, 0.0)
    joined = bool(np.all(np.diff(series.x) > 0))  # several parts at one site (norms in a block): points only
    a.errorbar(series.x, series.value, yerr=yerr, fmt="o-" if joined else "o", ms=3, lw=1, color="C0", capsize=2,
               label="measured (mean ± SE over inits)")
    if series.expected is not None and np.any(np.isfinite(series.expected)):
        a.plot(series.x, series.expected, "k--", lw=1, label=series.expected_label or "law")
    if series.bound is not None and np.any(np.isfinite(series.bound)):
        a.plot(series.x, series.bound, color="C3", lw=0.8, ls="-", label=series.bound_label)
    for value, side, severity in series.limits:
        a.axhline(value, color="C3" if severity == "error" else "C1", lw=0.8, ls="-" if side == "above" else "--",
                  label=f"{severity} {side} {value:.3g}")
    if series.log:
        a.set_yscale("log")
    if series.ylim is not None:
        a.set_ylim(*series.ylim)
    if layer is not None and layer in series.names:
        a.axvline(series.x[series.names.index(layer)], color="C3", lw=1.0, ls="-.", label=f"finding at {layer}")
    if series.xlabel.startswith("site"):
        _site_axis(a, report)
    else:
        from matplotlib.ticker import MaxNLocator

        a.set_xlabel(series.xlabel, fontsize=8)
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_ylabel(series.ylabel, fontsize=8)
    a.set_title(series.title, fontsize=10)
    _legend(a)


def _logs(report, key: str) -> np.ndarray:
    """log of ``report.<key>`` on the main path, [inits, inputs, sites] (−∞/NaN where 0 or not measured)."""
    idx = report.main_idx
    arr = getattr(report, key)
    if not idx or not arr.size:
        return np.zeros((0, 0, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(arr[..., idx])


def _band(a, depth, centre, var, label):
    """Shade centre − var/2 ± sd: log X ≈ N(log E X − Var/2, Var) (lognormal; Hanin & Rolnick 2018, Thm 5)."""
    if var.size == depth.size and np.any(np.isfinite(var)):
        sd, mid = np.sqrt(var), centre - var / 2
        a.fill_between(depth, mid - sd, mid + sd, color="k", alpha=0.12, label=label)


def _mark(a, report, layer):
    """A vertical line at the site index of ``layer`` (a finding's site, or the block that contains it)."""
    from deepstart.diagnose.panels import main_index

    index = main_index(report)
    if layer in index:
        a.axvline(index[layer], color="C3", lw=1.0, ls="-.", label=f"finding at {layer}")


def _measured(a, report, key: str, color: str, name: str):
    """One thin line per init and the log of the mean over inits and inputs, along the main path; returns the
    site numbers (1..D) and whether anything was drawn."""
    logs = _logs(report, key)
    depth = np.arange(1, logs.shape[-1] + 1)
    for i in range(logs.shape[0]):
        a.plot(depth, np.nanmean(logs[i], axis=0), color=color, alpha=0.3, lw=0.8,
               label="measured, one init" if i == 0 else None)
    if logs.size:
        values = getattr(report, key)[..., report.main_idx]
        a.plot(depth, np.log(np.nanmean(values, axis=(0, 1))), f"{color}-", lw=2, label=f"measured log mean {name}")
    return depth, bool(logs.size)


def _panel_lengths(a, report, layer=None):
    depth, _ = _measured(a, report, "sq", "C0", "M_j")
    m_pred = np.asarray(report.theory.get("m_pred", []), float)
    if m_pred.size == depth.size and np.any(np.isfinite(m_pred)):
        a.plot(depth, np.log(m_pred), "k--", label="theory log E[M_j]")
        _band(a, depth, np.log(m_pred), np.asarray(report.theory.get("log_var_pred", []), float),
              "theory log M_j: mean ± sd")
    _mark(a, report, layer)
    a.set(ylabel="log M_j", title="squared length per init (FM1)")
    _site_axis(a, report)
    _legend(a)


def _panel_gradients(a, report, layer=None):
    depth, drawn = _measured(a, report, "grad", "C1", "G_j")
    if drawn:
        back = np.asarray(report.theory.get("back_ratio", []), float)
        if back.size == depth.size and back.size >= 2 and np.all(np.isfinite(back[1:])):
            # anchored at the last site: log E G_j = log G_last + Σ_{i>j} log χ_i (Schoenholz et al. 2017, §3)
            anchor = math.log(np.nanmean(report.grad[..., report.main_idx[-1]]))
            pred = anchor + np.concatenate([np.cumsum(np.log(back[1:])[::-1])[::-1], [0.0]])
            a.plot(depth, pred, "k--", label="theory (Π χ)")
            # the backward factors have the forward ones' law to leading order (Hanin 2018, Thm 1), so
            # Var log G_j/G_last ≈ Σ_{i>j} Var log ξ_i: an approximate band, exact in the mean only
            xi = np.diff(np.r_[0.0, np.asarray(report.theory.get("log_var_pred", []), float)])
            if xi.size == depth.size and np.all(np.isfinite(xi[1:])):
                var = np.concatenate([np.cumsum(xi[1:][::-1])[::-1], [0.0]])
                _band(a, depth, pred, var, "theory ± sd (≈, Σ Var log ξ)")
    _mark(a, report, layer)
    a.set(ylabel="log ‖∂ℓ/∂x_j‖²", title="gradient length per init")
    _site_axis(a, report)
    _legend(a)


def _panel_fm2(a, report, layer=None):
    logm = _logs(report, "sq")
    depth = np.arange(1, logm.shape[-1] + 1)
    if logm.size and logm.shape[0] > 1:
        var = np.nanmean(np.nanvar(logm, axis=0, ddof=1), axis=0)
        a.plot(depth, var, "C2o-", ms=3, label="measured Var log M_j")
        lv = np.asarray(report.theory.get("log_var_pred", []), float)
        if lv.size == depth.size and np.any(np.isfinite(lv)):
            a.plot(depth, lv, "k--", lw=1, label="theory Var log M_j")
        beta = np.cumsum([1.0 / s["width"] if s["activation"] else 0.0 for s in report.main_sites])
        a.plot(depth, 5 * beta, "k:", label="5β_j")
        a.axhline(report.thresholds.get("fm2_var", 10.0), color="C3", lw=0.8, label="FM2 threshold")
    elif logm.size:
        a.text(0.5, 0.5, "one init: no spread across inits", ha="center", va="center", transform=a.transAxes)
    _mark(a, report, layer)
    a.set(ylabel="Var log M_j", title="fluctuation across inits (FM2)")
    _site_axis(a, report)
    _legend(a)


def _panel_dead(a, report, layer=None):
    dead = np.nanmean(report.dead[:, report.main_idx], axis=0) if report.dead.size else np.zeros(0)
    a.bar(np.arange(1, dead.size + 1), np.nan_to_num(dead), color="C5", label="measured dead fraction")
    a.axhline(report.thresholds.get("dead_fraction", 0.5), color="C3", lw=0.8, label="threshold")
    _mark(a, report, layer)
    a.set(ylabel="fraction", ylim=(0, 1), title="units 0 on every input")
    _site_axis(a, report)
    _legend(a)


def _panel_spectrum(a, report, layer=None):
    if not report.jacobian:
        a.text(0.5, 0.5, "Jacobian not measured", ha="center", va="center", transform=a.transAxes)
    else:
        lam_all = np.asarray(report.jacobian["values"], float) ** 2
        # eigenvalues at float rounding level are zeros (rank loss through D = diag φ' = 0: the theory's atom at 0)
        lam = lam_all[lam_all > 1e-10 * np.max(lam_all, initial=0.0)]
        if lam.size < lam_all.size:
            a.text(0.02, 0.72, f"{lam_all.size - lam.size} of {lam_all.size} eigenvalues ≈ 0\n(rank loss) not shown",
                   ha="left", va="top", fontsize=7, transform=a.transAxes)
        scale = float(np.mean(lam)) if lam.size else 1.0
        t = np.log10(lam / scale)  # log10(λ/mean λ): the shape of the spectrum whatever its overall scale (FM1)
        if t.size:
            a.hist(t, bins=40, density=True, color="C4", alpha=0.7, label="measured (λ = σ² of JJᵀ)")
        jac = report.theory.get("jacobian")
        if jac and t.size:
            grid, dens, why = _theory_density(jac, t)
            if dens is not None:
                a.plot(grid, dens, "k-", lw=1.2, label="theory density (free probability)")
            else:
                sd = math.sqrt(max(jac["relative_variance"], 0.0))
                a.axvspan(np.log10(max(1 - sd, 1e-3)), np.log10(1 + sd), color="k", alpha=0.1,
                          label="theory mean ± sd")
                a.text(0.02, 0.97, f"density: {why}", ha="left", va="top", fontsize=7, transform=a.transAxes)
        a.axvline(0.0, color="k", ls="--", lw=0.8)
        _legend(a)
    a.set(xlabel="log₁₀(λ / mean λ), λ eigenvalues of JJᵀ", ylabel="density",
          title="Jacobian spectrum (isometry: all λ near the mean)")


_MEAN_FIELD = {"lengths": _panel_lengths, "gradients": _panel_gradients, "fm2": _panel_fm2,
               "spectrum": _panel_spectrum}
# which panel shows a finding of each category: the first part series that has the finding's part, else the
# mean-field panel; categories not listed (structure, nonfinite) get no figure
_FINDING_PANEL = {"fm1": (("norm_input", "stream_length"), _panel_lengths),
                  "branches": (("branch_gain",), _panel_lengths),
                  "attention": (("token_cos", "attn_entropy"), _panel_lengths),
                  "gradients": (("recurrent",), _panel_gradients), "fm2": ((), _panel_fm2), "dead": ((), _panel_dead),
                  "isometry": ((), _panel_spectrum)}


def _finding_panel(report, finding):
    keys, fallback = _FINDING_PANEL.get(finding.category, ((), None))
    if finding.category == "attention":  # one category, two laws: rank collapse and entropy collapse
        keys = ("attn_entropy",) if "entropy" in finding.message else ("token_cos",)
    if keys:
        from deepstart.diagnose.panels import part_series

        for s in part_series(report):
            if s.key in keys and (finding.layer in s.names or s.key == "recurrent" and
                                  any(n.startswith(finding.layer + " t=") for n in s.names)):
                return lambda a, r, layer=None, s=s: _panel_series(a, r, s, layer)
    return fallback


def plot_finding(report, finding, ax=None):
    """The one panel of the report's figure that shows ``finding``, its site marked. Returns ``(fig, ax)``; ``ax`` is
    None (and no figure is made) for a finding no panel shows (``structure``, ``nonfinite``)."""
    panel = _finding_panel(report, finding)
    if panel is None:
        return None, None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.4)) if ax is None else (ax.figure, ax)
    with _quiet():
        panel(ax, report, finding.layer)
    import textwrap

    ax.set_title(textwrap.fill(f"[{finding.severity}] {finding.category}: " + ax.get_title(), 58), fontsize=9)
    fig.tight_layout()
    return fig, ax


def _theory_density(jac: dict, t: np.ndarray):
    """(grid, density, why-not) of ``deepstart.theory.jacobian_spectrum`` in the plot's coordinate
    t = log₁₀(λ/m₁): density_t(t) = ρ(λ)·λ·ln 10 at λ = m₁·10^t. The density is None (``why`` says why) when the
    net is not L equal layers or the theory is not available."""
    params = jac.get("spectrum")
    if not params:
        return None, None, "the net is not L equal layers"
    try:
        from deepstart.theory import jacobian_spectrum
    except ImportError:
        return None, None, "deepstart.theory.jacobian_spectrum not available"
    try:
        spec = jacobian_spectrum(params["activation"], params["depth"], weights=params["weights"],
                                 sigma_w=params["sigma_w"], sigma_b=params["sigma_b"])
        m1 = float(spec.moments()["m1"])
        top = math.log10(spec.lambda_max / m1) if spec.lambda_max > 0 else float(np.max(t))
        grid = np.linspace(min(float(np.min(t)), top - 3.0), max(float(np.max(t)), top) + 0.05, 400)
        lam = m1 * 10.0 ** grid
        dens = np.asarray(spec.density(lam), float) * lam * math.log(10.0)
    except Exception as exc:  # noqa: BLE001 - the figure still shows the moments
        return None, None, f"theory failed ({type(exc).__name__})"
    ok = np.isfinite(dens)
    return (grid[ok], dens[ok], "") if ok.any() and np.max(dens[ok]) > 0 else (None, None, "no continuous part")


def _png(fig, dpi: int) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure_png(report) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    return _png(plot_report(report)[0], 90)


# (column, meaning): the legend under the per-layer table; the terminal table uses the same columns
