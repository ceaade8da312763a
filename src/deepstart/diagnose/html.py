"""Views of a :class:`~deepstart.diagnose.report.Report`: terminal table, signal-propagation figure, HTML page.

The figure (``Report.plot``) has the panels that apply to the model (:mod:`deepstart.diagnose.panels`): M_j over
depth with the theory band (mean field, ± sd from the Hanin–Rolnick log-variance); gradient length over depth with
the χ-product prediction; Var log M_j against 5β_j and the FM2 threshold (where a stretch is judged by FM2); the
Jacobian's eigenvalues λ = σ² of JJᵀ against the theory (when measured); then one panel per part law (branch gain,
stream length, token cosine, attention entropy, norm input scale, recurrent gain), each with its limit. Every site
axis, the table's # and the findings use one index: the main-path site j = 1..D. The HTML page is self-contained:
the figure is an embedded PNG, no scripts, no network.
"""
from __future__ import annotations

import html as _html
import contextlib
import math
import os
import warnings

import numpy as np

from deepstart.diagnose.panels import site_ref

__all__ = ["COLUMNS", "render_text", "report_html", "site_table", "plot_report", "plot_finding"]

_COLORS = {"error": "\033[31m", "warning": "\033[33m", "info": "\033[36m", "ok": "\033[32m", "end": "\033[0m",
           "bold": "\033[1m"}
_KEY = ("M_j = ‖x_j‖²/n_j (mean over inputs, inits); theory = mean field; Var = Var log M_j across inits; "
        "grad² = ‖∂ℓ/∂x_j‖²;", "σ_w = weight std·√fan_in; dead = units 0 on every input (≤ 50% is the law for "
        "ReLU at init; ! above the warning threshold); bb: = activation the theory does not know (measured, not "
        "predicted); the HTML report has the full legend")
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
        kind = {"layer": "", "norm": " (norm)", "block": " (block)", "pool": " (pool)"}[s["kind"]]
        act = s["activation"] or ("–" if s["kind"] != "block" else
                                  "η=?" if s["eta"] is None else f"η={s['eta']:.3g}")
        rows.append({"index": k + 1, "site": s["name"], "type": s["module_type"] + kind,
                     "activation": act.replace("blackbox:", "bb:"),
                     "width": s["width"], "sigma_w": s["sigma_w"], "M": m_meas[j],
                     "M_theory": m_pred[k] if k < m_pred.size else math.nan, "var_log_M": lv[j],
                     "var_log_M_theory": lv_pred[k] if k < lv_pred.size else math.nan, "G": g_meas[j],
                     "dead": dead[j] if _zeros_possible(s) else math.nan})
    return rows


def _zeros_possible(site) -> bool:
    """Whether "dead" applies: a layer followed by an activation (a norm or a residual stream is never 0 by design)."""
    return site["kind"] == "layer" and bool(site["activation"])


def _dead_cell(report, value) -> str:
    """The dead fraction, with ``!`` above the warning threshold (``thresholds['dead_fraction']``)."""
    text = _fmt(value, ".0%")
    return text + "!" if math.isfinite(value) and value > report.thresholds.get("dead_fraction", 0.9) else text


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
             f"({report.reinit.split(' (')[0]}); {report.mode} mode; {report.seconds:.2f} s"
             f"{f' on {report.threads} torch thread' + 's' * (report.threads != 1) if report.threads else ''}"]
    rows = site_table(report)
    header = f"{'#':>4} {'site':<18} {'type':<16} {'act':<10} {'width':>6} {'σ_w':>6} {'M_j':>9} {'M_j theory':>10} " \
             f"{'Var logM':>9} {'Var theory':>10} {'grad²':>9} {'dead':>5}"
    lines.append(header)
    shown = _rows_shown(len(rows), max_rows)
    prev = -1
    for i in shown:
        if i != prev + 1:
            lines.append(f"{'…':>4} ({i - prev - 1} more sites)")
        r = rows[i]
        lines.append(f"{r['index']:>4} {r['site'][:18]:<18} {r['type'][:16]:<16} {str(r['activation'])[:10]:<10} "
                     f"{r['width']:>6} {_fmt(r['sigma_w'], '.3f'):>6} {_fmt(r['M'], '.3g'):>9} "
                     f"{_fmt(r['M_theory'], '.3g'):>10} {_fmt(r['var_log_M'], '.3g'):>9} "
                     f"{_fmt(r['var_log_M_theory'], '.3g'):>10} {_fmt(r['G'], '.3g'):>9} "
                     f"{_dead_cell(report, r['dead']):>5}")
        prev = i
    if rows:
        lines += [f"{'':>4} {k}" for k in _KEY]
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
        lines.append(f"  {col}{_MARK[f.severity]} [{f.severity}] {f.category}{c['end']} at "
                     f"{site_ref(report, f.layer)}: {f.message}")
        lines.append(f"      threshold {_fmt(f.threshold)}, predicted {_fmt(f.predicted)}; remedy: {f.remedy}")
    for note in report.notes[:6]:
        lines.append(f"  note: {note}")
    if len(report.notes) > 6:
        lines.append(f"  note: … {len(report.notes) - 6} more notes in the JSON/HTML report")
    return "\n".join(lines)


COLUMNS = (
    ("#", "position j along the main path (1 = the first site after the input)"),
    ("site", "the module (its name in named_modules) or op whose output is measured; a layer is measured after "
             "the elementwise ops that follow it, i.e. at the post-activation x_j"),
    ("type", "module type; (norm) a normalization, (block) a residual addition y = x + branch(x) measured on the "
             "stream"),
    ("act", "the elementwise ops after the layer, as the theory names them; bb:<label> a black box the theory "
            "does not know (measured like the others, its gain taken from the tensors, no prediction); "
            "η for a block is the branch scale; – none"),
    ("width", "n_j, features of the measured tensor (hidden size for [B, T, C], channels for [B, C, H, W])"),
    ("σ_w", "weight standard deviation × √fan_in (1: LeCun/Glorot at equal fans, √2 ≈ 1.414: He)"),
    ("M_j", "‖x_j‖²/n_j, the squared length per element, mean over inputs and inits (Hanin & Rolnick 2018)"),
    ("M_j theory", "the mean-field prediction of E[M_j] (Poole et al. 2016); – where the site does not fit the "
                   "theory (see the notes)"),
    ("Var log M", "variance of log M_j across inits, mean over inputs: how much one init differs from another "
                  "(FM2)"),
    ("Var log M theory", "Σ_{i≤j} Var log ξ_i (Hanin & Rolnick 2018, Thm 5; exact for Gaussian weights and "
                         "ReLU/linear layers)"),
    ("grad²", "‖∂ℓ/∂x_j‖², the squared length of the backpropagated gradient of ℓ = ⟨u, f(x)⟩ for a fixed Gaussian "
              "u (or the loss given), mean over inputs and inits"),
    ("dead", "fraction of the layer's units that are exactly 0 for every input of the batch, mean over inits (– "
             "where no activation can give exact zeros). Not a failure by itself: with weights and pre-activations "
             "symmetric about 0, a ReLU unit is off for every input with probability at most ½ (off for all ⇒ off "
             "for the first), reached as deep nets correlate their inputs, so up to ≈ 50% is the law at init. A "
             "warning (marked !) only above the dead_fraction threshold (90%): a bias far below 0 or a collapsed "
             "input"),
)


def _links_html(link) -> str:
    """``link``: None, one ``(text, href)`` or a sequence of them."""
    if not link:
        return ""
    pairs = [link] if isinstance(link[0], str) else list(link)
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise TypeError(f"link must be (text, href) or a sequence of them, got {pair!r}")
    return "<p class='links'>" + " · ".join(f"<a href='{_html.escape(h, quote=True)}'>{_html.escape(t)}</a>"
                                             for t, h in pairs) + "</p>"


def _finding_html(report, f, figures: dict, max_figures: int) -> str:
    colors = {"error": "#c0392b", "warning": "#b9770e", "info": "#2471a3"}
    esc = _html.escape
    text = (f"<b>[{esc(f.severity)}] {esc(f.category)}</b> at <code>{esc(site_ref(report, f.layer))}</code>: "
            f"{esc(f.message)}<br>"
            f"<small>measured {_fmt(f.measured)}, threshold {_fmt(f.threshold)}, predicted {_fmt(f.predicted)}. "
            f"Remedy: {esc(f.remedy)}</small>")
    key = (f.category, f.layer)
    if key not in figures and len(figures) < max_figures:
        from deepstart.diagnose.plots import _png

        fig, _ = plot_finding(report, f)
        figures[key] = _png(fig, 100) if fig is not None else None
    img = (f"<br><img class='finding' alt='{esc(f.category)} at {esc(f.layer)}' "
           f"src='data:image/png;base64,{figures[key]}'/>" if figures.get(key) else "")
    return f"<li style='color:{colors[f.severity]}'>{text}{img}</li>"


def plot_report(report, ax=None):
    """The signal-propagation figure (:func:`deepstart.diagnose.plots.plot_report`)."""
    from deepstart.diagnose.plots import plot_report as plot

    return plot(report, ax=ax)


def plot_finding(report, finding, ax=None):
    """One finding's panel (:func:`deepstart.diagnose.plots.plot_finding`)."""
    from deepstart.diagnose.plots import plot_finding as plot

    return plot(report, finding, ax=ax)


def _probe_html(report) -> str:
    """The trainability probe's section (``check(probe=True)``): its summary and the loss curves of every init."""
    if report.probe is None:
        return ""
    from deepstart.diagnose.plots import _png
    from deepstart.probe import ProbeResult

    result = ProbeResult.from_dict(report.probe)
    return (f"<h3>Trainability probe</h3><pre>{_html.escape(result.summary())}</pre>"
            f"<img alt='probe loss curves' src='data:image/png;base64,{_png(result.plot(), 90)}'/>")


# the page never scrolls sideways: the table scrolls in its own box, long legend words wrap
_CSS = (".deepstart-report{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 12px;"
        "overflow-wrap:anywhere}.deepstart-report .scroll{overflow-x:auto;max-width:100%}"
        ".deepstart-report table{border-collapse:collapse;font-size:12px}"
        ".deepstart-report td,.deepstart-report th{border:1px solid #ccc;padding:2px 6px;text-align:right;"
        "overflow-wrap:normal}.deepstart-report table.panels td{text-align:left}"
        ".deepstart-report dl.legend{font-size:12px;display:grid;grid-template-columns:max-content minmax(0,1fr);"
        "gap:2px 12px}.deepstart-report dl.legend dt{font-weight:bold}.deepstart-report dl.legend dd{margin:0}"
        ".deepstart-report img{max-width:100%;height:auto}.deepstart-report pre{overflow-x:auto}")


def _panels_html(report) -> str:
    """What each panel of the figure shows and the law it is read against (one row per panel)."""
    from deepstart.diagnose.panels import mean_field_panels, part_series

    esc = _html.escape
    rows = [(MEAN_FIELD_PANELS[k][0], MEAN_FIELD_PANELS[k][1], "") for k in mean_field_panels(report)]
    for sr in part_series(report):
        rows.append((sr.title, sr.law, "; ".join(f"{sev} {side} {v:.3g}" for v, side, sev in sr.limits)))
    if not rows:
        return ""
    body = "".join(f"<tr><td>{esc(t)}</td><td>{esc(law)}</td><td>{esc(lim)}</td></tr>" for t, law, lim in rows)
    return ("<div class='scroll'><table class='panels'><tr><th>panel</th><th>what it shows, the law</th>"
            f"<th>limit</th></tr>{body}</table></div>")


MEAN_FIELD_PANELS = {
    "lengths": ("squared length per init (FM1)", "log M_j along the main path, one line per init; mean-field "
                "prediction ± sd where the theory applies (Hanin & Rolnick 2018, Thm 5; Poole et al. 2016)"),
    "gradients": ("gradient length per init", "log ‖∂ℓ/∂x_j‖² along the main path; the χ-product prediction "
                  "where the theory applies (Schoenholz et al. 2017)"),
    "fm2": ("fluctuation across inits (FM2)", "Var log M_j across inits against 5β_j and the FM2 threshold "
            "(Hanin & Rolnick 2018, Thm 5)"),
    "spectrum": ("Jacobian spectrum", "eigenvalues λ = σ² of JJᵀ against the free-probability density "
                 "(Pennington et al. 2017); isometry: all λ near the mean"),
}


def report_html(report, path=None, full_page: bool = True, link=None, finding_figures: int = 6) -> str:
    """A self-contained HTML page (embedded PNGs, inline CSS, no scripts); written to ``path`` when given.

    ``link``: ``(text, href)`` or a list of them, shown at the top (``deepstart check --fix`` links the original and
    the fixed model's pages to each other). ``finding_figures``: at most this many small figures, one per finding
    (its panel of the signal-propagation figure, the finding's site marked); 0 for none.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    esc = _html.escape
    figures: dict = {}
    items = "".join(_finding_html(report, f, figures, finding_figures) for f in report.findings) or "<li>none</li>"
    # no change to recommend is "none needed" only without findings; else the findings' remedies are the advice
    recs = "".join(f"<li>{esc(str(r))}</li>" for r in report.recommend()) or (
        "<li>none needed</li>" if not report.findings else
        "<li>no change of init to apply: see each finding's remedy</li>")
    head = "<tr>" + "".join(f"<th title='{esc(d)}'>{esc(h)}</th>" for h, d in COLUMNS) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
        r["index"], r["site"], r["type"], r["activation"], r["width"], _fmt(r["sigma_w"], ".3f"), _fmt(r["M"]),
        _fmt(r["M_theory"]), _fmt(r["var_log_M"]), _fmt(r["var_log_M_theory"]), _fmt(r["G"]),
        _dead_cell(report, r["dead"]))) + "</tr>" for r in site_table(report))
    legend = "<dl class='legend'>" + "".join(f"<dt>{esc(h)}</dt><dd>{esc(d)}</dd>" for h, d in COLUMNS) + "</dl>"
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
    law = family_line(report)
    from deepstart.diagnose.plots import _figure_png

    content = (f"<div class='deepstart-report'>{_links_html(link)}"
               f"<h2>deepstart check: {esc(report.model)} — {esc(report.verdict)}</h2>"
               f"<p>inputs: {esc(report.inputs)}; {report.n_inits} inits ({esc(report.reinit)}); measured in "
               f"{esc(report.mode)} mode via {esc(report.path)}"
               f"{f', {report.threads} torch thread' + 's' * (report.threads != 1) if report.threads else ''}.</p>"
               f"<p>family: {esc(report.family)} "
               f"(laws: docs/laws.md){'; ' + esc(law.split(': ', 1)[1]) if law else ''}</p>"
               f"<h3>Findings</h3><ul>{items}</ul>"
               f"<h3>Recommendations</h3><ol>{recs}</ol>"
               f"<h3>Signal propagation and the laws that judged the model</h3>"
               f"<img alt='signal propagation' src='data:image/png;base64,{_figure_png(report)}'/>"
               f"{_panels_html(report)}"
               f"<h3>Main path</h3><div class='scroll'><table>{head}{body}</table></div>"
               f"<h4>Columns</h4>{legend}"
               + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "") + _probe_html(report) + "</div>")
    content = f"<style>{_CSS}</style>{content}"  # scoped: a notebook cell gets the same layout
    if full_page:
        content = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
                   "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                   f"<title>deepstart check: {esc(report.model)} — {esc(report.verdict)}</title></head>"
                   f"<body>{content}</body></html>")
    if path is not None:
        from deepstart._io import atomic_write

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write(path, content)
    return content
