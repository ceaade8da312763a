"""``check`` beside the trainability probe for every model of the labelled zoo (issue 20): ``python -m tools.calibration
probe-table [--split tuning,held-out] [--cache FILE] [--out FILE]``.

For each case of :data:`tools.calibration.zoo.ALL_CASES` whose split is selected (default: the first zoo, ``tuning``
and ``held-out``; the later zoos' ``held-out-2`` … only when named, so ``check`` never runs on them by accident), ``check``'s verdict (as
``python -m tools.calibration`` computes it: 4 inits, factory re-inits, ``jacobian=False``) and ``deepstart.probe``'s,
with the settings of :data:`SETTINGS`, fixed before the run:

* Adam, lr 1e-3 (1e-2 for models with an ``nn.RNNBase``), :data:`STEPS` steps, :data:`N_INITS` inits of the case's
  factory and as many of its reference, seed 0 — the labels' optimizer and rates (``tools/calibration/train.py``);
* tasks as the labels used: CIFAR-10 (batch 32) for image models, the probe's n-gram task for token models (with
  the head and kind rules of :mod:`deepstart.probe.heads` for backbones, encoder-decoders and bidirectional
  encoders); the first zoo's float-input MLPs get the clusters task, its float-sequence encoders clusters per
  sequence (input ``[16, 64]``);
* the reference (:func:`reference_for`): a Hugging Face model's stock config; otherwise the family's stock sibling
  when it has the same parameters, the case itself when it is stock, else ``"auto"`` (He / critical).

**Agreement rule** (:func:`agree`, written before the run): ``check`` FAILING agrees with a probe verdict of
*stuck*, *slow* or *diverges*; ``check`` healthy agrees with *starts*; a probe *inconclusive* (the reference did
not learn either), ``check`` NOT ASSESSED or a crash is not scored.

Results are cached in ``tools/calibration/probe_table.json`` per case, ``check`` and probe separately, each keyed
by a fingerprint of the case (a hash of the model built under seed 0: names, shapes and values), the settings and
the code it ran (hashes of the library sources it depends on, torch and transformers versions): a rerun computes
only what is missing or stale, never reuses a stale entry. ``--out`` writes the markdown table.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tools`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(__file__).with_name("probe_table.json")
N_INITS, STEPS, SEED = 2, 100, 0
LR, LR_RECURRENT, CIFAR_BATCH = 1e-3, 1e-2, 32
SETTINGS = {"optimizer": "adam", "lr": LR, "lr_recurrent": LR_RECURRENT, "steps": STEPS, "n_inits": N_INITS,
            "seed": SEED, "cifar_batch": CIFAR_BATCH, "check_n_inits": 4}
DEFAULT_SPLITS = ("tuning", "held-out")
_PROBE_CODE = ("src/deepstart/probe", "src/deepstart/experiments", "src/deepstart/init", "src/deepstart/_device.py")
_CHECK_CODE = ("src/deepstart",)


def _hash_paths(paths, exclude=()) -> str:
    h = hashlib.sha256()
    for rel in paths:
        p = ROOT / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            if not any(str(f.relative_to(ROOT)).startswith(e) for e in exclude):
                h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def code_versions() -> dict:
    """Hashes of the sources each half depends on, with the torch/transformers versions."""
    import importlib.metadata as md

    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None
    libs = f"torch {torch.__version__}, transformers {version('transformers')}"
    import inspect

    rules = hashlib.sha256("".join(inspect.getsource(f) for f in (probe_kwargs, reference_for, run_probe))
                           .encode()).hexdigest()[:8]  # this tool's own rules, not its table formatting
    return {"probe": _hash_paths(_PROBE_CODE) + f"+{rules}; " + libs,
            "check": _hash_paths(_CHECK_CODE, exclude=("src/deepstart/probe", "src/deepstart/cli")) + "; " + libs}


def case_fingerprint(case) -> str:
    """A hash of the model ``case.build()`` gives under seed 0 (parameter and buffer names, shapes, values)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = case.build()
    h = hashlib.sha256(case.name.encode())
    for k, v in model.state_dict().items():
        h.update(k.encode() + str(tuple(v.shape)).encode() + v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _sample(case):
    return case.inputs(torch.Generator().manual_seed(0))


def probe_kwargs(case) -> dict:
    """The probe's task, input shape, batch, lr and reference for ``case`` (the rules of the module docstring)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = case.build()
    x = _sample(case)
    first = x[0] if isinstance(x, (tuple, list)) else x
    image = getattr(case, "task", None) == "cifar" or (isinstance(x, dict) and "pixel_values" in x) or \
        (isinstance(first, torch.Tensor) and first.dim() == 4)
    kw = {"lr": LR_RECURRENT if any(isinstance(m, nn.RNNBase) for m in model.modules()) else LR,
          "reference": reference_for(case, model)}
    if image:
        kw.update(task="cifar10", batch_size=CIFAR_BATCH)
    elif isinstance(first, torch.Tensor) and first.is_floating_point():
        kw.update(input_shape=tuple(first.shape[1:]))
    return kw


def reference_for(case, model=None):
    """``"auto"`` for Hugging Face models (their stock config) and broken first-zoo nets (He / critical); the
    case's own factory for a stock case; the family's stock sibling when its parameters are the same."""
    from tools.calibration.cases import _encoder
    from tools.calibration.zoo import NEW_CASES

    if model is None:
        with torch.random.fork_rng(devices=[]):
            model = case.build()
    if getattr(model, "config", None) is not None:
        return "auto"
    if case.name == "pre-ln-12x64-branch-x10":  # the first zoo's one broken encoder: its stock depth-12 form
        return lambda: _encoder(12, True)
    if not hasattr(case, "intended"):
        return case.build if not case.expect else "auto"
    stock = next((c for c in NEW_CASES.values() if c.family == case.family and c.intended == "stock"), None)
    if stock is None or stock.name == case.name:
        return case.build
    with torch.random.fork_rng(devices=[]):
        sibling = stock.build()
    same = [(k, v.shape) for k, v in sibling.named_parameters()] == [(k, v.shape) for k, v in model.named_parameters()]
    return stock.build if same else "auto"


def run_check(case, split: str, labels: dict) -> dict:
    from tools.calibration.run import _run

    row = _run(case, SETTINGS["check_n_inits"], SEED, labels, split)
    return {"label": row.label, "verdict": row.verdict, "errors": [[c, float(v)] for c, v in row.errors],
            "outcome": row.outcome, "seconds": row.seconds, "unassessed": row.unassessed}


def run_probe(case) -> dict:
    from deepstart.probe import probe

    kw = probe_kwargs(case)
    ref = kw["reference"]
    started = time.perf_counter()
    try:
        r = probe(case.build, optimizer="adam", steps=STEPS, n_inits=N_INITS,
                  generator=torch.Generator().manual_seed(SEED), name=case.name, **kw)
    except Exception as e:  # a crash is a result of the table, recorded with its message
        return {"verdict": "CRASH", "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
                "trace": traceback.format_exc()[-1500:], "seconds": time.perf_counter() - started}
    return {"verdict": r.verdict, "counts": r.counts(), "ref_counts": r.counts(r.ref_verdicts) if r.ref_verdicts
            else None, "reference": r.reference, "ratio": r.ratio, "ratio_se": r.ratio_se, "lr": r.lr,
            "task": r.task, "path": r.path, "notes": list(r.notes), "first": _mean(r.loss[:, :5]),
            "last": _mean(r.loss[:, -5:]), "ref_last": _mean(r.ref_loss[:, -5:]) if r.ref_loss is not None else None,
            "baseline": r.baseline, "seconds": time.perf_counter() - started,
            "reference_rule": "auto" if ref == "auto" else ("self" if ref is case.build else "stock sibling")}


def _mean(a) -> float | None:
    v = float(torch.as_tensor(a).nanmean()) if a is not None else None
    return v if v is not None and math.isfinite(v) else None


def agree(check_verdict: str, probe_verdict: str) -> str:
    """The rule fixed before the run: "yes", "no" or "n/a" (not scored)."""
    if probe_verdict in ("inconclusive", "CRASH") or check_verdict not in ("healthy", "FAILING"):
        return "n/a"
    if check_verdict == "FAILING":
        return "yes" if probe_verdict in ("stuck", "slow", "diverges") else "no"
    return "yes" if probe_verdict == "starts" else "no"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"cases": {}}


def _save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# seconds per training step of one init, measured once on the idle machine (1 thread): only for the order of the run
_COST = {"gpt2-12x256": 3.0, "densenet": 0.44, "batchnorm": 0.36, "fixup": 0.24, "skipinit": 0.2, "mbconv-se": 0.18,
         "beit": 0.19, "pre-ln": 0.1, "plain": 0.01}


def _cost_order(cases) -> list:
    """Cheap first, so that a run cut short has covered the most cases (image models cost the most)."""
    def cost(c):
        image = getattr(c, "task", None) == "cifar" or c.name in ("resnet56-cifar", "he-cnn-6x32", "vit-6x192")
        return (_COST.get(c.name) or _COST.get(c.family) or 0.1) + (1.0 if image else 0.0)
    return sorted(cases, key=cost)


def table(splits=DEFAULT_SPLITS, cache: Path = CACHE, only=None, do_probe: bool = True, log=print,
          show_stale: bool = False) -> list:
    """Rows (dicts) for every case of the selected splits; computes what the cache lacks or has stale.
    ``show_stale`` (with ``do_probe=False``: a record of a run made by older code) keeps a stale probe entry in its
    row, marked ``stale_probe`` and shown with its code version by :func:`to_markdown`, never as current."""
    from tools.calibration.run import load_labels
    from tools.calibration.zoo import ALL_CASES, SPLIT

    labels, versions, data = load_labels(), code_versions(), _load(cache)
    cases = [c for c in ALL_CASES.values() if SPLIT.get(c.name, "tuning") in splits and (not only or c.name in only)]
    rows = []
    for case in _cost_order(cases):
        split = SPLIT.get(case.name, "tuning")
        fp = case_fingerprint(case)
        entry = data["cases"].setdefault(case.name, {})
        keys = {"check": [fp, versions["check"], SETTINGS["check_n_inits"], SEED],
                "probe": [fp, versions["probe"], SETTINGS]}
        for part, fn in (("check", lambda: run_check(case, split, labels)), ("probe", lambda: run_probe(case))):
            if part == "probe" and not do_probe:
                continue
            old = entry.get(part)
            if old is not None and old.get("key") == keys[part]:
                continue
            log(f"probe-table: {case.name}: {part}{' (stale entry)' if old else ''} …")
            entry[part] = {"key": keys[part], **fn()}
            _save(cache, data)
        fresh = {part: entry.get(part, {}).get("key") == keys[part] for part in keys}
        c = entry.get("check", {}) if fresh["check"] else {}
        p = entry.get("probe", {}) if fresh["probe"] or show_stale else {}  # stale: never shown unmarked
        rows.append({"name": case.name, "split": split, "label": c.get("label"), "check": c.get("verdict"),
                     "probe": p.get("verdict"), "probe_entry": p, "check_entry": c,
                     "stale_probe": bool(entry.get("probe")) and not fresh["probe"],
                     "agree": agree(c.get("verdict", ""), p.get("verdict", "")) if p else "n/a"})
        if p:
            log(f"probe-table: {case.name}: check {c.get('verdict')}, probe {p.get('verdict')} "
                f"({p.get('seconds', 0):.0f} s)")
    return rows


def _counts(d) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items() if v) if d else "–"


def to_markdown(rows) -> str:
    order = {"tuning": 0, "held-out": 1, "held-out-2": 2}
    rows = sorted(rows, key=lambda r: (order.get(r["split"], 3), r["name"]))
    scored = [r for r in rows if r["agree"] != "n/a"]
    yes = sum(r["agree"] == "yes" for r in scored)
    total = sum(r["probe_entry"].get("seconds", 0) for r in rows)
    lines = [f"**{yes} of {len(scored)} scored cases agree** ({len(rows) - len(scored)} not scored: probe "
             "inconclusive, check not assessed, or a crash); by label: " +
             "; ".join(f"{lab} {sum(r['agree'] == 'yes' for r in scored if r['label'] == lab)}/"
                       f"{sum(1 for r in scored if r['label'] == lab)}" for lab in ("healthy", "broken", "disputed")),
             "", f"Settings: Adam, lr {LR:g} (recurrent {LR_RECURRENT:g}), {STEPS} steps, {N_INITS} inits + "
             f"{N_INITS} reference inits, seed {SEED}; CIFAR-10 batch {CIFAR_BATCH}; probe time {total:.0f} s in all "
             "(one process, 1 thread, shared 2-core machine).", "",
             "| model | split | label | check | probe (inits) | reference | ratio ± SE | agree |",
             "|---|---|---|---|---|---|---|---|"]
    stale = set()
    for r in rows:
        p = r["probe_entry"]
        ratio = f"{p['ratio']:.2f} ± {p['ratio_se']:.2f}" if p.get("ratio") is not None and \
            p.get("ratio_se") is not None and math.isfinite(p["ratio_se"]) else "–"
        probe = f"**{p.get('verdict')}** ({_counts(p.get('counts'))})" if p.get("verdict") != "CRASH" else \
            f"CRASH: {p.get('error', '')[:80]}"
        if p and r.get("stale_probe"):
            probe += " †"
            stale.add(p["key"][1].split(";")[0])
        if not p:
            probe = "stale (code or model changed): rerun" if r.get("stale_probe") else "not run"
        ref = f"{p.get('reference_rule', '')}: {_counts(p.get('ref_counts'))}" if p.get("ref_counts") else "–"
        mark = r["agree"] if r["agree"] != "no" else "**no**"
        lines.append(f"| `{r['name']}` | {r['split']} | {r['label']} | {r['check']} | {probe} | {ref} | {ratio} | "
                     f"{mark} |")
    if stale:
        lines += ["", f"† probe run by older probe code (version {', '.join(sorted(stale))}): a record of that run; "
                      "the current code would recompute it."]
    return "\n".join(lines) + "\n"


MARKERS = ("<!-- probe-table results -->", "<!-- /probe-table results -->")


def write(path: Path, text: str) -> None:
    """The table into ``path``: between its :data:`MARKERS` when it has them (docs/probe.md), else the whole file."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if MARKERS[0] in old and MARKERS[1] in old:
        head, rest = old.split(MARKERS[0], 1)
        text = head + MARKERS[0] + "\n" + text + MARKERS[1] + rest.split(MARKERS[1], 1)[1]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.calibration probe-table", description=__doc__.splitlines()[0])
    parser.add_argument("--split", default=",".join(DEFAULT_SPLITS),
                        help="comma-separated splits (default: tuning,held-out; held-out-2 only when named)")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"results cache (default: {CACHE.name})")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write the table to (docs/probe.md: "
                        "between its probe-table markers)")
    parser.add_argument("--cases", default=None, help="comma-separated case names (default: every case)")
    parser.add_argument("--check-only", action="store_true", help="run check only (seconds), no probe")
    parser.add_argument("--show-stale", action="store_true", help="with --check-only: show probe entries of older "
                        "code, marked † with their code version (a record of that run, not a current result)")
    args = parser.parse_args(argv)
    if args.out is not None and (args.out.is_dir() or not args.out.parent.is_dir()):
        parser.exit(2, f"probe-table: --out {args.out}: not a file in an existing folder\n")
    splits = tuple(s.strip() for s in args.split.split(",") if s.strip())
    only = set(args.cases.split(",")) if args.cases else None
    if args.show_stale and not args.check_only:
        parser.exit(2, "probe-table: --show-stale needs --check-only (a full run recomputes stale entries)\n")
    rows = table(splits, args.cache, only, do_probe=not args.check_only, show_stale=args.show_stale)
    text = to_markdown(rows)
    if args.out is not None:
        write(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
