"""``deepstart.check``: will this network start training at init? Measure, predict, judge.

Hanin & Rolnick 2018 (FM1/FM2), Schoenholz et al. 2017 (gradients, χ₁), Pennington et al. 2017 (isometry).
The model is never changed: measurements run on stacked copies of its parameters through
``torch.func.functional_call``; hooks are removed and modes restored in ``finally`` (also when forward raises).
"""
from __future__ import annotations

import copy
import math
import time
import warnings

import numpy as np
import torch
from torch import nn

from deepstart.diagnose.architecture import expected_input
from deepstart.diagnose.law import infer_laws
from deepstart.diagnose.measure import infer_family
from deepstart.diagnose.predict import predict
from deepstart.diagnose.report import Report

__all__ = ["check", "prepare_inputs", "float_outputs"]

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def prepare_inputs(model: nn.Module, inputs=None, input_shape=None, *, batch_size: int = 8, generator=None):
    """``(args, kwargs, batch, description)`` from a tensor, tuple/list, dict, callable(generator) or input_shape."""
    if callable(inputs) and not isinstance(inputs, torch.Tensor):
        return prepare_inputs(model, inputs(generator), None, batch_size=batch_size, generator=generator)
    if inputs is None:
        if input_shape is None:
            first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
            if first is None or any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding))
                                    for m in model.modules()):
                raise ValueError(f"cannot infer the input shape: pass inputs= (a tensor, tuple, dict or callable) "
                                 f"or input_shape= (without the batch dimension); the {expected_input(model)}")
            input_shape = (first.in_features,)
        shape = tuple(int(s) for s in ((input_shape,) if isinstance(input_shape, int) else input_shape))
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"input_shape={input_shape!r} must be positive sizes without the batch dimension, "
                             f"e.g. (3, 32, 32); the {expected_input(model)}")
        p = next(iter(model.parameters()), None)
        dtype = p.dtype if p is not None and p.is_floating_point() else torch.get_default_dtype()
        x = torch.randn((batch_size, *shape), generator=generator, dtype=dtype)
        if p is not None:
            x = x.to(p.device)
        return (x,), {}, batch_size, f"Gaussian N(0, 1), shape {[batch_size, *shape]}"
    if isinstance(inputs, torch.Tensor):
        args, kwargs = (inputs,), {}
    elif isinstance(inputs, (tuple, list)):
        args, kwargs = tuple(inputs), {}
    elif isinstance(inputs, dict):
        args, kwargs = (), dict(inputs)
    else:
        raise TypeError(f"inputs must be a tensor, a tuple/list, a dict or a callable(generator), got "
                        f"{type(inputs).__name__}")
    tensors = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
    if not tensors or tensors[0].ndim == 0:
        raise ValueError("inputs must contain a tensor with a leading batch dimension")
    batch = int(tensors[0].shape[0])
    desc = ", ".join(f"{t.dtype} {list(t.shape)}" for t in tensors)
    return args, kwargs, batch, f"given: {desc}"


def _mode(model: nn.Module) -> str:
    flags = {m.training for m in model.modules()}
    return "train" if flags == {True} else "eval" if flags == {False} else "mixed"


def _check_args(model, n_inits):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(n_inits, bool) or not isinstance(n_inits, int) or n_inits < 1:
        raise ValueError(f"n_inits={n_inits!r} must be an int >= 1 (1: the given weights only; variances across "
                         "inits need 2 or more)")


def check(model: nn.Module, inputs=None, *, input_shape=None, n_inits: int = 8, reinit=None, factory=None,
          loss=None, generator: torch.Generator | None = None, batch_size: int = 8, jacobian: bool = True,
          progress: bool = False, name: str | None = None, device=None, probe=False) -> Report:
    """Check whether ``model`` starts training at initialization; return a :class:`Report`.

    A straight pipeline (``docs/laws.md``): one recorded forward (:mod:`.capture`) → sites read from the graph
    (:mod:`.structure`) → ``n_inits`` initializations measured one at a time (:mod:`.stream`, :mod:`.recurrent`) →
    the model's parts (:mod:`.parts`), each judged by its own law (:mod:`.laws`) → verdicts (:mod:`.verdicts`,
    ``Report.findings``) → remedies (``Report.recommend``, ``fix_``).

    Args:
        model: any ``nn.Module``; measured in its current train/eval mode (the report says which) and never changed.
        inputs: a tensor, a tuple/list (positional args), a dict (keyword args) or ``callable(generator)``
            returning one of those. Default: Gaussian inputs of ``input_shape``.
        input_shape: shape of one input without the batch dimension (Linear-first models: inferred).
        n_inits: number of initializations measured. 1 is *given-weights mode*: the model exactly as it is (a
            trained checkpoint, say): lengths, gradients and the Jacobian per layer; FM2 and the other across-init
            statistics are reported as not available and verdicts carry no standard error.
        reinit: how inits 1..n−1 are drawn when no ``factory`` is given. ``None``: a Hugging Face model is built
            again from its config (its own ``_init_weights``); other models ``"resample"``: each tensor redrawn
            from its own law (normal, uniform, orthogonal or delta-orthogonal; the scale of the standard law it
            matches — He, LeCun, Glorot, … by a test in :mod:`deepstart.diagnose.law` — or else its measured
            scale), tied and cloned tensors kept equal; init 0 is the model as given. ``"reset"``: the modules'
            ``reset_parameters`` (seeded); a scheme (``"he"``, ``Scheme``) for ``deepstart.init.apply_``; or
            ``callable(model_copy, generator)``. With ``"reset"``, a scheme or a callable, all inits use it.
        factory: ``callable() -> nn.Module`` building the same architecture from torch's global RNG; inits
            1..n−1 are built by it under new seeds (the model's own law: cloned layers, weight tying, custom init).
        loss: ``callable(output) -> scalar``; default ⟨u, output⟩ with a fixed Gaussian cotangent u.
        generator: ``torch.Generator`` for inputs, re-initializations, cotangent and Lanczos probes.
        batch_size: number of Gaussian inputs when ``inputs`` is None.
        jacobian: measure the input-output Jacobian's singular values (exact or Lanczos by size).
        progress: show a tqdm progress bar on stderr (one step per init).
        device: where to measure: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device`` (default:
            where the model's parameters are). The given model is never moved: when its parameters live elsewhere,
            a copy made on the device is measured. Inputs are moved there; re-inits are drawn there by generators
            seeded from ``generator`` (reproducible per device: a GPU's draws differ from the CPU's); statistics
            stay there until one transfer at the end, and TF32 is off for the call (restored after).
        probe: also train the first steps (:func:`deepstart.probe`; True or a dict of its arguments, ``"model"``:
            another form to train, e.g. with its LM head) and attach the result as ``report.probe`` (a section of
            the text and HTML reports, loss curves of every init).

    Raises:
        ModelForwardError (a ValueError): the forward pass raised; names the module and the shapes it got.
        ControlFlowError (a ValueError): the weights as given ran other ops when replayed (a forward that is not
            a function of its weights and inputs). Inits 1.. that run other ops (data-dependent control flow, e.g.
            a mixture of experts' routing) are left out with a note instead.
        ValueError: ``device`` is unknown, not available here (``"cuda"`` without CUDA) or not supported
            (``"meta"``); the message says what to pass instead.
    """
    from deepstart.diagnose._device import fork_rng, full_precision, model_on, resolve_device, to_device

    _check_args(model, n_inits)
    dev = resolve_device(device)
    compiled = getattr(model, "_orig_mod", None)
    if isinstance(compiled, nn.Module):  # torch.compile: read the eager module it wraps (same parameters)
        report = check(compiled, inputs, input_shape=input_shape, n_inits=n_inits, reinit=reinit, factory=factory,
                       loss=loss, generator=generator, batch_size=batch_size, jacobian=jacobian, progress=progress,
                       name=name or f"compiled {type(compiled).__name__}", device=device)
        from dataclasses import replace

        return replace(report, notes=(*report.notes, "torch.compile'd module: the eager module it wraps was checked "
                                      "(same parameters; compilation does not change the function at init)"))
    if factory is not None and not callable(factory):
        raise TypeError(f"factory must be a callable returning an nn.Module, got {type(factory).__name__}")
    generator = generator if generator is not None else torch.Generator()
    started = time.perf_counter()
    model = model_on(model, dev)  # the given model, or a copy on the device (the given one is never moved)
    where = dev if dev is not None else _device_of(model)
    modes = {m: m.training for m in model.modules()}
    buffers = {k: b.detach().clone() for k, b in model.named_buffers()}  # safety: every forward uses copies
    bar = _progress(progress, n_inits + 2)
    try:
        args, kwargs, batch, in_desc = prepare_inputs(model, inputs, input_shape, batch_size=batch_size,
                                                      generator=generator)
        args, kwargs = to_device(args, dev), to_device(kwargs, dev)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with fork_rng(where), warnings.catch_warnings(), full_precision(where):  # dropout & co.: seeded, restored
            warnings.filterwarnings("ignore", message="There is a performance drop", category=UserWarning)
            torch.manual_seed(seed)
            read = _read(model, args, kwargs, loss, generator)                      # capture → structure
            bar.update(1)
            measured = _measure(model, read, args, kwargs, batch, n_inits, reinit, factory, loss, generator,
                                seed, bar, where, jacobian)                          # inits → taps → Jacobian
            bar.update(1)
    finally:
        for m, flag in modes.items():
            m.training = flag
        with torch.no_grad():
            for k, b in model.named_buffers():
                if k in buffers:
                    b.copy_(buffers[k])
        bar.close()
    probed = _probe(probe, model, factory, input_shape, device, n_inits, generator) if probe else None
    return _report(model, read, measured, args, kwargs, batch, n_inits, in_desc, name, probed, started)
    # the verdicts are Report.findings: parts (deepstart.diagnose.parts) → laws (deepstart.diagnose.laws)


def _read(model, args, kwargs, loss, generator) -> dict:
    """Capture one forward and read its structure: sites, taps, the recurrent probe, the loss's cotangent."""
    from deepstart.diagnose.capture import capture, computed_weights
    from deepstart.diagnose.recurrent import RecurrentProbe
    from deepstart.diagnose.stream import _buffers, _with_grad
    from deepstart.diagnose.structure import read_sites

    graph = capture(model, args, kwargs, {**_with_grad(model.named_parameters()), **_buffers(model)})
    sites, info = read_sites(graph, {**dict(model.named_parameters()), **computed_weights(model), **graph.computed})
    recurrent = RecurrentProbe(model, sites, graph, generator)
    cotangent = [torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)
                 for t in float_outputs(graph.output)]
    graph.tensors.clear()  # the recorded forward (and the autograd graph its output holds) is not needed
    graph.output = None
    if sites and loss is None and not cotangent:
        raise ValueError("the model's output has no floating-point tensor; pass loss=callable(output)")
    return {"graph": graph, "sites": sites, "info": info, "recurrent": recurrent, "cotangent": cotangent}


def _measure(model, read, args, kwargs, batch, n_inits, reinit, factory, loss, generator, seed, bar, where,
             jacobian) -> dict:
    """Every init's taps (:func:`deepstart.diagnose.stream.measure`) and the Jacobian of init 0."""
    from deepstart.diagnose._device import generator_on
    from deepstart.diagnose.stream import init_sources, measure

    sites = read["sites"]
    nonfinite = _nonfinite(model)
    given = dict(model.named_parameters())
    families, laws = _families_laws(model, given)
    reinit_desc, source = init_sources(model, n_inits, reinit, factory, generator, families, laws, where)
    source = read["recurrent"].wrap(source)
    first = next(source)
    if reinit is not None and reinit != "resample" and factory is None:  # all inits re-drawn: read laws there
        families, laws = _families_laws(model, {k: v for k, v in first.items() if k in given})
    _set_laws(sites, {k: v for k, v in laws.items() if k not in read["graph"].computed})  # ŵ: not the law's draw
    raw = measure(model, read["graph"], sites, read["info"], args, kwargs, _chain_first(first, source), loss,
                  read["cotangent"], batch, seed=seed, bar=bar, device=where) if sites else \
        _empty_measured(n_inits, batch)
    jac, notes = None, [note for s in sites for note in s.notes]
    if raw.note:  # inits whose forward ran other ops were left out: keep the recurrent taps of those measured
        notes.append(raw.note)
        read["recurrent"].rows = [row for i, row in enumerate(read["recurrent"].rows) if i in raw.kept]
    if jacobian and sites:
        jac, note = _jacobian(model, first, args, kwargs, generator_on(generator, where))
        if note:
            notes.append(note)
    return {"raw": raw, "jacobian": jac, "notes": notes, "nonfinite": nonfinite, "reinit": reinit_desc}


def _probe(probe, model, factory, input_shape, device, n_inits, generator) -> dict:
    from deepstart.probe import probe as run_probe

    kw = {"input_shape": input_shape, "device": device, "n_inits": n_inits, "generator": generator,
          **(probe if isinstance(probe, dict) else {})}
    return run_probe(kw.pop("model", None) or factory or model, **kw).to_dict()


def _report(model, read, measured, args, kwargs, batch, n_inits, in_desc, name, probed, started) -> Report:
    """The :class:`Report`: sites, measurements, mean-field predictions where they apply, notes."""
    sites, raw = read["sites"], measured["raw"]
    n_inits = raw.sq.shape[0]  # fewer than asked when inits with other control flow were left out
    site_dicts = tuple(_site_dict(s) for s in sites)
    weight_families = {s.name: s.weight_family for s in sites if s.weight_family is not None}
    m0 = _input_m0(args, kwargs, batch)
    family = read["info"]["family"]  # a description of the model (docs/laws.md), not a switch of thresholds
    mode = _mode(model)
    theory = _theory(site_dicts, m0, weight_families)
    notes = measured["notes"] + _notes(model, sites, mode, n_inits, args, kwargs, m0, theory["notes"])
    return Report(model=name or type(model).__name__, mode=mode, n_inits=n_inits, batch=batch,
                  reinit=measured["reinit"], inputs=in_desc, path=raw.path, sites=site_dicts, m0=m0,
                  sq=raw.sq, grad=raw.grad, dead=raw.dead, theory=theory, jacobian=measured["jacobian"],
                  nonfinite_params=measured["nonfinite"],
                  norm_layers=tuple(dict.fromkeys(s.module_name for s in sites if s.kind == "norm")),
                  weight_families=weight_families, notes=tuple(notes), seconds=time.perf_counter() - started,
                  family=family, pre_sq=raw.pre_sq, pre_grad=raw.pre_grad, branch_sq=raw.branch_sq,
                  token_cos=raw.token_cos, attn_entropy=raw.attn_entropy, probe=probed,
                  threads=torch.get_num_threads(), recurrent=read["recurrent"].result())


def _theory(site_dicts, m0, weight_families) -> dict:
    """Mean-field predictions (:mod:`.predict`) for models without norms in residual streams; NaN elsewhere."""
    blocks = any(s["kind"] == "block" for s in site_dicts)
    norms = [s for s in site_dicts if s["kind"] == "norm"]
    if not any(s.get("norm") == "batch_norm" for s in norms) and not (blocks and norms):
        return predict(list(site_dicts), float(np.mean(m0)) if np.all(np.isfinite(m0)) else math.nan,
                       weight_families)
    n_main = sum(s["main"] for s in site_dicts)
    return {**{k: np.full(n_main, np.nan) for k in ("m_pred", "q_pred", "back_ratio", "log_var_pred")},
            "jacobian": None,
            "notes": ["mean-field predictions cover nets without normalized residual streams or batch norm; the "
                      "parts of this model are judged by their own laws (docs/laws.md)"]}


def _notes(model, sites, mode, n_inits, args, kwargs, m0, theory_notes) -> list:
    """What the reader should know about how the model was measured."""
    notes = []
    batch_norms = [s.module_name for s in sites if s.kind == "norm" and s.norm == "batch_norm"]
    if batch_norms:
        notes.append(f"batch normalization {batch_norms[:4]}{'…' if len(batch_norms) > 4 else ''} measured in "
                     f"{mode} mode: train mode normalizes by batch statistics, eval mode by running statistics "
                     "(≈ identity at init)")
    notes += theory_notes
    if n_inits == 1:
        notes.append("given-weights mode (n_inits=1): the model was measured exactly as it is; FM2 (Var log M across "
                     "inits) and the standard errors of the other statistics are not available")
    if mode == "mixed":
        evals = [n for n, m in model.named_modules() if not m.training]
        notes.append(f"mixed train/eval modes: {evals[:4]}{'…' if len(evals) > 4 else ''} in eval mode, the rest in "
                     "train mode; each module was measured in its own mode (dropout and batch norm differ)")
    if any(not t.is_floating_point() for t in _all_tensors(args, kwargs)) and not np.all(np.isfinite(m0)):
        notes.append("integer inputs (token ids): lengths are read from the embedding output on; the "
                     "input-output Jacobian is not defined")
    return notes


def _families_laws(model, params: dict) -> tuple:
    """(family, law) of every parameter, converting one tensor at a time to float64 (no copy of the model)."""
    families = {k: infer_family(v) for k, v in params.items()}
    return families, infer_laws(model, {k: v.detach()[None] for k, v in params.items()}, families)


def _device_of(model: nn.Module) -> torch.device | None:
    """The device of the model's first parameter or buffer (None: it has none)."""
    t = next(iter([*model.parameters(), *model.buffers()]), None)
    return None if t is None else t.device


def _nonfinite(model: nn.Module) -> tuple:
    """Names of the floating-point parameters holding a NaN or an infinity (one host transfer per device)."""
    named = [(k, p) for k, p in model.named_parameters() if p.is_floating_point()]
    flags = {}
    for where in dict.fromkeys(p.device for _, p in named):
        keys = [k for k, p in named if p.device == where]
        ok = torch.stack([torch.isfinite(p.detach()).all() for k, p in named if p.device == where]).tolist()
        flags.update(zip(keys, ok))
    return tuple(k for k, _ in named if not flags[k])


def _chain_first(first, rest):
    yield first
    yield from rest


def _empty_measured(n, batch):
    from deepstart.diagnose.stream import Measured

    z = np.zeros((n, batch, 0))
    return Measured(z, z, np.zeros((n, 0)), z, z, z, np.zeros((n, 0)), np.zeros((n, 0)), "none")


def _all_tensors(args, kwargs):
    from deepstart.diagnose.capture import _tensors

    return _tensors((args, kwargs), [])


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(enabled: bool, total: int):
    if not enabled:
        return _NoBar()
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc="deepstart check", unit="init", file=sys.stderr, leave=False)


def float_outputs(out) -> list:
    """Every floating-point tensor of a model's output (tensor, tuple, dict, ``ModelOutput``, dataclass)."""
    from deepstart.diagnose.capture import float_tensors

    return float_tensors(out)


def _input_m0(args, kwargs, batch) -> np.ndarray:
    x = args[0] if len(args) == 1 and not kwargs else None
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.shape[0] == batch:
        return (x.detach().double().pow(2).reshape(batch, -1).mean(1)).cpu().numpy()
    return np.full(batch, np.nan)


def _set_laws(sites, laws) -> None:
    """σ_w of each layer site from the law of its weight (the theory's input); the measured one is kept too."""
    for s in sites:
        law = laws.get(s.weight_param or "") if s.kind == "layer" else None
        if law is None:
            continue
        s.sigma_w_measured, s.weight_family, s.weight_law = s.sigma_w, law.family, law.label
        if s.fan_in and math.isfinite(law.var) and law.var >= 0:
            s.sigma_w = math.sqrt(s.fan_in * (law.var + law.mean ** 2))


def _site_dict(s) -> dict:
    from dataclasses import asdict

    d = asdict(s)
    d["shape"] = list(d["shape"])
    return d


class _Flat(nn.Module):
    """Wraps a model whose output is a tuple/dict: concatenated flattened float outputs."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.cat([t.reshape(t.shape[0], -1) for t in float_outputs(self.inner(x))], dim=1)


def _jacobian(model, first, args, kwargs, generator):
    """Singular values of the input-output Jacobian of init 0 at the first input (Pennington et al. 2017, eq. 2)."""
    x = args[0] if len(args) == 1 and not kwargs else None
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return None, "Jacobian: not applicable (needs a single floating-point input tensor)"
    from deepstart.diagnose.jacobian import jacobian_singular_values

    clone = copy.deepcopy(model)
    with torch.no_grad():
        for k, v in list(clone.named_parameters()) + list(clone.named_buffers()):
            if k in first:
                v.copy_(first[k])
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in clone.modules()):
        return None, ("Jacobian: not measured (train-mode batch normalization couples the samples of a batch, so "
                      "there is no per-input Jacobian; check the model in eval mode for it)")
    try:
        with torch.no_grad():
            out = clone(x[:1])
        net = clone if isinstance(out, torch.Tensor) else _Flat(clone)
        sv = jacobian_singular_values(net, x[:1], generator=generator)  # reverse mode only where forward AD is not
    except Exception as exc:  # noqa: BLE001 - the report says why instead of failing the whole check
        return None, f"Jacobian: not measured ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    values = np.asarray(sv.values, float)
    return {"values": values, "method": sv.method, "complete": bool(sv.complete), "moments": tuple(sv.moments),
            "moment_errors": tuple(sv.moment_errors), "input_dim": sv.input_dim, "output_dim": sv.output_dim}, \
        (f"Jacobian: {sv.method}, {sv.note}" if sv.note else None)
