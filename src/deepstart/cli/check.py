"""``deepstart check TARGET``: will this model start training? Table, findings, optional fix, HTML/JSON reports.

TARGET is a zoo model with arguments (``mlp:depth=100,width=64,activation=relu,init=glorot``,
``resnet:depth=56,eta=1``, ``tanh-mlp:depth=200,init=critical(q_star=1/64)``), a Hugging Face architecture built
from its config with random init (``hf:gpt2:n_layer=24,n_embd=256``, ``hf:bert``, ``hf:llama``, ``hf:vit``; needs
``deepstart[hf]``), or ``module:factory`` (called without arguments, returning an ``nn.Module``; the module is
importable from the current folder, as with ``python -m``, or installed). Exit code 0 healthy, 1 findings at or
above ``--fail-on``, 2 usage errors.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from deepstart.cli._args import device, integer, plain, sizes

FAIL_ON_LEVELS = ("warning", "error")


def register(subparsers) -> None:
    from deepstart.diagnose.verdicts import CATEGORIES  # NumPy only: the parser stays torch-free

    p = subparsers.add_parser("check", help="check a model at initialization (FM1, FM2, gradients, isometry)",
                              description=plain(__doc__.split("\n\n")[1].replace("\n", " ")))
    p.add_argument("target", help="zoo model 'name:key=value,...' (mlp, tanh-mlp, cnn, resnet, transformer), "
                                  "'hf:MODEL_TYPE[:key=value,...]' (e.g. hf:gpt2:n_layer=24,n_embd=256; seq= sets "
                                  "the sequence length) or 'module:factory'")
    p.add_argument("--input-shape", type=sizes, help="input shape without the batch dimension, e.g. 3,32,32")
    p.add_argument("--n-inits", type=integer(2), default=8, help="initializations measured (>= 2; default 8)")
    p.add_argument("--given", action="store_true", help="given-weights mode: measure the model exactly as it is "
                   "(e.g. a trained checkpoint), one init; FM2 and across-init statistics are not available")
    p.add_argument("--init", help="re-initialize with this scheme (e.g. he, 'critical(activation=tanh,q_star=1/64)')")
    p.add_argument("--batch", type=integer(1), default=8, help="batch size of the inputs (default 8)")
    p.add_argument("--seed", type=integer(0), default=0,
                   help="seed of the zoo or hf model, the inputs, the re-inits and the fix (independent streams "
                        "derived from it; default 0)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--eval", dest="mode", action="store_const", const="eval",
                      help="check the model in eval mode (BatchNorm running statistics, no dropout)")
    mode.add_argument("--train", dest="mode", action="store_const", const="train",
                      help="check the model in train mode (default: the mode the target is built in)")
    p.add_argument("--html", help="write a self-contained HTML report here")
    p.add_argument("--json", help="write the JSON report here ('-': one JSON document on stdout, the tables go to "
                   "stderr). Strict JSON: NaN is null, infinities are \"inf\"/\"-inf\"")
    p.add_argument("--fail-on", default="error",
                   help=f"exit 1 on findings of these comma-separated categories ({', '.join(CATEGORIES)}) or at "
                        f"or above this severity ({', '.join(FAIL_ON_LEVELS)}; default error)")
    p.add_argument("--fix", action="store_true", help="apply the best recommendation, re-check, and write the fixed "
                                                      "model's reports beside the original (*.fixed.html/json)")
    p.add_argument("--no-jacobian", action="store_true", help="skip the Jacobian spectrum")
    p.add_argument("--device", type=device, help="measure on this device: cpu, cuda, cuda:N or mps (default: where "
                   "the model is built, the CPU); the model is copied there, TF32 is off")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.set_defaults(handler=run, mode=None)


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


@contextmanager
def _cwd_importable():
    """The current folder first on ``sys.path`` (as ``python -m`` does) while a ``module:factory`` target is used."""
    cwd = os.getcwd()
    added = not sys.path or sys.path[0] not in (cwd, "")
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _named(target: str, factory):
    """``factory`` whose errors name the target and keep the original message (``mymodel:build raised ...``)."""
    def build():
        try:
            return factory()
        except Exception as exc:
            raise ValueError(f"{target} raised {type(exc).__name__}: {exc}") from exc
    return build


def _user_factory(target: str):
    import importlib

    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot load {target!r}: {exc}; give 'module:factory' with module.py in the current "
                         f"folder ({os.getcwd()}) or an installed 'package.module'") from None
    except Exception as exc:
        raise ValueError(f"importing {module_name!r} for {target!r} raised {type(exc).__name__}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        what = "has no attribute" if factory is None else "has a non-callable"
        raise ValueError(f"cannot load {target!r}: module {module_name!r} {what} {attr!r}; give 'module:factory' "
                         "naming a function that returns an nn.Module")
    return _named(target, factory)


def _load(target: str, input_shape, seed: int = 0, batch_size: int = 8):
    """(model, input_shape, zoo or None, factory, make_inputs or None) for TARGET; the factory builds the same
    architecture again from torch's global RNG (inits 1.. of ``check`` are drawn by it: the model's own law);
    ``make_inputs(generator)`` is given for ``hf:`` targets (token ids or pixel values)."""
    from deepstart.diagnose.zoo import ZOO, parse_target, zoo_model

    head = target.split(":", 1)[0].strip().lower()
    if head in ZOO:
        name, params = parse_target(target)
        built = zoo_model(name, seed=seed, input_shape=input_shape, **params)
        return built.model, input_shape or built.input_shape, built, _zoo_factory(built), None
    if head == "hf":
        return _load_hf(target, input_shape, seed, batch_size)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr or "=" in target:
        raise ValueError(f"unknown target {target!r}: give a zoo model ({', '.join(ZOO)}), e.g. "
                         "'mlp:depth=50,width=64', a Hugging Face architecture, e.g. 'hf:gpt2:n_layer=12', or "
                         "'module:factory'")
    factory = _user_factory(target)
    model = factory()
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{target} returned {type(model).__name__}, expected a torch.nn.Module")
    return model, input_shape, None, factory, None


def _load_hf(target: str, input_shape, seed: int, batch_size: int):
    from deepstart.cli import UsageError
    from deepstart.diagnose.hf import hf_target

    if input_shape is not None:
        raise UsageError(f"--input-shape does not apply to {target!r}: hf: targets make their own inputs "
                         "(token ids: set the length with seq=, e.g. hf:gpt2:seq=64; images: image_size=)")
    try:
        model, make_inputs, factory = hf_target(target, seed, batch_size=batch_size)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    return model, None, None, factory, make_inputs


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
    with _cwd_importable():
        return _run(args)


def _set_mode(model, mode):
    if model is not None and mode is not None:
        model.train(mode == "train")
    return model


def _run(args) -> int:
    import numpy as np
    import torch

    from deepstart.diagnose import check, fix_
    from deepstart.diagnose.checker import prepare_inputs

    level, categories = _fail_on(args.fail_on)
    if args.device is not None:
        from deepstart.diagnose._device import resolve_device

        resolve_device(args.device)  # e.g. cuda without CUDA: exit 2 before anything is built
    # independent streams: a zoo model and Gaussian inputs drawn from the same seed would be correlated
    # (the inputs would be rows of the first weight matrix)
    model_seed, input_seed, fix_seed = (int(s) for s in np.random.SeedSequence(args.seed).generate_state(3))
    model, shape, zoo, factory, make_inputs = _load(args.target, args.input_shape, model_seed, args.batch)
    _set_mode(model, args.mode)
    name = zoo.spec if zoo is not None else args.target
    n_inits = 1 if args.given else args.n_inits
    if args.given and (args.init or args.fix):
        raise ValueError("--given measures the model as it is: it cannot be combined with --init or --fix")
    kw = {"n_inits": n_inits, "batch_size": args.batch, "jacobian": not args.no_jacobian, "device": args.device}
    gen = torch.Generator().manual_seed(input_seed)
    if make_inputs is not None:
        inputs = make_inputs(gen)
    else:
        inputs = prepare_inputs(model, None, shape, batch_size=args.batch, generator=gen)[0][0]
    report = check(model, inputs, reinit=args.init, factory=None if args.given else factory, generator=gen,
                   progress=not args.quiet, name=name, **kw)
    human = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    _show(report, args.quiet, human)
    to_file = None if args.json == "-" else args.json
    _write(report, to_file, args.html)
    fixed = None
    code = exit_code(report, level, categories)
    if args.fix:
        rebuild = None if zoo is None else (lambda rec: _set_mode(zoo.rebuild(rec), args.mode))
        result = fix_(model, inputs, n_inits=args.n_inits, generator=torch.Generator().manual_seed(fix_seed),
                      report=report, rebuild=rebuild, jacobian=not args.no_jacobian, batch_size=args.batch,
                      device=args.device)
        print(f"\n{result}", file=human)
        if result.applied:
            from dataclasses import replace

            fixed_name = getattr(getattr(zoo, "rebuilt", None), "spec", None)
            if fixed_name is None and zoo is not None and result.recommendation.kind == "init":
                fixed_name = zoo.spec_with(init=result.recommendation.scheme)
            rec = result.recommendation
            fixed_name = fixed_name or f"{name} (fixed: {rec.scheme or rec.kind})"
            after = replace(result.after, model=fixed_name)
            _show(after, args.quiet, human)
            fixed_html = args.html and _sibling(args.html, "fixed")
            _write(after, to_file and _sibling(to_file, "fixed"), fixed_html,
                   link=args.html and ("original model", os.path.basename(args.html)))
            if args.html:  # the original page again, now linking the fixed one
                _write(report, None, args.html, link=("fixed model", os.path.basename(fixed_html)), quiet=True)
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


def _write(report, json_path, html_path, link=None, quiet=False) -> None:
    if json_path:
        report.to_json(json_path)
        print(f"wrote {json_path}", file=sys.stderr)
    if html_path:
        import matplotlib

        from deepstart.diagnose.html import report_html

        matplotlib.use("Agg")
        report_html(report, html_path, link=link)
        if not quiet:
            print(f"wrote {html_path}", file=sys.stderr)
