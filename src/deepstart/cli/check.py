"""``deepstart check TARGET``: will this model start training? Table, findings, optional fix, HTML/JSON reports.

TARGET is a zoo model with arguments (``mlp:depth=100,width=64,activation=relu,init=glorot``,
``resnet:depth=56,eta=1``, ``tanh-mlp:depth=200,init=critical(q_star=1/64)``), a Hugging Face architecture built
from its config with random init (``hf:gpt2:n_layer=24,n_embd=256``, ``hf:bert``, ``hf:llama``, ``hf:vit``; needs
the hf extra: ``pip install '.[hf]'`` in a clone of the repository), or ``module:factory`` or
``path/to/file.py:factory`` (called without arguments, returning an ``nn.Module``; a module is importable from the
current folder, as with ``python -m``, or installed). Exit code 0 healthy, 1 findings at or above ``--fail-on``, 2
usage errors.

Examples (the exit code each gives is in its comment):

  deepstart check "mlp:depth=50,width=64,activation=relu,init=glorot" --fix  # exit 1: FM1; --fix applies He
  deepstart check "tanh-mlp:depth=200,init=critical(q_star=1/64)" --q0 1/64  # exit 0: inputs at q* = 1/64
  deepstart check "resnet:depth=20,eta=1" --no-jacobian  # exit 1: FM1 exploding, eta = 1 on every block
  deepstart check "hf:gpt2:n_layer=4,n_embd=64,seq=32" --n-inits 4  # exit 0 (needs the hf extra)
  deepstart check "mlp:depth=20,width=64" --json - --quiet --threads 1  # exit 0: JSON on stdout
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from deepstart.cli._args import add_threads, device, integer, number, plain, sizes

FAIL_ON_LEVELS = ("warning", "error")


def register(subparsers) -> None:
    from deepstart.diagnose.verdicts import CATEGORIES  # NumPy only: the parser stays torch-free

    import argparse
    import textwrap

    p = subparsers.add_parser("check", help="check a model at initialization (FM1, FM2, gradients, isometry)",
                              description=textwrap.fill(plain(__doc__.split("\n\n")[1].replace("\n", " ")), 79),
                              epilog=plain("\n\n".join(__doc__.split("\n\n")[2:4])),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="zoo model 'name:key=value,...' (mlp, tanh-mlp, cnn, resnet, transformer), "
                                  "'hf:MODEL_TYPE[:key=value,...]' (e.g. hf:gpt2:n_layer=24,n_embd=256; seq= sets "
                                  "the sequence length), 'module:factory' or 'path/to/file.py:factory'")
    inputs = p.add_argument_group("inputs (default: Gaussian N(0, 1) floats of the first layer's width)")
    inputs.add_argument("--input-shape", type=sizes, metavar="SIZES",
                        help="shape of one float input without the batch dimension, e.g. 3,32,32")
    inputs.add_argument("--tokens", type=_tokens, metavar="VOCAB[,SEQ]",
                        help="feed token ids: integers uniform in [0, VOCAB) of shape [batch, SEQ] (SEQ default "
                             f"{DEFAULT_SEQ}), for models that start with an nn.Embedding")
    scale = inputs.add_mutually_exclusive_group()
    scale.add_argument("--input-scale", type=number(0, strict=True, what="a standard deviation"), metavar="S",
                       help="standard deviation of each input coordinate (default 1); a critical init with fixed "
                            "point q* expects inputs of length q*: give sqrt(q*), e.g. 1/8 for q*=1/64")
    scale.add_argument("--q0", type=number(0, strict=True, what="a variance"), metavar="Q",
                       help="input length q0 = M_0 = |x|^2/n, the variance of each input coordinate (same as "
                            "--input-scale sqrt(Q)); e.g. --q0 1/64 for critical(q_star=1/64)")
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
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report here (its folder must exist; "
                   "checked before the measurement starts)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here ('-': one JSON document on stdout, "
                   "the tables go to stderr). Strict JSON: NaN is null, infinities are \"inf\"/\"-inf\"")
    p.add_argument("--fail-on", default="error",
                   help=f"exit 1 on findings of these comma-separated categories ({', '.join(CATEGORIES)}) or at "
                        f"or above this severity ({', '.join(FAIL_ON_LEVELS)}; default error)")
    p.add_argument("--fix", action="store_true", help="apply the best recommendation, re-check, and write the fixed "
                                                      "model's reports beside the original (*.fixed.html/json)")
    p.add_argument("--no-jacobian", action="store_true", help="skip the Jacobian spectrum")
    p.add_argument("--probe", action="store_true", help="also train the first 100 steps of every init and a "
                   "reference (deepstart probe): a section of the report with the loss curves of every init")
    p.add_argument("--device", type=device, help="measure on this device: cpu, cuda, cuda:N or mps (default: where "
                   "the model is built, the CPU); the model is copied there, TF32 is off")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line (implies --no-progress)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads(p)
    p.set_defaults(handler=run, mode=None)


DEFAULT_SEQ = 16


def _tokens(text: str):
    """``type=`` for ``VOCAB[,SEQ]``: ``(vocab, seq)``."""
    import argparse

    parts = [t.strip() for t in str(text).split(",")]
    try:
        values = [int(t) for t in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(v < 1 for v in values) or values[0] < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: give the vocabulary size and optionally the sequence length, "
                                         f"e.g. 50257 or 50257,64 (VOCAB >= 2, SEQ >= 1)")
    return values[0], (values[1] if len(values) == 2 else DEFAULT_SEQ)


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


def _import_file(path: str, target: str):
    """The module defined by the file ``path`` (``./mymodel.py``), imported under its file name with its folder first
    on ``sys.path`` (so its own sibling imports work)."""
    import importlib.util

    file = os.path.abspath(path)
    if not os.path.isfile(file):
        raise ValueError(f"cannot load {target!r}: no file {file}")
    name = os.path.splitext(os.path.basename(file))[0]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load {target!r}: {file} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(file))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(os.path.dirname(file))
    return module


def _user_factory(target: str):
    import importlib

    is_path = target.partition(":")[0].endswith(".py") or "/" in target or os.sep in target
    module_name, _, attr = target.rpartition(":") if is_path else target.partition(":")
    try:
        module = _import_file(module_name, target) if is_path else importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot load {target!r}: {exc}; give 'module:factory' with module.py in the current "
                         f"folder ({os.getcwd()}), 'path/to/module.py:factory' or an installed "
                         "'package.module:factory'") from None
    except ValueError:
        raise
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
    module_name, sep, attr = target.rpartition(":")
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


def _check_outputs(args) -> None:
    """Refuse unwritable report paths before anything is built or measured (exit 2, one line)."""
    from deepstart._io import OutputPathError, check_output_file

    json_path = None if args.json in (None, "-") else check_output_file(args.json, "--json")
    html_path = None if args.html is None else check_output_file(args.html, "--html")
    if json_path is not None and html_path is not None and json_path.resolve() == html_path.resolve():
        raise OutputPathError(f"--json and --html both name {args.html}; give two files")


def _inputs(args, target: str, model, shape, make_inputs, generator):
    """The input batch the CLI feeds: an hf target's own, token ids (``--tokens``) or Gaussian floats of ``shape``
    scaled by ``--input-scale``/``--q0``."""
    import math

    import torch

    from deepstart.cli import UsageError
    from deepstart.diagnose.architecture import expected_input
    from deepstart.diagnose.checker import prepare_inputs

    scale = args.input_scale if args.q0 is None else math.sqrt(args.q0)
    if make_inputs is not None:
        if args.tokens or scale is not None:
            raise UsageError(f"--tokens, --input-scale and --q0 do not apply to {target!r}: hf: targets make their "
                             "own inputs (set the sequence length with seq=, e.g. hf:gpt2:seq=64)")
        return make_inputs(generator)
    embedding = next((m for m in model.modules() if isinstance(m, torch.nn.Embedding)), None)
    if args.tokens:
        if args.input_shape is not None or scale is not None:
            raise UsageError("--tokens feeds integer token ids: it cannot be combined with --input-shape, "
                             "--input-scale or --q0 (float inputs)")
        vocab, seq = args.tokens
        if embedding is not None and vocab > embedding.num_embeddings:
            raise UsageError(f"--tokens {vocab}: the {expected_input(model)}; give --tokens "
                             f"{embedding.num_embeddings}[,SEQ] or less")
        p = next(iter(model.parameters()), None)
        return torch.randint(0, vocab, (args.batch, seq), generator=generator,
                             device=p.device if p is not None else "cpu")
    if shape is None and embedding is not None:
        raise UsageError(f"{target} takes token ids (the {expected_input(model)}): give --tokens "
                         f"{embedding.num_embeddings}[,SEQ]")
    try:
        x = prepare_inputs(model, None, shape, batch_size=args.batch, generator=generator)[0][0]
    except ValueError:
        raise UsageError(f"cannot infer the input shape of {target}: give --input-shape (one float input without "
                         f"the batch dimension, e.g. 3,32,32) or --tokens VOCAB[,SEQ] (token ids); the "
                         f"{expected_input(model)}") from None
    return x if scale is None else x * scale


def _run(args) -> int:
    import numpy as np
    import torch

    from deepstart.diagnose import check, fix_

    level, categories = _fail_on(args.fail_on)
    _check_outputs(args)
    if args.device is not None:
        from deepstart.diagnose._device import resolve_device

        resolve_device(args.device)  # e.g. cuda without CUDA: exit 2 before anything is built
    if args.given and (args.init or args.fix):
        raise ValueError("--given measures the model as it is: it cannot be combined with --init or --fix")
    # independent streams: a zoo model and Gaussian inputs drawn from the same seed would be correlated
    # (the inputs would be rows of the first weight matrix)
    model_seed, input_seed, fix_seed = (int(s) for s in np.random.SeedSequence(args.seed).generate_state(3))
    model, shape, zoo, factory, make_inputs = _load(args.target, args.input_shape, model_seed, args.batch)
    _set_mode(model, args.mode)
    name = zoo.spec if zoo is not None else args.target
    n_inits = 1 if args.given else args.n_inits
    kw = {"n_inits": n_inits, "batch_size": args.batch, "jacobian": not args.no_jacobian, "device": args.device}
    gen = torch.Generator().manual_seed(input_seed)
    inputs = _inputs(args, args.target, model, shape, make_inputs, gen)
    report = check(model, inputs, reinit=args.init, factory=None if args.given else factory, generator=gen,
                   progress=not (args.quiet or args.no_progress), name=name, probe=_probe_args(args, shape, model_seed),
                   **kw)
    human = sys.stderr if args.json == "-" else sys.stdout  # stdout carries the JSON then
    _show(report, args.quiet, human)
    to_file = None if args.json == "-" else args.json
    _write(report, to_file, args.html)
    fixed = None  # the FixResult nested in the JSON document (its "fix" object)
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
            result = replace(result, after=after)
        fixed = result
        if to_file:  # the original document again, now with its "fix" object
            from deepstart._io import atomic_write

            atomic_write(to_file, report.to_json(fix=fixed))
    if args.json == "-":  # one strict JSON document on stdout, the same shape with or without --fix
        from deepstart._json import dumps

        print(dumps(report.to_dict(fix=fixed), indent=1))
    return code


def _probe_args(args, shape, seed):
    """``check(probe=...)`` for ``--probe``: hf: targets train their causal-LM form (the LM head on top)."""
    if not args.probe:
        return False
    kw = {"input_shape": shape, "progress": not (args.quiet or args.no_progress)}
    if args.target.split(":", 1)[0].strip().lower() == "hf":
        from deepstart.cli.probe import _hf_causal

        kw["model"] = _hf_causal(args.target, seed)
    return kw


def _show(report, quiet: bool, file=None) -> None:
    file = file or sys.stdout
    if quiet:
        n = len(report.findings)
        print(f"{report.model}: {report.verdict} ({n} finding{'' if n == 1 else 's'})", file=file)
    else:
        print(report.render(color=_color() and file is sys.stdout), file=file)


def _write(report, json_path, html_path, link=None, quiet=False) -> None:
    """The reports, each written atomically (a temporary file in the same folder renamed over the path)."""
    from deepstart._io import atomic_write

    if json_path:
        atomic_write(json_path, report.to_json())
        print(f"wrote {json_path}", file=sys.stderr)
    if html_path:
        import matplotlib

        from deepstart.diagnose.html import report_html

        matplotlib.use("Agg")
        atomic_write(html_path, report_html(report, None, link=link))
        if not quiet:
            print(f"wrote {html_path}", file=sys.stderr)
