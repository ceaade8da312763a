"""Run ``check`` on the labelled zoo (both zoos: :mod:`tools.calibration.cases`, :mod:`tools.calibration.zoo`) and
write a markdown table per half (tuning / held-out) beside the labels.

Usage (from the repository root): ``python -m tools.calibration [--out FILE]
[--half tuning|held-out|all|held-out-N] [--n-inits 4] [--quick] [--without-hf]`` or ``python
tools/calibration/run.py ...``. Without ``--out`` the table goes to a new temporary folder (printed);
``docs/calibration.md`` is written only when named explicitly, and then only below its ``<!-- calibration results
-->`` marker (the method text above it is kept); ``--json FILE`` also writes the rows and counts. ``all`` is the
tuning and held-out halves of the first two zoos; the later held-out zoos (:mod:`tools.calibration.zoos`:
``zoo2.py`` with split ``held-out-2``, ``zoo3.py`` … ) run only when asked for by name (``--half held-out-2``, …), so
that nobody tuning ``check`` sees their verdicts by accident; their tables go below their own markers. For every case:
its label and the label's evidence, the verdict ``check`` gives (error and warning findings with their measured
values, parts reported as not assessed), and the outcome: false error (a healthy model with an error), miss (a broken
model without one), crash.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tools`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from tools.calibration import zoos  # noqa: E402
from tools.calibration.cases import ANY_ERROR  # noqa: E402

LABELS = Path(__file__).with_name("labels.json")
MARKER = "<!-- calibration results -->"
MARKER2 = zoos.marker(2)  # the second held-out zoo's results, below the others
# zoos checked only by name (tools/calibration/zoos.py), and their markers, in order
TAIL = {zoos.split_of(n): zoos.marker(n) for n in zoos.numbers()}
TITLE = {zoos.split_of(n): zoos.title(n) for n in zoos.numbers()}

__all__ = ["Row", "calibrate", "counts", "to_markdown"]


@dataclass
class Row:
    name: str
    split: str          # "tuning", "held-out" (zoo.SPLIT) or "held-out-N" (a later zoo, tools/calibration/zoos.py)
    label: str          # "healthy", "broken", or "disputed"/"unlabelled" (never scored)
    family: str
    verdict: str        # check's verdict, or "CRASH"
    errors: list        # (category, measured)
    warnings: list
    unassessed: list    # messages of findings/notes that say a part was not assessed
    outcome: str        # "ok", "false error", "miss", "crash", "not assessed", "healthy with unassessed part",
    #                     "not scored"
    seconds: float
    evidence: str       # the label's evidence (hook truth, training)
    why: str

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "not scored")


def _evidence(case, n_inits: int, seed: int, labels: dict) -> tuple[str, str]:
    """(label, evidence) of ``case``: the new zoo's from labels.json, the first zoo's from its ``expect`` and the
    hook truth measured now."""
    if case.name in labels:
        e = labels[case.name]
        run = e["training"]
        return e["label"], (f"{'; '.join(e['pathologies']) or 'no hook pathology'}; loss {run['first']:.2f} → "
                            f"{run['last']:.2f} (ref {run['reference']:.2f}, {run['steps']} steps)")
    if hasattr(case, "intended"):  # a new-zoo case without a stored label
        return "unlabelled", "no stored label (run `python -m tools.calibration label`)"
    from tools.calibration.truth import truth

    t = truth(case, n_inits=n_inits, seed=seed)
    growth = f"growth {t['stream_growth']:+.2f}, grad ratio {t['grad_log_ratio']:+.2f}" \
        if math.isfinite(t["stream_growth"]) else "–"
    return ("broken" if case.expect else "healthy"), growth + " (first zoo: labelled by hook truth)"


def _unassessed(report) -> list:
    texts = [f.message for f in report.findings] + [str(n) for n in getattr(report, "notes", ())]
    return [t for t in texts if "not assessed" in t.lower()]


def _outcome(label: str, case, errors, verdict: str, unassessed) -> str:
    if label in ("disputed", "unlabelled"):
        return "not scored"
    if label == "broken":
        wanted = case.expect or ANY_ERROR
        return "ok" if any(c in wanted for c, _ in errors) else "miss"
    if errors:
        return "false error"
    if verdict != "healthy":
        return "not assessed"
    return "healthy with unassessed part" if unassessed else "ok"


def _run(case, n_inits: int, seed: int, labels: dict, split: str) -> Row:
    from deepstart.diagnose import check

    label, evidence = _evidence(case, n_inits, seed, labels)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = case.build()
    started = time.perf_counter()
    try:
        report = check(model, case.inputs(g), factory=case.build, n_inits=n_inits, generator=g, jacobian=False)
    except Exception as e:  # a crash is a result of the calibration, recorded with its message
        msg = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        return Row(case.name, split, label, case.family, "CRASH", [], [], [msg], "crash",
                   time.perf_counter() - started, evidence, case.why)
    seconds = time.perf_counter() - started
    errors = [(f.category, f.measured) for f in report.findings if f.severity == "error"]
    warnings = [(f.category, f.measured) for f in report.findings if f.severity == "warning"]
    unassessed = _unassessed(report)
    return Row(case.name, split, label, case.family, report.verdict, errors, warnings, unassessed,
               _outcome(label, case, errors, report.verdict, unassessed), seconds, evidence, case.why)


HALVES = ("tuning", "held-out", *TAIL)


def _splits() -> dict:
    from tools.calibration.zoo import SPLIT

    return {**SPLIT, **zoos.all_splits()}


def _cases(half: str) -> list:
    """The cases of ``half`` ("all": tuning and held-out; the later held-out zoos only by name)."""
    from tools.calibration.zoo import ALL_CASES, SPLIT

    if half in TAIL:
        return list(zoos.cases(int(half.rsplit("-", 1)[1])).values())
    return [c for c in ALL_CASES.values() if half in ("all", SPLIT[c.name])]


def load_labels(path: Path = LABELS) -> dict:
    """The new zoo's labels (``{case: entry}``) from labels.json, or {} when it is missing."""
    return json.loads(path.read_text(encoding="utf-8"))["cases"] if path.is_file() else {}


def calibrate(cases=None, *, n_inits: int = 4, seed: int = 0, progress: bool = True, labels=None) -> list:
    """Rows for ``cases`` (default: every case of the first two zoos, not the second held-out zoo)."""
    from tools.calibration.zoo import ALL_CASES

    labels = load_labels() if labels is None else labels
    cases = list(ALL_CASES.values()) if cases is None else cases
    splits = _splits()
    rows = []
    for case in cases:
        if progress:
            print(f"calibrate: {case.name} …", flush=True)
        rows.append(_run(case, n_inits, seed, labels, splits.get(case.name, "tuning")))
    return rows


def _findings(items) -> str:
    """``category value`` per category (the value of largest magnitude; ``×n`` when it fired n times)."""
    by = {}
    for c, v in items:
        by.setdefault(c, []).append(v)
    return ", ".join(f"{c} {max(vs, key=lambda v: abs(v) if math.isfinite(v) else -1):.3g}"
                     + (f" ×{len(vs)}" if len(vs) > 1 else "") for c, vs in by.items()) or "–"


def counts(rows) -> dict:
    """Per half: models scored, false errors (of healthy), misses (of broken), crashes, healthy-with-unassessed."""
    out = {}
    for half in HALVES:
        rs = [r for r in rows if r.split == half]
        if not rs and half in TAIL:
            continue
        out[half] = {"models": len(rs), "healthy": sum(r.label == "healthy" for r in rs),
                     "broken": sum(r.label == "broken" for r in rs),
                     "disputed": sum(r.label == "disputed" for r in rs),
                     "false_errors": sum(r.outcome == "false error" for r in rs),
                     "misses": sum(r.outcome == "miss" for r in rs),
                     "crashes": sum(r.outcome == "crash" for r in rs),
                     "not_assessed": sum(r.outcome == "not assessed" for r in rs),
                     "healthy_unassessed": sum(r.outcome == "healthy with unassessed part" for r in rs)}
    return out


def _mark(outcome: str) -> str:
    return outcome if outcome in ("ok", "not scored") else f"**{outcome}**"


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def to_markdown(rows, n_inits: int, title: str = "Results") -> str:
    total = sum(r.seconds for r in rows)
    lines = [f"## {title}", "", f"`check` of commit `{_commit()}` on {len(rows)} models, {total:.0f} s of `check` in all.",
             "", f"Made by `python -m tools.calibration --out FILE` ({n_inits} inits per model, factory re-inits, "
             "`jacobian=False`, 2-core CPU under load). Healthy models must get no error-level finding; broken ones "
             "an error (first zoo: in one of their expected categories); disputed models are not scored.", ""]
    for half, c in counts(rows).items():
        rs = [r for r in rows if r.split == half]
        if not rs:
            continue
        lines += [f"### {half} half", "",
                  f"**{c['models']} models ({c['healthy']} healthy, {c['broken']} broken, {c['disputed']} disputed): "
                  f"false errors {c['false_errors']} of {c['healthy']}, misses {c['misses']} of {c['broken']}, "
                  f"crashes {c['crashes']}, healthy models not assessed {c['not_assessed']}, healthy with an "
                  f"unassessed part {c['healthy_unassessed']}.**", "",
                  "| model | family | label | evidence | check verdict | errors (measured) | warnings (measured) | "
                  "not assessed | check s | outcome |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            na = "; ".join(u.replace("|", "/")[:90] for u in r.unassessed) or "–"
            lines.append(f"| `{r.name}` | {r.family} | {r.label} | {r.evidence} | {r.verdict} | "
                         f"{_findings(r.errors)} | {_findings(r.warnings)} | {na} | {r.seconds:.1f} | "
                         f"{_mark(r.outcome)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def place(old: str, text: str, second: bool | str) -> str:
    """``old`` (a calibration.md) with its results replaced by ``text``: the text above ``MARKER`` is kept; the
    results of a zoo checked only by name (``second``: "held-out-2" or True, "held-out-3", …) go below its marker in
    :data:`TAIL`, the others (``second`` False) between ``MARKER`` and the first of those; each keeps the others."""
    if MARKER not in old:
        old = "# Calibration: `deepstart check` on a labelled zoo\n\n" + MARKER + "\n"
    head, rest = old.split(MARKER, 1)
    tails = {}
    for half, marker in reversed(TAIL.items()):
        if marker in rest:
            rest, tails[half] = rest.split(marker, 1)
    half = "held-out-2" if second is True else second
    if half:
        tails[half] = "\n\n" + text
    else:
        rest = "\n\n" + text
    return head + MARKER + rest.rstrip("\n") + "\n" + "".join(
        f"\n{marker}{tails[h].rstrip()}\n" for h, marker in TAIL.items() if tails.get(h, "").strip())


def _needs_transformers(case) -> bool:
    try:
        with torch.random.fork_rng(devices=[]):
            case.build()
    except ModuleNotFoundError as e:
        if e.name == "transformers":
            return True
        raise
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file to write (default: calibration.md in a new temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and counts to this JSON file")
    parser.add_argument("--n-inits", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="skip the cases marked slow")
    parser.add_argument("--half", choices=("tuning", "held-out", "all", *TAIL), default="all",
                        help="which half of the zoo to check (default: all = tuning and held-out; the later "
                             "held-out zoos only by name, held-out-2 …)")
    parser.add_argument("--without-hf", action="store_true",
                        help="skip the cases built from transformers configs (when transformers is not installed)")
    args = parser.parse_args(argv)
    if not args.without_hf and importlib.util.find_spec("transformers") is None:
        parser.exit(2, "calibration: the zoo's Hugging Face cases need transformers; install it "
                       "(pip install '.[hf]' from the repository) or pass --without-hf to skip them\n")
    out = args.out or Path(tempfile.mkdtemp(prefix="deepstart-calibration-")) / "calibration.md"
    if out.is_dir() or not out.parent.is_dir():
        parser.exit(2, f"calibration: --out {out}: not a file in an existing folder\n")
    cases = [c for c in _cases(args.half) if not (args.quick and c.slow)]
    if args.without_hf:
        cases = [c for c in cases if not _needs_transformers(c)]
    rows = calibrate(cases, n_inits=args.n_inits)
    tail = args.half if args.half in TAIL else False
    text = to_markdown(rows, args.n_inits, TITLE.get(tail, "Results"))
    out.write_text(place(out.read_text(encoding="utf-8") if out.is_file() else "", text, tail), encoding="utf-8")
    if args.json is not None:
        args.json.write_text(json.dumps({"counts": counts(rows), "rows": [asdict(r) for r in rows]}, indent=1) + "\n",
                             encoding="utf-8")
    print(text)
    print(f"calibration: wrote {out}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
