"""``deepstart.probe``: will it start training? Train the first steps of many inits at once and judge the curves.

The direct evidence that a network starts training is its first steps of training (GradInit, Zhu et al. 2021, and
MetaInit, Dauphin & Schoenholz 2019, optimize inits from exactly this signal; the probe only *reads* it). The
probe trains ``n_inits`` initializations of the model and as many of a reference init (He / critical for plain
nets, the stock init for Hugging Face models) on the same batches with the same optimizer and learning rate(s),
vectorized (:mod:`.engine`), and judges each curve (:mod:`.result`) on a task that discriminates (:mod:`.tasks`).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time

import numpy as np
import torch
from torch import nn

from deepstart.probe import engine, heads
from deepstart.probe.result import ProbeResult, judge_curves, overall, ratio_se, update_share
from deepstart.probe.tasks import clusters_task, data_task, logits_of, ngram_task

__all__ = ["probe"]

LR_RANGES = {"sgd": (1e-3, 1e-2, 1e-1), "adam": (1e-4, 1e-3, 1e-2)}
MEMORY_BUDGET = 4 * 2**30  # bytes of stacked parameters, gradients and optimizer state trained at once
_RECTIFIERS = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ReLU6)
_SATURATING = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.GELU: "gelu", nn.SiLU: "swish", nn.ELU: "elu",
               nn.SELU: "selu"}


def _is_hf(model) -> bool:
    return getattr(model, "config", None) is not None and hasattr(type(model), "config_class") and \
        hasattr(model, "post_init")


def _optimizer(optimizer):
    """``(name, make(params, lr), elementwise, lr range)`` from ``"adam"``, ``"sgd"``, a ``torch.optim`` class or a
    ``functools.partial`` of one. torch's own classes that have a fused kernel (Adam, AdamW, SGD, Adagrad) run it
    unless ``foreach=``/``fused=`` were given: the same update, one pass over the memory instead of one per op."""
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in ("adam", "sgd"):
            raise ValueError(f"optimizer={optimizer!r}: use 'adam', 'sgd' or a torch.optim.Optimizer class "
                             "(functools.partial(torch.optim.SGD, momentum=0.9) for extra arguments)")
        optimizer = torch.optim.Adam if key == "adam" else torch.optim.SGD
    cls = optimizer.func if isinstance(optimizer, functools.partial) else optimizer
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise TypeError(f"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer subclass (or a partial of one), "
                        f"got {optimizer!r}")
    elementwise = issubclass(cls, engine.ELEMENTWISE) and cls.__module__.startswith("torch.optim")
    kind = "sgd" if issubclass(cls, torch.optim.SGD) else "adam"
    return cls.__name__, functools.partial(engine.make_optimizer, optimizer), elementwise, LR_RANGES[kind]


def _check_args(steps, n_inits, lr):
    for name, value, low in (("steps", steps, 2), ("n_inits", n_inits, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} must be an int >= {low}")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0
                           or not math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} must be a positive number, or None for a range of 3 (one decade apart)")


def _base_model(model_or_factory, seed):
    if isinstance(model_or_factory, nn.Module):
        return model_or_factory, None
    if callable(model_or_factory):
        model = _seeded(model_or_factory, seed)
        if not isinstance(model, nn.Module):
            raise TypeError(f"the factory must return an nn.Module, got {type(model).__name__}")
        return model, model_or_factory
    raise TypeError(f"model_or_factory must be an nn.Module or a callable() returning one, got "
                    f"{type(model_or_factory).__name__}")


def _user_inits(model, factory, n, generator):
    """The user's inits (parameters, buffers), one model's worth at a time: the model as given, then the factory
    under new seeds, a Hugging Face model rebuilt from its config, or each tensor redrawn from its own law."""
    from deepstart.diagnose.checker import _families_laws  # only when a model needs re-drawing
    from deepstart.diagnose.stream import init_sources

    families, laws = (None, None) if factory is not None or _is_hf(model) else \
        _families_laws(model, dict(model.named_parameters()))
    what, source = init_sources(model, n, None, factory, generator, families, laws)
    buffer_names = [k for k, _ in model.named_buffers()]
    out = []
    for params in source:
        out.append(({k: v.detach().clone() for k, v in params.items() if k not in buffer_names},
                    {k: params[k].detach().clone() for k in buffer_names if k in params}))
    return what, out


def _activation_scheme(model) -> str:
    kinds = {type(m) for m in model.modules() if isinstance(m, _RECTIFIERS + tuple(_SATURATING))}
    if len(kinds) == 1 and (k := kinds.pop()) in _SATURATING:
        from deepstart.init.papers import critical_parameters

        try:
            critical_parameters(_SATURATING[k])
            return f"critical(activation={_SATURATING[k]})"
        except ValueError:
            return "he"
    return "he"


def reference_builder(model, reference):
    """``(description, build(seed) -> nn.Module)`` of the reference init, or ``(None, None)``."""
    if reference is None or reference is False:
        return None, None
    if reference == "auto" and _is_hf(model):
        config = _stock_config(model.config)
        return "stock init (rebuilt from the config, init scales at their defaults)", \
            lambda seed: _seeded(lambda: type(model)(config), seed)
    if callable(reference) and not isinstance(reference, str):
        return "the given reference factory", lambda seed: _seeded(reference, seed)
    from deepstart.init import apply_

    scheme = _activation_scheme(model) if reference == "auto" else reference
    described = str(scheme)
    if reference == "auto" and scheme != "he":
        try:  # the critical scheme cannot initialize every layer (e.g. delta-orthogonal needs c_out >= c_in)
            apply_(copy.deepcopy(model), scheme, generator=torch.Generator().manual_seed(0))
        except ValueError as refused:
            described = f"he ({scheme} refused this model: {str(refused).splitlines()[0][:120]})"
            scheme = "he"

    def build(seed):
        clone = copy.deepcopy(model)
        apply_(clone, scheme, generator=torch.Generator().manual_seed(seed))
        return clone
    return described, build


_INIT_FIELDS = ("initializer_range", "init_std", "initializer_factor", "init_scale")


def _stock_config(config):
    """A copy of a Hugging Face config with its init scales (``initializer_range``, …) at the class defaults."""
    stock, defaults = copy.deepcopy(config), type(config)()
    for field in _INIT_FIELDS:
        if hasattr(defaults, field) and hasattr(stock, field):
            setattr(stock, field, getattr(defaults, field))
    return stock


def _seeded(fn, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _state(model, names):
    params = dict(model.named_parameters())
    if set(params) != set(names):
        raise ValueError("the reference model's parameters differ from the model's (names); pass reference= a "
                         "factory of the same architecture")
    return ({k: params[k].detach().clone() for k in names}, {k: b.detach().clone() for k, b in model.named_buffers()})


def _auto_task(model, input_shape, batch_size, generator, device):
    config = getattr(model, "config", None)
    vocab = getattr(config, "vocab_size", None)
    embed = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if vocab is not None or (embed is not None and input_shape is None):
        if config is not None and not (getattr(config, "is_decoder", False) or "CausalLM" in type(model).__name__
                                       or "LMHead" in type(model).__name__):
            raise ValueError(f"{type(model).__name__} is not a causal language model: the n-gram task would let it "
                             "read the answer; pass task=(inputs, targets) or a DataLoader")
        limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or 64
        return ngram_task(int(vocab or embed.num_embeddings), seq_len=min(64, int(limit)),
                          batch_size=batch_size or 8, generator=generator,
                          device=device, key="input_ids" if config is not None else heads.first_input_name(model))
    if input_shape is None:
        first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))),
                     None)
        if not isinstance(first, nn.Linear):
            raise ValueError("cannot infer the input shape for the clusters task: pass input_shape= (without the "
                             "batch dimension, e.g. (3, 32, 32)) or task= your data")
        input_shape = (first.in_features,)
    p = next(iter(model.parameters()))
    with torch.no_grad():
        probe_out = logits_of(model(torch.zeros((2, *input_shape), dtype=p.dtype)))
    if probe_out.dim() != 2:
        raise ValueError(f"the clusters task needs [batch, classes] outputs, the model gives {list(probe_out.shape)}; "
                         "pass task=(inputs, targets) or a DataLoader")
    return clusters_task(input_shape, int(probe_out.shape[1]), batch_size=batch_size or 128, generator=generator,
                         dtype=p.dtype, device=device)


def _real_task(name, model, batch_size, device):
    from deepstart.experiments.data import load

    flat = isinstance(next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None), nn.Linear)
    x, y = load(name, "train", flatten=flat, progress=False)
    task = data_task((x, y), batch_size=batch_size or 128, device=device)
    task.name, task.description = name, f"{name} training set, minibatches of {batch_size or 128}, cross-entropy"
    return task


def _make_task(task, model, input_shape, batch_size, generator, device):
    if task is None or task in ("clusters", "ngram"):
        return _auto_task(model, input_shape, batch_size, generator, device)
    if isinstance(task, str):
        if task.lower() in ("mnist", "fashion-mnist", "cifar10"):
            return _real_task(task.lower(), model, batch_size, device)
        raise ValueError(f"task={task!r}: use None (synthetic), 'mnist', 'fashion-mnist', 'cifar10', "
                         "(inputs, targets) tensors or a DataLoader")
    if hasattr(task, "batch") and hasattr(task, "loss") and hasattr(task, "baseline"):
        return task
    return data_task(task, batch_size=batch_size or 128, device=device)


def _task_for(task, model, input_shape, batch_size, seed, device, head):
    """The default task (:func:`_make_task`); where it refuses the model (or the model takes several inputs) and
    ``head`` allows one, the backbone's task (:func:`deepstart.probe.heads.backbone_task`)."""
    allowed = head is not None and head is not False
    refused = None
    if not (allowed and len(heads._positional(model)) > 1):
        try:
            return _make_task(task, model, input_shape, batch_size, torch.Generator().manual_seed(seed), device)
        except ValueError as err:
            if not allowed:
                raise
            refused = err
    found = heads.backbone_task(task, model, input_shape, batch_size, torch.Generator().manual_seed(seed), device,
                                _real_task)
    if found is None:
        raise refused or ValueError(f"{type(model).__name__} takes several inputs and no task here fits it: pass "
                                    "task= a Task")
    return found


def _train(base, members, lrs, task, make_opt, steps, data_seed, device, elementwise, bar):
    """Train members in chunks that fit :data:`MEMORY_BUDGET` (stacked parameters, grads, optimizer state)."""
    per = sum(p.numel() * p.element_size() for p in members[0][0].values()) * 5
    size = max(1, int(MEMORY_BUDGET // max(per, 1)))
    traces = [engine.train_members(base, members[i:i + size], lrs[i:i + size], task, make_opt, steps, data_seed,
                                   device, vectorize=elementwise, bar=bar) for i in range(0, len(members), size)]
    if len(traces) == 1:
        return traces[0]
    cat = lambda name: np.concatenate([getattr(t, name) for t in traces])  # noqa: E731
    return engine.Trace(cat("loss"), cat("grad_norm"), cat("update_norm"), cat("weight_norm"), traces[0].layers,
                        traces[0].path, "; ".join(dict.fromkeys(t.note for t in traces if t.note)),
                        traces[0].stat_steps)


def probe(model_or_factory, task=None, *, optimizer="adam", lr: float | None = None, steps: int = 100,
          n_inits: int = 8, device=None, generator: torch.Generator | None = None, reference="auto",
          input_shape=None, batch_size: int | None = None, progress: bool = False,
          name: str | None = None, head="auto") -> ProbeResult:
    """Train the first ``steps`` of ``n_inits`` inits (and a reference) and say whether each starts training.

    Args:
        model_or_factory: an ``nn.Module`` (init 0 is it as given; inits 1.. are rebuilt from a Hugging Face
            model's config, or each tensor redrawn from its own law, as in ``check``) or a ``callable()`` building
            the architecture from torch's global RNG (called under n seeds drawn from ``generator``).
        task: None (synthetic, drawn fresh every step: Gaussian clusters for float-input classifiers, next-token
            prediction of a random bigram rule for causal language models),
            ``"mnist"``/``"fashion-mnist"``/``"cifar10"`` (``$DEEPSTART_DATA``), ``(inputs, targets)`` tensors, or a
            ``DataLoader`` of ``(inputs, targets)``; integer targets: cross-entropy, float: mean squared error.
        optimizer: ``"adam"``, ``"sgd"`` or a ``torch.optim.Optimizer`` class (or ``functools.partial`` of one).
        lr: the learning rate; None tries 3, one decade apart (Adam-like 1e-4..1e-2, SGD 1e-3..1e-1), and
            reports the one where the model's inits reach the lowest median final loss.
        steps: optimizer steps per init. n_inits: inits of the model (and of the reference).
        device: where to train (default: the CPU). generator: seeds of the inits, the task and the batches.
        reference: ``"auto"`` (the stock init of a Hugging Face model; He, or critical for a saturating activation,
            via ``deepstart.init.apply_``), a scheme (``"he"``, ``Scheme``), a ``callable()`` building a reference
            model, or None (no reference: verdicts are absolute).
        input_shape: one input's shape for the clusters task when it cannot be inferred (convolutional nets).
        batch_size: per step (default 128; 8 sequences for language models).
        head: ``"auto"``: where the default tasks refuse the model, a task from its input kind, and where its
            output is not the task's logits (a backbone), a linear readout on pooled features or every token, drawn
            once and shared by every init and the reference (:mod:`deepstart.probe.heads`); ``"linear"``: always
            a readout; None: neither.

    Returns:
        :class:`ProbeResult`, with verdicts *starts*, *slow*, *stuck*, *diverges* per init (``docs/probe.md``).

    Raises:
        ValueError / TypeError: bad arguments, with what to pass instead.
    """
    from deepstart._device import resolve_device

    _check_args(steps, n_inits, lr)
    opt_name, make_opt, elementwise, lr_range = _optimizer(optimizer)
    dev = resolve_device(device) or torch.device("cpu")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    started = time.perf_counter()
    seeds = [int(torch.randint(0, 2**62, (1,), generator=generator)) for _ in range(n_inits + 4)]
    model, factory = _base_model(model_or_factory, seeds[0])
    model = copy.deepcopy(model).cpu()
    model.train()
    names = [k for k, _ in model.named_parameters()]
    ref_desc, ref_build = reference_builder(model, reference)
    task = _task_for(task, model, input_shape, batch_size, seeds[-1], dev, head)
    read, head_note = heads.readout(model, task, head, seeds[-1] + 1)
    inits_desc, inits = _user_inits(model, factory, n_inits, torch.Generator().manual_seed(seeds[1]))
    refs = [_state(ref_build(s), names) for s in seeds[2:2 + n_inits]] if ref_build is not None else []
    name = name or type(model).__name__
    if read is not None:
        model, inits, refs = read, heads.with_head(inits, read.head), heads.with_head(refs, read.head)
    lrs = [float(lr)] if lr is not None else list(lr_range)
    members = [m for _ in lrs for m in inits + refs]
    member_lrs = [x for x in lrs for _ in inits + refs]
    bar = _bar(progress, len(members) * steps)
    try:
        trace = _train(model, members, member_lrs, task, make_opt, steps, seeds[-2], dev, elementwise, bar)
    finally:
        if bar is not None:
            bar.close()
    result = _result(trace, lrs, n_inits, len(refs) > 0, task, opt_name, steps, ref_desc, inits_desc, name,
                     time.perf_counter() - started)
    return dataclasses.replace(result, notes=result.notes + (head_note,)) if head_note else result


def _result(trace, lrs, n, has_ref, task, opt_name, steps, ref_desc, inits_desc, name, seconds) -> ProbeResult:
    block = 2 * n if has_ref else n
    rows = []
    for j, lr in enumerate(lrs):
        sl = slice(j * block, j * block + n)
        rl = slice(j * block + n, (j + 1) * block) if has_ref else None
        ref = None
        if has_ref:
            ref_hit, ref_v = judge_curves(trace.loss[rl], task.baseline, None)
            learns = sum(v in ("starts", "slow") for v in ref_v) * 2 >= n
            reached = ref_hit[ref_hit >= 0]
            ref = (ref_hit, ref_v, float(np.median(reached)) + 1 if learns and len(reached) else None)
        hit, verdicts = judge_curves(trace.loss[sl], task.baseline, ref[2] if ref else None)
        last = trace.loss[sl, -max(1, steps // 20):]
        final = float(np.median(np.where(np.isfinite(last), last, np.inf).mean(1)))
        rows.append((lr, sl, rl, hit, verdicts, ref, final))
    best = min(range(len(rows)), key=lambda j: (rows[j][6] if np.isfinite(rows[j][6]) else np.inf, j))
    lr, sl, rl, hit, verdicts, ref, _ = rows[best]
    notes = [f"inits: {inits_desc}"]
    if trace.note:
        notes.append(trace.note)
    table = tuple({"lr": r[0], "verdict": overall(r[4]), "median_final_loss": float(r[6]),
                   "ref_verdict": overall(r[5][1]) if r[5] else None} for r in rows)
    if len(lrs) > 1:
        notes.append("lr range " + ", ".join(f"{r['lr']:g}: {r['verdict']}" for r in table) +
                     f"; reported: {lr:g} (lowest median final loss of the model's inits)")
    ratio = se = None
    if ref is not None:
        ratio, se = ratio_se(hit, ref[0], steps)
        if ref[2] is None:
            notes.append("the reference did not learn at this lr either: the verdicts per init are absolute (slow = "
                         "after half the steps), and 'stuck' overall is reported as 'inconclusive'")
        if (hit < 0).any() or (ref[0] < 0).any():
            notes.append("inits that never reached the threshold count as the full number of steps in the ratio "
                         "(a lower bound)")
    ratio_w = trace.update_norm[sl] / np.maximum(trace.weight_norm[sl], 1e-300)
    return ProbeResult(
        model=name, task=task.description, optimizer=opt_name, lr=lr, steps=steps, n_inits=n,
        baseline=task.baseline, loss=trace.loss[sl], hit=hit, verdicts=tuple(verdicts),
        verdict="inconclusive" if ref is not None and ref[2] is None and overall(verdicts) == "stuck" else
        overall(verdicts),
        layers=trace.layers, grad_norm=trace.grad_norm[sl], update_ratio=ratio_w,
        update_share=update_share(trace.update_norm[sl]), reference=ref_desc,
        ref_loss=trace.loss[rl] if ref else None, ref_hit=ref[0] if ref else None,
        ref_verdicts=tuple(ref[1]) if ref else None, ratio=ratio, ratio_se=se,
        ref_update_share=update_share(trace.update_norm[rl]) if ref else None, lr_table=table, path=trace.path,
        notes=tuple(notes), seconds=seconds, stat_steps=tuple(int(t) for t in trace.stat_steps))


def _bar(progress, total):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="probe", unit="step", leave=False)
