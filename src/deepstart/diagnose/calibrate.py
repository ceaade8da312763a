"""Run ``check`` on the labelled zoo (:mod:`deepstart.diagnose.calibration`) and write ``docs/calibration.md``.

Usage: ``python -m deepstart.diagnose.calibrate [--out docs/calibration.md] [--n-inits 4] [--quick]``.
For every case: the verdict ``check`` gives (family, error and warning findings with their measured values), the
hook-measured truth beside it (stream growth, gradient ratio), and whether the label holds: a stock model must get
no error, a broken one an error in one of its expected categories. The table ends with the false-error and miss
counts the README quotes.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import torch

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
    from deepstart.diagnose.calibration import truth

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
    from deepstart.diagnose.calibration import CASES

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
             "Made by `python -m deepstart.diagnose.calibrate --out docs/calibration.md` "
             f"({n_inits} inits per model, factory re-inits, 2-core CPU). Stock models must get no error-level "
             "finding; broken ones an error in one of their expected categories. *Truth* is measured with plain "
             "forward/backward hooks, no deepstart code (`deepstart.diagnose.calibration.truth`): the stream's "
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/calibration.md")
    parser.add_argument("--n-inits", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="skip the cases marked slow")
    args = parser.parse_args(argv)
    from deepstart.diagnose.calibration import CASES

    cases = [c for c in CASES.values() if not (args.quick and c.slow)]
    rows = calibrate(cases, n_inits=args.n_inits)
    text = to_markdown(rows, args.n_inits)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(text)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
