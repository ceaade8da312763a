"""``deepstart check TARGET``: will this model start training? Table, findings, optional fix, HTML/JSON reports.

TARGET is a zoo model with arguments (``mlp:depth=100,width=64,activation=relu,init=glorot``, ``resnet:depth=56,
eta=1``, ``tanh-mlp:depth=200,init=critical(q_star=1/64)``) or ``package.module:factory`` (called without
arguments, returning an ``nn.Module``). Exit code 0 healthy, 1 findings at or above ``--fail-on``, 2 usage errors.
"""
from __future__ import annotations

import os
import sys

FAIL_ON_LEVELS = ("warning", "error")


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="check a model at initialization (FM1, FM2, gradients, isometry)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("target", help="zoo model 'name:key=value,...' (mlp, tanh-mlp, cnn, resnet, transformer) "
                                  "or 'package.module:factory'")
    p.add_argument("--input-shape", help="input shape without the batch dimension, e.g. 3,32,32")
    p.add_argument("--n-inits", type=int, default=8, help="initializations measured (default 8)")
    p.add_argument("--init", help="re-initialize with this scheme (e.g. he, 'critical(activation=tanh,q_star=1/64)')")
    p.add_argument("--batch", type=int, default=8, help="number of Gaussian inputs (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the zoo model, the inputs, the re-inits and the fix "
                                                        "(independent streams derived from it; default 0)")
    p.add_argument("--html", help="write a self-contained HTML report here")
    p.add_argument("--json", help="write the JSON report here ('-': one JSON document on stdout, the tables go to "
                   "stderr). Strict JSON: NaN is null, infinities are \"inf\"/\"-inf\"")
    p.add_argument("--fail-on", default="error",
                   help="exit 1 on findings of these categories (fm1,fm2,gradients,isometry,dead,nonfinite) or at "
                        "or above this severity (warning, error; default error)")
    p.add_argument("--fix", action="store_true", help="apply the best recommendation, re-check, and write the fixed "
                                                      "model's reports beside the original (*.fixed.html/json)")
    p.add_argument("--no-jacobian", action="store_true", help="skip the Jacobian spectrum")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.set_defaults(handler=run)


def _fail_on(text: str):
    from deepstart.diagnose.verdicts import CATEGORIES

    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    if len(items) == 1 and items[0] in FAIL_ON_LEVELS:
        return items[0], None
    bad = [t for t in items if t not in CATEGORIES]
    if bad or not items:
        raise ValueError(f"--fail-on {text!r}: unknown {bad or 'empty value'}; give categories from "
                         f"{', '.join(CATEGORIES)} or one severity from {', '.join(FAIL_ON_LEVELS)}")
    return None, set(items)


def exit_code(report, level, categories) -> int:
    """1 if a finding is at or above ``level`` or (severity ≥ warning) in ``categories``, else 0."""
    for f in report.findings:
        if categories is not None and f.category in categories and f.severity in ("warning", "error"):
            return 1
        if level is not None and f.severity in FAIL_ON_LEVELS[FAIL_ON_LEVELS.index(level):]:
            return 1
    return 0


def _load(target: str, input_shape, seed: int = 0):
    """(model, input_shape, zoo or None, factory) for TARGET; the factory builds the same architecture again
    from torch's global RNG (inits 1.. of ``check`` are drawn by it: the model's own law)."""
    from deepstart.diagnose.zoo import ZOO, parse_target, zoo_model

    head = target.split(":", 1)[0].strip().lower()
    if head in ZOO:
        name, params = parse_target(target)
        built = zoo_model(name, seed=seed, input_shape=input_shape, **params)
        return built.model, input_shape or built.input_shape, built, _zoo_factory(built)
    module_name, sep, attr = target.partition(":")
    if not sep or not attr or "=" in target:
        raise ValueError(f"unknown target {target!r}: give a zoo model ({', '.join(ZOO)}), e.g. "
                         "'mlp:depth=50,width=64', or 'package.module:factory'")
    import importlib

    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {target!r}: {exc}; give 'package.module:factory' importable from here") \
            from None
    model = factory()
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{target} returned {type(model).__name__}, expected a torch.nn.Module")
    return model, input_shape, None, factory


def _zoo_factory(zoo):
    """Builds the zoo model again with a seed drawn from torch's global RNG (``check`` seeds it per init)."""
    import torch

    from deepstart.diagnose.zoo import zoo_model

    def build():
        seed = int(torch.randint(0, 2**62, (1,)))
        return zoo_model(zoo.name, seed=seed, input_shape=zoo.input_shape, **zoo.params).model
    return build


def _sibling(path: str, tag: str) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}.{tag}{ext}"


def _color() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def run(args) -> int:
    import torch

    from deepstart.diagnose import check, fix_

    level, categories = _fail_on(args.fail_on)
    if args.n_inits < 2:
        raise ValueError(f"--n-inits {args.n_inits} must be >= 2")
    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(s) for s in args.input_shape.split(",") if s.strip())
        except ValueError:
            raise ValueError(f"--input-shape {args.input_shape!r}: give sizes like 3,32,32") from None
    import numpy as np

    # independent streams: a zoo model and Gaussian inputs drawn from the same seed would be correlated
    # (the inputs would be rows of the first weight matrix)
    model_seed, input_seed, fix_seed = (int(s) for s in np.random.SeedSequence(args.seed).generate_state(3))
    model, shape, zoo, factory = _load(args.target, shape, model_seed)
    name = zoo.spec if zoo is not None else args.target
    kw = {"n_inits": args.n_inits, "batch_size": args.batch, "jacobian": not args.no_jacobian}
    gen = torch.Generator().manual_seed(input_seed)
    from deepstart.diagnose.checker import prepare_inputs

    inputs = prepare_inputs(model, None, shape, batch_size=args.batch, generator=gen)[0][0]
    report = check(model, inputs, reinit=args.init, factory=factory, generator=gen, progress=not args.quiet, name=name,
                   **kw)
    human = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    _show(report, args.quiet, human)
    to_file = None if args.json == "-" else args.json
    _write(report, to_file, args.html)
    fixed = None
    code = exit_code(report, level, categories)
    if args.fix:
        result = fix_(model, inputs, n_inits=args.n_inits, generator=torch.Generator().manual_seed(fix_seed),
                      report=report, rebuild=zoo.rebuild if zoo is not None else None, jacobian=not args.no_jacobian,
                      batch_size=args.batch)
        print(f"\n{result}", file=human)
        if result.applied:
            from dataclasses import replace

            fixed_name = getattr(getattr(zoo, "rebuilt", None), "spec", None)
            if fixed_name is None and zoo is not None and result.recommendation.kind == "init":
                fixed_name = zoo.spec_with(init=result.recommendation.scheme)
            fixed_name = fixed_name or f"{name} (fixed: {result.recommendation})"
            after = replace(result.after, model=fixed_name)
            _show(after, args.quiet, human)
            _write(after, to_file and _sibling(to_file, "fixed"), args.html and _sibling(args.html, "fixed"))
            fixed = after
    if args.json == "-":  # one strict JSON document on stdout: the report, or the report and the fixed one
        from deepstart._json import dumps

        print(dumps(report.to_dict() if fixed is None else {"report": report.to_dict(), "fixed": fixed.to_dict()},
                    indent=1))
    return code


def _show(report, quiet: bool, file=None) -> None:
    file = file or sys.stdout
    if quiet:
        print(f"{report.model}: {report.verdict} ({len(report.findings)} findings)", file=file)
    else:
        print(report.render(color=_color() and file is sys.stdout), file=file)


def _write(report, json_path, html_path) -> None:
    if json_path:
        report.to_json(json_path)
        print(f"wrote {json_path}", file=sys.stderr)
    if html_path:
        import matplotlib

        matplotlib.use("Agg")
        report.to_html(html_path)
        print(f"wrote {html_path}", file=sys.stderr)
