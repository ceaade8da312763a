"""Label the held-out zoo (:mod:`tools.calibration.zoo`) from hook truth and a short training run, *before* any
``check`` run, and write ``tools/calibration/labels.json`` (``python -m tools.calibration label``; the second
held-out zoo, :mod:`tools.calibration.zoo2`: ``label --zoo 2 --merge --out tools/calibration/labels.json``; every
later zoo ``zoo<N>.py`` (:mod:`tools.calibration.zoos`) with ``--zoo N`` the same way).

The rule (fixed before ``check`` ran on any model of this zoo; see docs/calibration.md):

* **hook pathology** ``P`` (:func:`pathologies`, from :func:`tools.calibration.truth.truth`, 4 inits): any of
  a non-finite activation or gradient; |stream growth| or |gradient log-ratio| beyond the polynomial band
  ``max(2·log n + 1.5, 4)`` nats over ``n`` measured points (growth like depth² is allowed; e^4 for 1-2 links);
  a first block that multiplies the stream's mean square by more than e^5 (branch ≫ stream); a LayerNorm/RMSNorm
  whose input mean square is below 10⁻³ × eps (the norm no longer normalizes);
* **trains** (:func:`tools.calibration.train.short_training`): the loss stays finite and its mean over the last
  10 steps is at least ``MARGIN[task]`` nats below the reference (chance for CIFAR-10 and the audio task, the
  unigram entropy for the bigram task); a broken variant *trains as well* when it also reaches half of its stock sibling's gain
  over the reference;
* label **healthy** when no ``P`` and it trains; **broken** when ``P`` and it does not train as well as its stock
  sibling; otherwise **disputed** (hooks and training disagree): reported, never scored.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from tools.calibration import zoos  # noqa: E402

LABELS = Path(__file__).with_name("labels.json")
MARGIN = {"cifar": 0.15, "lm": 0.5, "seq2seq": 0.5, "speech": 0.5, "audio": 0.15}
N_INITS = 4


def band(n_points: int) -> float:
    """Polynomial band in nats over ``n_points`` measured points (growth like depth² plus slack; ≥ 4)."""
    return max(2 * math.log(n_points) + 1.5, 4.0)


def pathologies(t: dict) -> list[str]:
    """The hook pathologies of truth ``t`` (the rule in the module docstring), as short phrases with values."""
    out, b = [], band(t["n_points"] if "n_points" in t else len(t["points"]))
    if not t["finite"]:
        out.append("non-finite activations or gradients")
    if abs(t["stream_growth"]) > b:
        out.append(f"stream growth {t['stream_growth']:+.1f} nats beyond ±{b:.1f}")
    if abs(t["grad_log_ratio"]) > b:
        out.append(f"gradient log-ratio {t['grad_log_ratio']:+.1f} nats beyond ±{b:.1f}")
    if t["kind"] == "blocks" and t["first_gain"] > 5:
        out.append(f"first block gain {t['first_gain']:+.1f} nats > 5")
    if t["norm_over_eps_min"] < 1e-3:
        out.append(f"norm input {t['norm_over_eps_min']:.1e} × eps < 1e-3")
    return out


def trains(run: dict) -> bool:
    return run["finite"] and run["last"] <= run["reference"] - MARGIN[run["task"]]


def decide(t: dict, run: dict, stock_run: dict | None) -> tuple[str, list[str], bool]:
    """(label, pathologies, trains as well as the stock sibling) for truth ``t`` and training ``run``."""
    found = pathologies(t)
    ok = trains(run)
    if stock_run is not None and ok:
        ok = run["last"] <= stock_run["last"] + 0.5 * (run["reference"] - stock_run["last"])
    if not found and ok:
        return "healthy", found, ok
    if found and not ok:
        return "broken", found, ok
    return "disputed", found, ok


def _json_truth(t: dict) -> dict:
    keep = ("kind", "stream_growth", "grad_log_ratio", "first_gain", "block_gain_max", "norm_over_eps_min",
            "time_grad_log_ratio", "finite", "n_inits")
    return {k: (None if isinstance(t[k], float) and not math.isfinite(t[k]) else t[k]) for k in keep} | {
        "n_points": len(t["points"])}


def _zoo(zoo: int) -> tuple[dict, dict]:
    """(cases, split) of the held-out zoo (``zoo=1``, :mod:`tools.calibration.zoo`) or a later one (``zoo=N``,
    ``tools/calibration/zoo<N>.py``, :mod:`tools.calibration.zoos`)."""
    if zoo >= 2:
        return zoos.cases(zoo), zoos.splits(zoo)
    from tools.calibration.zoo import NEW_CASES, SPLIT

    return NEW_CASES, SPLIT


def label_all(names=None, *, zoo: int = 1, progress: bool = True) -> dict:
    """Truth, training and label of every case of held-out zoo ``zoo`` (stock siblings first), with the split."""
    from tools.calibration.train import STEPS, short_training
    from tools.calibration.truth import truth
    from tools.calibration.zoo import SPLIT_SEED

    torch.set_num_threads(1)
    source, splits = _zoo(zoo)
    cases = [c for c in source.values() if names is None or c.name in names]
    cases.sort(key=lambda c: c.intended != "stock")
    stock_runs, rows = {}, {}
    for case in cases:
        started = time.perf_counter()
        t = truth(case, N_INITS)
        run = short_training(case)
        sibling = None if case.intended == "stock" else stock_runs.get(case.family)
        label, found, ok = decide(t, run, sibling)
        if case.intended == "stock":
            stock_runs[case.family] = run
        rows[case.name] = {"family": case.family, "intended": case.intended, "split": splits[case.name],
                           "label": label, "pathologies": found, "trains": ok, "truth": _json_truth(t),
                           "training": run, "why": case.why, "seconds": time.perf_counter() - started}
        if progress:
            print(f"label: {case.name:32s} {label:9s} {'; '.join(found) or '-'} | loss {run['first']:.2f} → "
                  f"{run['last']:.2f} (ref {run['reference']:.2f}) {rows[case.name]['seconds']:.0f} s", flush=True)
    return {"split_seed": SPLIT_SEED, "steps": dict(STEPS), "margin": MARGIN, "n_inits": N_INITS, "cases": rows}


def merge(stored: dict, new: dict) -> dict:
    """``stored`` (a labels.json dict) with ``new``'s cases added. Stored entries and settings are never changed:
    a case already stored, another ``n_inits``, or a step count/margin that differs for a task both have is a
    ``ValueError``; settings for new tasks are added."""
    clash = sorted(set(stored["cases"]) & set(new["cases"]))
    if clash:
        raise ValueError(f"already labelled: {', '.join(clash)}; stored labels are never relabelled in place")
    if new["n_inits"] != stored["n_inits"] or new["split_seed"] != stored["split_seed"]:
        raise ValueError("n_inits or split_seed differ from the stored labels'; label with the stored settings")
    for key in ("steps", "margin"):
        differ = [k for k, v in new[key].items() if k in stored[key] and stored[key][k] != v]
        if differ:
            raise ValueError(f"{key} for {', '.join(differ)} differ from the stored labels'")
    return {**stored, "steps": {**stored["steps"], **new["steps"]}, "margin": {**stored["margin"], **new["margin"]},
            "cases": {**stored["cases"], **new["cases"]}}


def to_markdown(stored: dict) -> str:
    """The labels table (one row per case, by half) of a labels.json dict."""
    lines = []
    for half in ("tuning", "held-out", *map(zoos.split_of, zoos.numbers())):
        rows = {n: e for n, e in stored["cases"].items() if e["split"] == half}
        if not rows:
            continue
        lines += [f"#### {half} half ({len(rows)} models)", "",
                  "| model | family | built as | label | hook pathologies | training loss first → last (ref) | "
                  "time grad ratio | s |", "|---|---|---|---|---|---|---|---|"]
        for name, e in sorted(rows.items(), key=lambda kv: (kv[1]["family"], kv[1]["intended"] != "stock")):
            run, tg = e["training"], e["truth"]["time_grad_log_ratio"]
            lines.append(f"| `{name}` | {e['family']} | {e['intended']} | **{e['label']}** | "
                         f"{'; '.join(e['pathologies']) or '–'} | {run['first']:.2f} → {run['last']:.2f} "
                         f"({run['reference']:.2f}){'' if run['finite'] else ', non-finite'} | "
                         f"{'–' if tg is None else f'{tg:+.1f}'} | {e['seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: a new temporary folder)")
    parser.add_argument("--only", nargs="*", default=None, help="case names (default: every case of the zoo)")
    parser.add_argument("--zoo", type=int, choices=(1, *zoos.numbers()), default=1,
                        help="1: the held-out zoo (zoo.py); N ≥ 2: the later held-out zoo zoo<N>.py")
    parser.add_argument("--merge", action="store_true",
                        help="add the new labels to the existing --out file, never changing its stored entries")
    parser.add_argument("--markdown", type=Path, default=None, metavar="LABELS_JSON",
                        help="only print the labels table of an existing labels.json")
    args = parser.parse_args(argv)
    if args.markdown is not None:
        print(to_markdown(json.loads(args.markdown.read_text(encoding="utf-8"))))
        return 0
    import tempfile

    out = args.out or Path(tempfile.mkdtemp(prefix="deepstart-labels-")) / "labels.json"
    if args.merge and not out.is_file():
        parser.exit(2, f"label: --merge needs an existing --out file; {out} is not one\n")
    result = label_all(args.only, zoo=args.zoo)
    if args.merge:
        result = merge(json.loads(out.read_text(encoding="utf-8")), result)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"label: wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
