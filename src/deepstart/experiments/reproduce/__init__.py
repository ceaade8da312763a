"""Paper reproductions: ``deepstart reproduce PAPER [--quick|--full]``.

Each paper module exposes ``PAPER``, ``TITLE``, ``CITATION``, ``SIZES`` (one preset per mode: ``"tiny"`` for tests,
seconds; ``"quick"`` ≈ 10 minutes per paper on 2 CPU cores, reduced depths/widths/subsets, every figure titled
"quick: reduced sizes"; ``"full"``: the papers' sizes) and ``run(mode, *, store, backend, seed, ...) -> PaperReport``.
Signal-propagation simulations run first (theory + plain batched torch forward passes); training goes through the
sweep store (:func:`deepstart.experiments.runners.run_sweep`), so a rerun with the same ``store`` resumes.

Testing and CI: every reproduction runs at ``tiny`` sizes in ``tests/experiments/test_reproduce_papers.py`` (seconds,
toy data). The ``--quick`` runs are *not* a CI step. Measured from an empty store on an idle 2-core machine
(2026-12-01): hanin-rolnick 103 s, sussillo-abbott 29 s, gurbuzbalaban-hu 181 s, pennington 76 s, about 6.5 minutes
together (several times longer on shared cores: hanin-rolnick took 32 minutes beside four other jobs). That would
fit CI's budget, but CI runs exactly the README's test command, which should stay a few minutes; the quick runs are
made by hand to produce the gallery, and a rerun against the same store resumes (training is not repeated)::

    deepstart reproduce all --quick --out docs/reproductions --gallery docs/reproductions.md

Example::

    from deepstart.experiments.reproduce import reproduce
    reports = reproduce("hanin-rolnick", mode="quick", out="out/", store="out/results.db")
"""
from __future__ import annotations

import importlib
from pathlib import Path

from deepstart.experiments.reproduce._common import MODES, check_mode
from deepstart.experiments.reproduce.claims import STATUSES, Claim, judge
from deepstart.experiments.reproduce.report import Figure, PaperReport

__all__ = ["PAPERS", "MODES", "reproduce", "run_paper", "paper_module", "write_gallery", "Claim", "judge",
           "STATUSES", "PaperReport", "Figure"]

PAPERS = {
    "hanin-rolnick": "deepstart.experiments.reproduce.hanin_rolnick",
    "sussillo-abbott": "deepstart.experiments.reproduce.sussillo_abbott",
    "gurbuzbalaban-hu": "deepstart.experiments.reproduce.gurbuzbalaban_hu",
    "pennington": "deepstart.experiments.reproduce.pennington",
}


def paper_module(paper: str):
    """The module reproducing ``paper`` (a key of :data:`PAPERS`)."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; valid: {', '.join(PAPERS)} or 'all'")
    return importlib.import_module(PAPERS[paper])


def run_paper(paper: str, mode: str = "quick", *, store=None, backend: str = "local", seed: int = 0,
              progress: bool = False, workers: int = 1) -> PaperReport:
    """Run one reproduction and return its report (nothing is written except training results to ``store``)."""
    return paper_module(paper).run(check_mode(mode), store=store, backend=backend, seed=seed, progress=progress,
                                   workers=workers)


def reproduce(paper: str = "all", mode: str = "quick", *, out=None, store=None, backend: str = "local", seed: int = 0,
              progress: bool = False, workers: int = 1) -> list[PaperReport]:
    """Run ``paper`` (or ``"all"``) and, if ``out`` is given, write ``PAPER.html``, ``PAPER.md``, ``PAPER.json`` and the
    PNGs there plus ``index.md`` (all fragments, for the gallery). ``store`` defaults to ``out/results.db``."""
    check_mode(mode)
    papers = list(PAPERS) if paper == "all" else [paper]
    for p in papers:
        paper_module(p)  # fail early on an unknown name
    if store is None and out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        store = Path(out) / "results.db"
    reports = [run_paper(p, mode, store=store, backend=backend, seed=seed, progress=progress, workers=workers)
               for p in papers]
    if out is not None:
        for r in reports:
            r.write(out)
        write_gallery(reports, Path(out) / "index.md")
    return reports


def write_gallery(reports, path, *, image_prefix: str = "") -> Path:
    """Concatenate the reports' Markdown fragments under one heading (the gallery ``docs/reproductions.md``)."""
    path = Path(path)
    lines = ["# Reproductions", "", "Produced by `deepstart reproduce all --quick --out DIR`; every figure of a "
             "quick run uses reduced sizes and says so in its title. Status rules: see "
             "`deepstart.experiments.reproduce.claims`.", ""]
    for r in reports:
        counts = ", ".join(f"{n} {s}" for s, n in r.status_counts().items())
        lines += [f"- [{r.title}](#{r.paper}) — {counts}"]
    lines.append("")
    text = "\n".join(lines) + "\n" + "\n".join(f'<a id="{r.paper}"></a>\n\n' + r.to_markdown(image_prefix)
                                              for r in reports)
    path.write_text(text, encoding="utf-8")
    return path
