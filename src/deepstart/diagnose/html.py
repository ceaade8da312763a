"""Views of a :class:`~deepstart.diagnose.report.Report`: terminal table, signal-propagation figure, HTML page.

The figure (``Report.plot``) has four panels: M_j over depth with the theory band (mean field, ± sd from the
Hanin–Rolnick log-variance); gradient length over depth with the χ-product prediction; Var log M_j over depth
against 5β_j and the FM2 threshold; the Jacobian's eigenvalues λ = σ² of JJᵀ against the theory's mean and spread.
The HTML page is self-contained: the figure is an embedded PNG, no scripts, no network.
"""
from __future__ import annotations

import base64
import html as _html
import io
import contextlib
import math
import os
import warnings

import numpy as np

__all__ = ["render_text", "plot_report", "report_html", "site_table"]

_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m", "ok": "\033[32m", "end": "\033[0m",
           "bold": "\033[1m"}
_MARK = {"error": "✗", "warning": "!", "info": "i"}


@contextlib.contextmanager
def _quiet():
    """NaN-aware means of all-NaN columns (dead or non-finite sites) are NaN, not a warning."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _fmt(x, spec=".3g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(float(x), spec)


def _log_var_direct(report) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        logm = np.log(np.where(report.sq > 0, report.sq, np.nan))
    if logm.shape[0] < 2:
        return np.full(logm.shape[-1], np.nan)
    count = np.sum(np.isfinite(logm), axis=0)
    mean = np.nansum(logm, axis=0) / np.maximum(count, 1)
    var = np.nansum((logm - mean) ** 2, axis=0) / np.maximum(count - 1, 1)
    var = np.where(count > 1, var, np.nan)
    return np.nanmean(var, axis=0) if np.any(np.isfinite(var)) else np.full(logm.shape[-1], np.nan)


def site_table(report) -> list:
    """One row (dict) per main-path site: measured and predicted numbers."""
    with _quiet():
        return _site_table(report)


def _site_table(report) -> list:
    idx = report.main_idx
    m_meas = np.nanmean(report.sq, axis=(0, 1)) if report.sq.size else np.zeros(0)
    g_meas = np.nanmean(report.grad, axis=(0, 1)) if report.grad.size else np.zeros(0)
    lv = _log_var_direct(report) if report.sq.size else np.zeros(0)
    dead = np.nanmean(report.dead, axis=0) if report.dead.size else np.zeros(0)
    m_pred = np.asarray(report.theory.get("m_pred", []), float)
    lv_pred = np.asarray(report.theory.get("log_var_pred", []), float)
    rows = []
    for k, j in enumerate(idx):
        s = report.sites[j]
        kind = {"layer": "", "norm": " (norm)", "block": " (block)"}[s["kind"]]
        act = s["activation"] or ("–" if s["kind"] != "block" else
                                  "η=?" if s["eta"] is None else f"η={s['eta']:.3g}")
        rows.append({"index": k + 1, "site": s["name"], "type": s["module_type"] + kind,
                     "activation": act.replace("blackbox:", "bb:"),
                     "width": s["width"], "sigma_w": s["sigma_w"], "M": m_meas[j],
                     "M_theory": m_pred[k] if k < m_pred.size else math.nan, "var_log_M": lv[j],
                     "var_log_M_theory": lv_pred[k] if k < lv_pred.size else math.nan, "G": g_meas[j],
                     "dead": dead[j]})
    return rows


def _rows_shown(n: int, max_rows: int) -> list:
    if n <= max_rows:
        return list(range(n))
    head = max_rows // 2
    return list(range(head)) + list(range(n - (max_rows - head), n))


def family_line(report) -> str | None:
    """The family-law statistics in one line (``docs/laws.md``), or None when there are none."""
    fam = report.family_stats
    parts = []
    if "branch_gain_max" in fam:
        parts.append(f"max branch gain {_fmt(fam['branch_gain_max'])} at {fam['branch_gain_site']} "
                     f"(limit {report.thresholds.get('branch_gain', 4.0):g})")
    if "layer_gain_min_nats" in fam:
        parts.append(f"layer gains exp({_fmt(fam['layer_gain_min_nats'])}) … exp({_fmt(fam['layer_gain_max_nats'])})")
    if "token_cos_last" in fam:
        parts.append(f"token cosine {_fmt(fam['token_cos_first'])} → {_fmt(fam['token_cos_last'])}")
    if "attn_entropy_min" in fam:
        parts.append(f"attention entropy ≥ {_fmt(fam['attn_entropy_min'])} of log(keys)")
    return f"family law ({report.family}): " + "; ".join(parts) if parts else None


def render_text(report, color: bool = False, max_rows: int = 20) -> str:
    """A compact per-layer table and the findings (ANSI colours when ``color``)."""
    c = _COLORS if color else {k: "" for k in _COLORS}
    fs = report.findings
    n_err = sum(f.severity == "error" for f in fs)
    n_warn = sum(f.severity == "warning" for f in fs)
    verdict = (f"{c['ok']}healthy{c['end']}" if report.healthy else f"{c['error']}{report.verdict}{c['end']}")
    lines = [f"{c['bold']}deepstart check: {report.model}{c['end']} — {verdict} "
             f"({n_err} errors, {n_warn} warnings)",
             f"family: {report.family}; inputs: {report.inputs}; {report.n_inits} inits "
             f"({report.reinit.split(' (')[0]}); {report.mode} mode; {report.seconds:.2f} s"]
    rows = site_table(report)
    header = f"{'#':>4} {'site':<18} {'type':<16} {'act':<10} {'width':>6} {'σ_w':>6} {'M_j':>9} {'theory':>9} " \
             f"{'Var logM':>9} {'theory':>8} {'grad²':>9} {'dead':>5}"
    lines.append(header)
    shown = _rows_shown(len(rows), max_rows)
    prev = -1
    for i in shown:
        if i != prev + 1:
            lines.append(f"{'…':>4} ({i - prev - 1} more sites)")
        r = rows[i]
        lines.append(f"{r['index']:>4} {r['site'][:18]:<18} {r['type'][:16]:<16} {str(r['activation'])[:10]:<10} "
                     f"{r['width']:>6} {_fmt(r['sigma_w'], '.3f'):>6} {_fmt(r['M'], '.3g'):>9} "
                     f"{_fmt(r['M_theory'], '.3g'):>9} {_fmt(r['var_log_M'], '.3g'):>9} "
                     f"{_fmt(r['var_log_M_theory'], '.3g'):>8} {_fmt(r['G'], '.3g'):>9} {_fmt(r['dead'], '.0%'):>5}")
        prev = i
    st, pr = report.stats, report.predicted_stats
    if st.get("depth", 0) >= 1:
        lines.append(f"FM1 drift {_fmt(st.get('fm1_drift'))} nats (theory {_fmt(pr.get('fm1_drift'))}); "
                     f"FM2 Var log M_d {_fmt(st.get('fm2_var'))} (theory {_fmt(pr.get('fm2_var'))}, "
                     f"5β = {_fmt(5 * report.beta)}); log G_first/G_last {_fmt(st.get('grad_log_ratio'))} "
                     f"(theory {_fmt(pr.get('grad_log_ratio'))}); isometry Var(λ)/m₁² "
                     f"{_fmt(report.jacobian_relvar)} (theory {_fmt(pr.get('isometry_relvar'))})")
    law = family_line(report)
    if law:
        lines.append(law)
    lines.append("findings:" if fs else f"findings: {c['ok']}none{c['end']}")
    for f in fs:
        col = c[f.severity]
        lines.append(f"  {col}{_MARK[f.severity]} [{f.severity}] {f.category}{c['end']} at {f.layer}: {f.message}")
        lines.append(f"      threshold {_fmt(f.threshold)}, predicted {_fmt(f.predicted)}; remedy: {f.remedy}")
    for note in report.notes[:6]:
        lines.append(f"  note: {note}")
    if len(report.notes) > 6:
        lines.append(f"  note: … {len(report.notes) - 6} more notes in the JSON/HTML report")
    return "\n".join(lines)


def plot_report(report, ax=None):
    """The signal-propagation figure; ``ax``: 4 axes (else a new 2×2 figure). Returns ``(fig, axes)``."""
    with _quiet():
        return _plot_report(report, ax)


def _plot_report(report, ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
        axes = axes.ravel()
    else:
        axes = np.ravel(ax)
        fig = axes[0].figure
        if axes.size < 4:
            raise ValueError(f"plot needs 4 axes (lengths, gradients, log-variance, spectrum), got {axes.size}")
    idx = report.main_idx
    depth = np.arange(1, len(idx) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logm = np.log(report.sq[..., idx]) if idx else np.zeros((0, 0, 0))
        logg = np.log(report.grad[..., idx]) if idx else np.zeros((0, 0, 0))
    a = axes[0]
    for i in range(logm.shape[0]):
        a.plot(depth, np.nanmean(logm[i], axis=0), color="C0", alpha=0.3, lw=0.8)
    if logm.size:
        a.plot(depth, np.log(np.nanmean(report.sq[..., idx], axis=(0, 1))), "C0-", lw=2, label="measured log mean M_j")
    m_pred = np.asarray(report.theory.get("m_pred", []), float)
    if m_pred.size and np.any(np.isfinite(m_pred)):
        lv = np.asarray(report.theory.get("log_var_pred", []), float)
        a.plot(depth, np.log(m_pred), "k--", label="theory log E[M_j]")
        if lv.size and np.any(np.isfinite(lv)):
            # log M_j ≈ N(log E[M_j] − Var/2, Var) (Hanin & Rolnick 2018, Thm 5; lognormal approximation)
            sd, centre = np.sqrt(lv), np.log(m_pred) - lv / 2
            a.fill_between(depth, centre - sd, centre + sd, color="k", alpha=0.12, label="theory log M_j: mean ± sd")
    a.set(xlabel="site j (main path)", ylabel="log M_j", title="squared length per init (FM1)")
    a.legend(fontsize=8) if a.get_legend_handles_labels()[0] else None
    a = axes[1]
    if logg.size:
        a.plot(depth, np.log(np.nanmean(report.grad[..., idx], axis=(0, 1))), "C1-", label="measured log mean G_j")
        back = np.asarray(report.theory.get("back_ratio", []), float)
        if back.size >= 2 and np.all(np.isfinite(back[1:])):
            anchor = math.log(np.nanmean(report.grad[..., idx[-1]]))
            pred = anchor + np.concatenate([np.cumsum(np.log(back[1:])[::-1])[::-1], [0.0]])
            a.plot(depth, pred, "k--", label="theory (Π χ)")
        a.legend(fontsize=8)
    a.set(xlabel="site j", ylabel="log ‖∂ℓ/∂x_j‖²", title="gradient length")
    a = axes[2]
    if logm.size and logm.shape[0] > 1:
        var = np.nanmean(np.nanvar(logm, axis=0, ddof=1), axis=0)
        a.plot(depth, var, "C2o-", ms=3, label="measured Var log M_j")
        beta = np.cumsum([1.0 / report.sites[j]["width"] if report.sites[j]["activation"] else 0.0 for j in idx])
        a.plot(depth, 5 * beta, "k:", label="5β_j")
        a.axhline(report.thresholds.get("fm2_var", 10.0), color="C3", lw=0.8, label="FM2 threshold")
        a.legend(fontsize=8)
    a.set(xlabel="site j", ylabel="Var log M_j", title="fluctuation across inits (FM2)")
    a = axes[3]
    if report.jacobian:
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
        a.legend(fontsize=8, loc="upper right")
    else:
        a.text(0.5, 0.5, "Jacobian not measured", ha="center", va="center", transform=a.transAxes)
    a.set(xlabel="log₁₀(λ / mean λ), λ eigenvalues of JJᵀ", ylabel="density",
          title="Jacobian spectrum (isometry: all λ near the mean)")
    fig.suptitle(f"{report.model}: {report.verdict}")
    fig.tight_layout()
    return fig, axes


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


def _figure_png(report) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, _ = plot_report(report)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def report_html(report, path=None, full_page: bool = True) -> str:
    """A self-contained HTML page (embedded PNG, inline CSS); written to ``path`` when given."""
    esc = _html.escape
    colors = {"error": "#c0392b", "warning": "#b9770e", "info": "#2471a3"}
    items = "".join(f"<li style='color:{colors[f.severity]}'><b>[{esc(f.severity)}] {esc(f.category)}</b> at "
                    f"<code>{esc(f.layer)}</code>: {esc(f.message)}<br><small>measured {_fmt(f.measured)}, "
                    f"threshold {_fmt(f.threshold)}, predicted {_fmt(f.predicted)}. Remedy: {esc(f.remedy)}"
                    f"</small></li>" for f in report.findings) or "<li>none</li>"
    recs = "".join(f"<li>{esc(str(r))}</li>" for r in report.recommend()) or "<li>none needed</li>"
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in ("#", "site", "type", "act", "width", "σ_w", "M_j", "theory",
                                                       "Var log M", "theory", "grad²", "dead")) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
        r["index"], r["site"], r["type"], r["activation"], r["width"], _fmt(r["sigma_w"], ".3f"), _fmt(r["M"]),
        _fmt(r["M_theory"]), _fmt(r["var_log_M"]), _fmt(r["var_log_M_theory"]), _fmt(r["G"]),
        _fmt(r["dead"], ".0%"))) + "</tr>" for r in site_table(report))
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
    verdict = report.verdict
    content = (f"<div class='deepstart-report'><h2>deepstart check: {esc(report.model)} — {verdict}</h2>"
               f"<p>inputs: {esc(report.inputs)}; {report.n_inits} inits ({esc(report.reinit)}); measured in "
               f"{esc(report.mode)} mode via {esc(report.path)}.</p><p>family: {esc(report.family)} "
               f"(laws: docs/laws.md)"
               f"{'; ' + esc(family_line(report).split(': ', 1)[1]) if family_line(report) else ''}</p>"
               f"<h3>Findings</h3><ul>{items}</ul>"
               f"<h3>Recommendations</h3><ol>{recs}</ol>"
               f"<img alt='signal propagation' src='data:image/png;base64,{_figure_png(report)}'/>"
               f"<h3>Main path</h3><table>{head}{body}</table><h3>Notes</h3><ul>{notes}</ul></div>")
    if full_page:
        content = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>deepstart check</title><style>"
                   "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
                   "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head>"
                   f"<body>{content}</body></html>")
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(content)
    return content
