"""``deepstart probe TARGET``: will it start training? Train the first steps of many inits (and a reference) at once.

TARGET as for ``deepstart check``: a zoo model (``mlp:depth=50,width=64,init=glorot``), a Hugging Face causal
language model built from its config (``hf:gpt2:n_layer=4,n_embd=128,vocab_size=1000``; the LM head is added) or
``module:factory``. Exit code 0 when most inits start (or are slow) or the result is inconclusive (the reference did
not learn either), 1 when they are stuck or diverge, 2 usage errors.
"""
from __future__ import annotations

import sys

from deepstart.cli._args import add_threads, device, integer, number, plain, sizes


def register(subparsers) -> None:
    p = subparsers.add_parser("probe", help="train the first steps of many inits: starts, slow, stuck or diverges",
                              description=plain(__doc__.split("\n\n")[1].replace("\n", " ")))
    p.add_argument("target", help="zoo model 'name:key=value,...', 'hf:MODEL_TYPE[:key=value,...]' (causal LMs) "
                                  "or 'module:factory'")
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd"), help="optimizer (default adam)")
    p.add_argument("--lr", type=number(0, strict=True, what="a learning rate"),
                   help="learning rate (default: try 3, one decade apart, and report the best)")
    p.add_argument("--steps", type=integer(2), default=100, help="optimizer steps per init (default 100)")
    p.add_argument("--n-inits", type=integer(1), default=8, help="inits of the model and of the reference (default 8)")
    p.add_argument("--data", choices=("mnist", "fashion-mnist", "cifar10"),
                   help="train on real data ($DEEPSTART_DATA) instead of the synthetic task")
    p.add_argument("--input-shape", type=sizes, metavar="SIZES", help="one input's shape for the synthetic task "
                   "when it cannot be inferred, e.g. 3,32,32")
    p.add_argument("--batch", type=integer(1), help="batch size (default 128; 8 sequences for language models)")
    p.add_argument("--no-reference", action="store_true", help="no reference init: absolute verdicts")
    p.add_argument("--seed", type=integer(0), default=0, help="seed of the model, inits, task and batches")
    p.add_argument("--device", type=device, help="train on this device: cpu, cuda, cuda:N or mps (default cpu)")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-': on stdout, the summary on stderr)")
    p.add_argument("--plot", metavar="FILE", help="write the loss curves of every init (PNG)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads(p)
    p.set_defaults(handler=run)


def _hf_causal(target: str, seed: int):
    """The causal-LM form of an ``hf:`` target (its config, an LM head on top), built under ``seed``."""
    import warnings

    import torch

    from deepstart.cli import UsageError
    from deepstart.diagnose.hf import hf_target

    try:
        base, _, _ = hf_target(target, seed)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    import transformers

    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        try:
            return transformers.AutoModelForCausalLM.from_config(base.config, attn_implementation="eager")
        except (ValueError, KeyError) as exc:
            raise UsageError(f"{target}: the probe's hf: targets are causal language models (gpt2, llama, ...); "
                             f"{type(base).__name__} has no causal-LM form ({exc}). Call deepstart.probe(model, "
                             "task=(inputs, targets)) in Python") from None


def run(args) -> int:
    from deepstart.cli.check import _cwd_importable

    with _cwd_importable():
        return _run(args)


def _run(args) -> int:
    import numpy as np
    import torch

    from deepstart.cli.check import _load
    from deepstart.probe import probe

    from deepstart._io import atomic_savefig, check_output_file

    for option, path in (("--json", None if args.json == "-" else args.json), ("--plot", args.plot)):
        if path:
            check_output_file(path, option)  # before any training: exit 2, one line
    model_seed, probe_seed = (int(s) for s in np.random.SeedSequence(args.seed).generate_state(2))
    if args.target.split(":", 1)[0].strip().lower() == "hf":
        model, shape, factory, name = _hf_causal(args.target, model_seed), None, None, args.target
    else:
        model, shape, zoo, factory, _ = _load(args.target, args.input_shape, model_seed)
        name = zoo.spec if zoo is not None else args.target
    human = sys.stderr if args.json == "-" else sys.stdout
    result = probe(factory if factory is not None else model, args.data, optimizer=args.optimizer, lr=args.lr,
                   steps=args.steps, n_inits=args.n_inits, device=args.device,
                   generator=torch.Generator().manual_seed(probe_seed),
                   reference=None if args.no_reference else "auto", input_shape=args.input_shape or shape,
                   batch_size=args.batch, progress=not args.no_progress, name=name)
    print(result.summary(), file=human)
    if args.json:
        from deepstart._json import dumps

        text = dumps(result.to_dict(), indent=1)
        if args.json == "-":
            print(text)
        else:
            from deepstart._io import atomic_write

            atomic_write(args.json, text)
            print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg", force=False)
        atomic_savefig(result.plot(), args.plot, dpi=90)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0 if result.verdict in ("starts", "slow", "inconclusive") else 1
