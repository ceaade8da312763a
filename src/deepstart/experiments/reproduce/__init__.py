"""Paper reproductions: ``deepstart reproduce PAPER [--quick|--full]``.

Each paper module exposes ``PAPER``, ``TITLE``, ``CITATION``, ``SIZES`` (one preset per mode: ``"tiny"`` for tests,
seconds; ``"quick"`` 3-15 minutes per paper on 2 CPU cores, reduced depths/widths/subsets, every figure titled
"quick: reduced sizes"; ``"full"``: the papers' sizes) and ``run(mode, *, store, backend, seed, ...) -> PaperReport``.
Signal-propagation simulations run first (theory + plain batched torch forward passes); training goes through the
sweep store (:func:`deepstart.experiments.runners.run_sweep`), so a rerun with the same ``store`` resumes.

Testing and CI: every reproduction runs at ``tiny`` sizes in ``tests/experiments/test_reproduce_papers.py`` (seconds,
toy data). The ``--quick`` runs are *not* a CI step. Measured from an empty store (5 seeds per training claim) on a
2-core x86_64 Linux machine, one torch thread per process, shared with other jobs: on 2026-12-05 hanin-rolnick 296 s,
sussillo-abbott 227 s, gurbuzbalaban-hu 822 s, pennington 189 s (load not recorded); on 2026-12-07 at a 1-minute load
of 8–16 (two to four reproductions at once beside seven other engineers' jobs) the training alone took hanin-rolnick
318 s, sussillo-abbott 111 s, pennington 200 s, gurbuzbalaban-hu 3585 s; each report now states its machine,
thread count and load (:func:`deepstart.experiments.reproduce._common.machine`). CI runs exactly the README's test command, which should stay a
few minutes; the quick runs are made by hand to produce the gallery, and a rerun against the same store resumes
(training whose provenance is unchanged is not repeated)::

    deepstart reproduce all --quick --out docs/reproductions --gallery docs/reproductions.md

Safe to rerun: :func:`reproduce` refuses (ValueError) to write into an ``out`` folder holding files it did not write
itself (it lists what it writes in ``out/.deepstart-reproduce.json``) or that git tracks, unless ``overwrite=True`` (the CLI's
``--gallery``, which updates a tracked gallery folder on purpose). ``index.md`` (and the gallery) list every paper
whose report is in ``out``, not only those of the last run. A reproduction whose data is missing still writes what it
computed; its report's ``extra["missing_data"]`` names the datasets to fetch (:func:`missing_data_advice`; the CLI
exits 3). The same seed gives the same numbers on one machine (tested); training results carry a provenance
fingerprint, so a rerun after a code change retrains instead of reusing them (``reuse_stale`` keeps them).

Resumable: the store is listed in ``out``'s manifest before any training, so the same command rerun after an
interruption (Ctrl-C, kill) is accepted and resumes: finished training comes from the store, the rest runs. A folder
holding reports of another size (``--tiny`` into a quick gallery) is refused unless ``force=True`` (CLI ``--force``).
Each report records its claim criteria's fingerprint (:mod:`~deepstart.experiments.reproduce.registry`) and the machine
it ran on; a report computed under other criteria is marked "OLD RESULTS" in the gallery, never shown as current. The
criteria changelog (:mod:`~deepstart.experiments.reproduce.changelog`) is written beside the reports.

Example::

    from deepstart.experiments.reproduce import reproduce
    reports = reproduce("hanin-rolnick", mode="quick", out="out/", store="out/results.db")
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from deepstart._io import atomic_write
from deepstart.experiments.reproduce._common import MODES, check_mode
from deepstart.experiments.reproduce.claims import STATUSES, Claim, judge
from deepstart.experiments.reproduce.report import Figure, PaperReport

__all__ = ["PAPERS", "MODES", "reproduce", "run_paper", "paper_module", "write_gallery", "load_reports",
           "check_out", "check_modes", "missing_data", "missing_data_advice", "MANIFEST", "Claim", "judge", "STATUSES",
           "PaperReport", "Figure"]

MANIFEST = ".deepstart-reproduce.json"  # in an output folder: the files reproduce wrote there

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
              progress: bool = False, workers: int = 1, device=None, reuse_stale: bool = False) -> PaperReport:
    """Run one reproduction and return its report (nothing is written except training results to ``store``).

    ``device``: where training runs (default CPU); ``reuse_stale``: keep stored training results whose provenance
    fingerprint changed (see :func:`deepstart.experiments.runners.run_sweep`). Datasets training could not find are
    listed in the report's ``extra["missing_data"]``."""
    module = paper_module(paper)
    check_mode(mode)
    if backend == "local":
        from deepstart.experiments.train import resolve_device

        device = str(resolve_device(device))  # a bad device fails here, not as "not evaluated" sections
    return module.run(mode, store=store, backend=backend, seed=seed, progress=progress, workers=workers,
                      device=device, reuse_stale=reuse_stale)


def reproduce(paper: str = "all", mode: str = "quick", *, out=None, store=None, backend: str = "local", seed: int = 0,
              progress: bool = False, workers: int = 1, device=None, reuse_stale: bool = False,
              overwrite: bool = False, force: bool = False) -> list[PaperReport]:
    """Run ``paper`` (or ``"all"``) and, if ``out`` is given, write ``PAPER.html``, ``PAPER.md``, ``PAPER.json`` and the
    PNGs there plus ``index.md`` (every paper whose report is in ``out``, for the gallery) and ``changelog.md`` (the
    criteria changelog). ``store`` defaults to ``out/results.db``. ``out`` must be new, empty or written only by
    reproduce (:func:`check_out`) unless ``overwrite``; it must not hold reports of another size mode unless ``force``
    (:func:`check_modes`). The store is listed in ``out``'s manifest before any training, so the same command rerun
    after an interruption resumes from it. ``device``/``reuse_stale``: see :func:`run_paper`."""
    check_mode(mode)
    papers = list(PAPERS) if paper == "all" else [paper]
    for p in papers:
        paper_module(p)  # fail early on an unknown name
    if out is not None:
        check_out(out, overwrite=overwrite)
        check_modes(out, mode, papers, force=force)
    if store is None and out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        store = Path(out) / "results.db"
    if out is not None and store is not None:  # before any training: an interrupted run leaves a store reproduce owns
        Path(out).mkdir(parents=True, exist_ok=True)
        _record_written(out, [Path(f"{store}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")])
    reports = [run_paper(p, mode, store=store, backend=backend, seed=seed, progress=progress, workers=workers,
                         device=device, reuse_stale=reuse_stale) for p in papers]
    if out is not None:
        from deepstart.experiments.reproduce.changelog import changelog_markdown

        written = [p for r in reports for p in r.write(out).values()]
        written.append(write_gallery(reports, Path(out) / "index.md", out=out))
        atomic_write(Path(out) / "changelog.md", changelog_markdown())
        written.append(Path(out) / "changelog.md")
        _record_written(out, written)
    return reports


def check_modes(out, mode: str, papers, *, force: bool = False) -> None:
    """ValueError when ``out`` holds a report of another size mode (tiny, quick, full) than ``mode``, unless ``force``:
    a gallery never mixes sizes silently. Reports of the papers about to be rerun do not count (they are replaced)."""
    if force or not Path(out).is_dir():
        return
    other = sorted(f"{r.paper} ({r.mode})" for r in load_reports(out) if r.mode != mode and r.paper not in papers)
    if other:
        raise ValueError(f"refusing to mix sizes in {out}: it holds {', '.join(other)} and this run is {mode}; "
                         f"use another --out, rerun those papers at --{mode}, or pass --force to mix them on purpose")


def _manifest(out: Path) -> set[str]:
    try:
        return set(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _record_written(out, paths) -> None:
    out = Path(out).resolve()
    names = _manifest(out)
    for p in paths:
        p = Path(p).resolve()
        if p.parent == out:
            names.add(p.name)
    atomic_write(out / MANIFEST, json.dumps({"files": sorted(names)}, indent=1) + "\n")


def check_out(out, *, overwrite: bool = False) -> None:
    """ValueError unless ``out`` is absent, an empty folder, or holds only files reproduce wrote there (listed in
    ``out/.deepstart-reproduce.json``) and git does not track; ``overwrite=True`` (the CLI's ``--gallery``) allows any
    folder."""
    out = Path(out)
    if not out.exists() or overwrite:
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the reports")
    known = _manifest(out) - _tracked(out) | {MANIFEST}
    foreign = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                     if p.is_file() and p.relative_to(out).as_posix() not in known)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ValueError(f"refusing to write into {out}: it holds files that deepstart reproduce did not write or "
                         f"that git tracks ({shown}); "
                         "choose a new or empty --out folder, or pass --gallery PATH to update a gallery folder "
                         "such as docs/reproductions on purpose")


def _tracked(out: Path) -> set:
    """Files under ``out`` that git tracks (relative paths; empty outside a git work tree or without git): a tracked
    gallery is never rewritten by accident, even where reproduce wrote it."""
    import subprocess

    try:
        done = subprocess.run(["git", "ls-files", "-z", "."], cwd=out, capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return set()
    return {name for name in done.stdout.decode("utf-8", "replace").split("\0") if name}


def load_reports(out) -> list[PaperReport]:
    """The reports written into ``out`` (its ``PAPER.json`` files, figures read back from their PNGs), known papers first
    in :data:`PAPERS` order."""
    found = {}
    for path in sorted(Path(out).glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and {"paper", "claims"} <= set(data):
                data["figures"] = [_with_png(f, Path(out)) for f in data.get("figures", ())]
                found[data["paper"]] = PaperReport.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a report of ours
    return _ordered(found)


def _with_png(figure: dict, out: Path) -> dict:
    """A written report names its PNG instead of embedding it: read the PNG back (so the report can be written again)."""
    import base64

    name = figure.get("png_b64", "")
    if name.endswith(".png") and (out / name).is_file():
        return {**figure, "png_b64": base64.b64encode((out / name).read_bytes()).decode("ascii")}
    return figure


def _ordered(by_paper: dict) -> list[PaperReport]:
    order = {p: i for i, p in enumerate(PAPERS)}
    return [by_paper[p] for p in sorted(by_paper, key=lambda p: (order.get(p, len(order)), p))]


def missing_data(reports) -> list[str]:
    """Datasets the reports' training could not find (empty when nothing was missing)."""
    return sorted({d for r in reports for d in r.extra.get("missing_data", ())})


def missing_data_advice(datasets) -> str:
    """One line saying what to fetch for ``datasets`` (from :func:`missing_data`)."""
    fetch = " and ".join(f"`deepstart data fetch {d}`" for d in datasets)
    return (f"data not found: {', '.join(datasets)}; the claims that need it are reported as not evaluated. "
            f"Run {fetch}, or set DEEPSTART_DATA to a folder that holds it, then rerun (finished training resumes)")


def write_gallery(reports, path, *, image_prefix: str = "", out=None) -> Path:
    """Concatenate the reports' Markdown fragments under one heading (the gallery ``docs/reproductions.md``).

    ``out``: a folder of written reports (:func:`load_reports`) merged in, so papers of earlier runs stay listed;
    ``reports`` take precedence over the same paper's report found there."""
    path = Path(path)
    if out is not None:
        reports = _ordered({**{r.paper: r for r in load_reports(out)}, **{r.paper: r for r in reports}})
    from deepstart.experiments.reproduce.report import REPRODUCIBILITY

    stale = [r.paper for r in reports if r.stale()]
    prefix = "" if out is None else os.path.relpath(Path(out).resolve(), path.resolve().parent).replace(os.sep, "/")
    prefix = "" if prefix in ("", ".") else prefix + "/"
    lines = ["# Reproductions", "", "Produced by `deepstart reproduce all --quick --out DIR`; every figure of a "
             "quick run uses reduced sizes and says so in its title. Status rules: see "
             "`deepstart.experiments.reproduce.claims`; each claim states its criterion. Criteria changed after "
             f"earlier runs, some after their results were seen: the [criteria changelog]({prefix}changelog.md) lists "
             "every change with the old criterion and the old result.", "",
             ("**Not regenerated with today's criteria (their verdicts are old results, marked in their section): "
              + ", ".join(stale) + ".**") if stale else "Every section was computed with today's criteria.", "",
             "Wall times are measured on the machine named in each section (platform, CPUs, torch threads and the "
             "load of other jobs at the end of the run); on a shared machine they are upper bounds. " +
             REPRODUCIBILITY, "",
             "Full sizes (`--full`, the papers' own) are not in this gallery. Estimated on 2 CPU cores with one worker: "
             + "; ".join(f"{p} {getattr(paper_module(p), 'FULL_ESTIMATE', 'not estimated')}" for p in PAPERS)
             + ". Training parallelises over "
             "batches of trials: `deepstart reproduce PAPER --full --backend ray --workers N` on a Ray cluster "
             "(`docs/ray.md`); a rerun against the same `--store` resumes.", ""]
    for r in reports:
        counts = ", ".join(f"{n} {s}" for s, n in r.status_counts().items())
        lines += [f"- [{r.title}](#{r.paper}) — {counts} ({r.mode}, {r.timing()})" + (" — OLD RESULTS" if r.stale()
                                                                                      else "")]
    lines.append("")
    text = "\n".join(lines) + "\n" + "\n".join(f'<a id="{r.paper}"></a>\n\n' + r.to_markdown(image_prefix)
                                              for r in reports)
    atomic_write(path, text)
    return path
