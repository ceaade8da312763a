"""Run ``check`` on the labelled zoo (:mod:`tools.calibration.cases`) and write a markdown table.

Usage (from the repository root): ``python -m tools.calibration [--out FILE] [--n-inits 4] [--quick] [--without-hf]``
or ``python tools/calibration/run.py ...``. Without ``--out`` the table goes to a new temporary folder (printed);
``docs/calibration.md`` is written only when named explicitly.
For every case: the verdict ``check`` gives (family, error and warning findings with their measured values), the
hook-measured truth beside it (stream growth, gradient ratio), and whether the label holds: a stock model must get
no error, a broken one an error in one of its expected categories. The table ends with the false-error and miss
counts the README quotes.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tools`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

__all__ = ["Row", "calibrate", "to_markdown"]


@dataclass
class Row:
    name: str
    label: str          # "stock" or "broken"
    family: str
    verdict: str
    errors: list        # (category, measured)
    warnings: list
    ok: bool
    seconds: float
    truth: dict
    why: str


def _run(case, n_inits: int, seed: int):
    from deepstart.diagnose import check
    from tools.calibration.cases import truth

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = case.build()
    started = time.perf_counter()
    report = check(model, case.inputs(g), factory=case.build, n_inits=n_inits, generator=g, jacobian=False)
    seconds = time.perf_counter() - started
    errors = [(f.category, f.measured) for f in report.findings if f.severity == "error"]
    warnings = [(f.category, f.measured) for f in report.findings if f.severity == "warning"]
    ok = not errors if not case.expect else any(c in case.expect for c, _ in errors)
    return Row(case.name, "broken" if case.expect else "stock", report.family, report.verdict, errors, warnings,
               ok, seconds, truth(case, n_inits=n_inits, seed=seed), case.why)


def calibrate(cases=None, *, n_inits: int = 4, seed: int = 0, progress: bool = True) -> list:
    """Rows for ``cases`` (default: every case of the zoo)."""
    from tools.calibration.cases import CASES

    cases = list(CASES.values()) if cases is None else cases
    rows = []
    for case in cases:
        if progress:
            print(f"calibrate: {case.name} …", flush=True)
        rows.append(_run(case, n_inits, seed))
    return rows


def _findings(items) -> str:
    return ", ".join(f"{c} {v:.3g}" for c, v in items) if items else "–"


def to_markdown(rows, n_inits: int) -> str:
    stock = [r for r in rows if r.label == "stock"]
    broken = [r for r in rows if r.label == "broken"]
    false_errors = sum(not r.ok for r in stock)
    misses = sum(not r.ok for r in broken)
    lines = ["# Calibration: `deepstart check` on a labelled zoo", "",
             "Made by `python -m tools.calibration --out docs/calibration.md` "
             f"({n_inits} inits per model, factory re-inits, 2-core CPU). Stock models must get no error-level "
             "finding; broken ones an error in one of their expected categories. *Truth* is measured with plain "
             "forward/backward hooks, no deepstart code (`tools/calibration/truth.py`): the stream's "
             "growth log(M_last/M_first) and log(G_first/G_last) in nats. The laws are in "
             "[`laws.md`](laws.md).", "",
             f"**False errors on stock models: {false_errors} of {len(stock)}. Missed broken models: {misses} of "
             f"{len(broken)}.**", "",
             "| model | label | family | verdict | errors (measured) | warnings (measured) | truth: growth / "
             "grad ratio | check s | label holds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r.truth
        truth = f"{t['stream_growth']:+.2f} / {t['grad_log_ratio']:+.2f}" if math.isfinite(t["stream_growth"]) \
            else "–"
        lines.append(f"| `{r.name}` | {r.label} | {r.family} | {r.verdict} | {_findings(r.errors)} | "
                     f"{_findings(r.warnings)} | {truth} | {r.seconds:.1f} | {'yes' if r.ok else '**no**'} |")
    lines += ["", "What each case is:", ""]
    lines += [f"- `{r.name}`: {r.why}" for r in rows]
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--n-inits", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="skip the cases marked slow")
    parser.add_argument("--without-hf", action="store_true",
                        help="skip the cases built from transformers configs (when transformers is not installed)")
    args = parser.parse_args(argv)
    if not args.without_hf and importlib.util.find_spec("transformers") is None:
        parser.exit(2, "calibration: the zoo's Hugging Face cases need transformers; install it "
                       "(pip install '.[hf]' from the repository) or pass --without-hf to skip them\n")
    out = args.out or Path(tempfile.mkdtemp(prefix="deepstart-calibration-")) / "calibration.md"
    if out.is_dir() or not out.parent.is_dir():
        parser.exit(2, f"calibration: --out {out}: not a file in an existing folder\n")
    from tools.calibration.cases import CASES

    cases = [c for c in CASES.values() if not (args.quick and c.slow)]
    if args.without_hf:
        cases = [c for c in cases if not _needs_transformers(c)]
    rows = calibrate(cases, n_inits=args.n_inits)
    text = to_markdown(rows, args.n_inits)
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"calibration: wrote {out}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
