"""A reproduction's report: figures, settings, claim table; written as self-contained HTML, PNGs and Markdown.

``PaperReport.write(out_dir)`` writes ``PAPER.html`` (figures embedded as base64 PNG, so the file stands alone),
``PAPER_<figure>.png`` and ``PAPER.md`` (figures + claim table, for the gallery ``docs/reproductions.md``).
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from deepstart._io import atomic_write
from deepstart._json import dumps
from deepstart.experiments.reproduce.claims import Claim

__all__ = ["Figure", "PaperReport", "figure_from_matplotlib"]

def machine_text(m: dict) -> str:
    """One line for a report: "Linux x86_64, 2 CPUs, 1 torch thread, load 6.1 (torch 2.x, 2026-12-07 21:30 UTC)"."""
    if not m:
        return "an unrecorded machine (reports before 2026-12-07 did not record it)"
    return (f"{m.get('platform')} {m.get('processor')}, {m.get('cpus')} CPUs, {m.get('torch_threads')} torch "
            f"thread(s), 1-min load {m.get('load_1min')} at the end (torch {m.get('torch')}, {m.get('date')})")


REPRODUCIBILITY = ("Same seed, same machine and torch build: the simulations and the trainings repeat bit for bit. "
                   "Across machines, thread counts or torch builds the training values are not bit-reproducible: "
                   "float32 sums (matmul, convolution, the batched SGD step) are accumulated in an order that depends "
                   "on the BLAS kernel and the thread count, and the rounding differences grow during training, so a "
                   "final accuracy can move by a few hundredths (the audit saw 0.70 become 0.73 on another clone); "
                   "the simulations use float32 (float64 for ResNet lengths) and move in the last digits only. "
                   "Verdicts carry SEs over seeds that cover this.")

_COLORS = {"holds": "#d4f4d4", "partially": "#fff2c2", "does not hold": "#f8d0d0", "not evaluated": "#e6e6e6"}


@dataclass(frozen=True)
class Figure:
    """One PNG figure (``png_b64``: base64 of the PNG bytes) with a caption."""

    name: str
    caption: str
    png_b64: str

    def to_dict(self) -> dict:
        return {"name": self.name, "caption": self.caption, "png_b64": self.png_b64}

    @classmethod
    def from_dict(cls, data: dict) -> Figure:
        return cls(**data)


def figure_from_matplotlib(fig, name: str, caption: str, *, dpi: int = 90) -> Figure:
    """Render a matplotlib figure to PNG, close it, and wrap it as a :class:`Figure`."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Figure(name, caption, base64.b64encode(buf.getvalue()).decode("ascii"))


@dataclass(frozen=True)
class PaperReport:
    """Result of one reproduction (``paper`` a registry key such as ``"hanin-rolnick"``)."""

    paper: str
    title: str
    citation: str
    mode: str
    settings: dict
    claims: tuple = ()
    figures: tuple = ()
    notes: tuple = ()
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def stale(self) -> str | None:
        """Why this report's verdicts are not today's (criteria changed since it was computed), or None."""
        from deepstart.experiments.reproduce.registry import paper_fingerprint

        now = paper_fingerprint(self.paper)
        had = self.extra.get("fingerprint")
        if had == now:
            return None
        return (f"OLD RESULTS: computed under earlier claim criteria ({had or 'no fingerprint: before 2026-12-07'}; "
                f"current {now}) and not regenerated since; see changelog.md for what changed")

    def timing(self) -> str:
        """The wall time with the machine it was measured on."""
        return f"wall time {self.seconds:.0f} s on {machine_text(self.extra.get('machine') or {})}"

    def claim_rows(self) -> list[dict]:
        """The claim table as dicts (claim, statement, measurement, status, threshold)."""
        return [{"claim": c.claim, "statement": c.statement, "measurement": c.measurement, "status": c.status,
                 "threshold": c.threshold} for c in self.claims]

    def status_counts(self) -> dict:
        counts: dict = {}
        for c in self.claims:
            counts[c.status] = counts.get(c.status, 0) + 1
        return counts

    # -- (de)serialization -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"paper": self.paper, "title": self.title, "citation": self.citation, "mode": self.mode,
                "settings": self.settings, "claims": [c.to_dict() for c in self.claims],
                "figures": [f.to_dict() for f in self.figures], "notes": list(self.notes), "seconds": self.seconds,
                "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> PaperReport:
        data = dict(data)
        data["claims"] = tuple(Claim.from_dict(c) for c in data.get("claims", ()))
        data["figures"] = tuple(Figure.from_dict(f) for f in data.get("figures", ()))
        data["notes"] = tuple(data.get("notes", ()))
        return cls(**data)

    # -- output ----------------------------------------------------------------------------------------------
    def to_html(self) -> str:
        e = html.escape
        parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>",
                 "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
                 "td,th{border:1px solid #999;padding:4px 8px;vertical-align:top}img{max-width:100%}</style>"
                 "</head><body>", f"<h1>{e(self.title)}</h1>", f"<p><i>{e(self.citation)}</i></p>",
                 f"<p>Mode: <b>{e(self.mode)}</b>; {e(self.timing())}.</p>",
                 f"<p><b>{e(self.stale())}</b></p>" if self.stale() else "", "<h2>Claims</h2>",
                 "<table class='claims'><tr><th>claim</th><th>paper's statement</th><th>our measurement</th>"
                 "<th>status</th><th>threshold</th></tr>"]
        for row in self.claim_rows():
            color = _COLORS[row["status"]]
            parts.append(f"<tr><td>{e(row['claim'])}</td><td>{e(row['statement'])}</td>"
                         f"<td>{e(row['measurement'])}</td><td style='background:{color}'>{e(row['status'])}</td>"
                         f"<td>{e(row['threshold'])}</td></tr>")
        parts.append("</table><h2>Figures</h2>")
        for f in self.figures:
            parts.append(f"<figure><img alt='{e(f.name)}' src='data:image/png;base64,{f.png_b64}'>"
                         f"<figcaption>{e(f.caption)}</figcaption></figure>")
        parts.append("<h2>Settings</h2><table class='settings'>")
        for k, v in self.settings.items():
            parts.append(f"<tr><th>{e(str(k))}</th><td>{e(json.dumps(v, default=str))}</td></tr>")
        parts.append("</table>")
        if self.notes:
            parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in self.notes) + "</ul>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def to_markdown(self, image_prefix: str = "") -> str:
        """Markdown fragment: heading, figures (PNG links relative to ``image_prefix``), claim table, notes."""
        cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        stale = self.stale()
        lines = [f"## {self.title}", "", f"*{self.citation}* — mode **{self.mode}**, {self.timing()} (training taken "
                 "from a store is not timed again: see the notes).", ""]
        lines += ([f"**{stale}**", ""] if stale else [])
        lines += ["| claim | paper's statement | our measurement | criterion | status |", "|---|---|---|---|---|"]
        lines += [f"| {cell(r['claim'])} | {cell(r['statement'])} | {cell(r['measurement'])} | {cell(r['threshold'])} "
                  f"| **{r['status']}** |" for r in self.claim_rows()]
        lines.append("")
        for f in self.figures:
            lines += [f"![{f.name}]({image_prefix}{self.paper}_{f.name}.png)", "", f"*{cell(f.caption)}*", ""]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, out_dir, *, image_prefix: str = "") -> dict:
        """Write ``PAPER.html``, ``PAPER.md``, ``PAPER.json`` and one PNG per figure into ``out_dir``; return paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"html": out / f"{self.paper}.html", "md": out / f"{self.paper}.md", "json": out / f"{self.paper}.json"}
        atomic_write(paths["html"], self.to_html())
        atomic_write(paths["md"], self.to_markdown(image_prefix))
        slim = self.to_dict()
        slim["figures"] = [{**f, "png_b64": f"{self.paper}_{f['name']}.png"} for f in slim["figures"]]
        atomic_write(paths["json"], dumps(slim, indent=1, default=str))
        for f in self.figures:
            p = out / f"{self.paper}_{f.name}.png"
            atomic_write(p, base64.b64decode(f.png_b64))
            paths[f"png:{f.name}"] = p
        return paths
