"""Train many inits of one architecture for a few steps: stacked and vectorized where the model allows it.

Members (inits × learning rates) share every batch. Their parameters are stacked along a new leading axis as leaf
tensors and one step is one vectorized forward — the batched matrix products of
:class:`deepstart.experiments.fastmlp.FastMLP` for plain ``Linear``/activation MLPs, otherwise
``torch.func.vmap`` over ``torch.func.functional_call`` (``randomness="different"``: each member its own dropout) —
and one backward of ``Σ_k loss_k`` (members are independent, so each gets the gradient of its own loss). The
optimizer is the user's ``torch.optim`` class acting on the stacked leaves, one optimizer per learning rate: an
elementwise optimizer (SGD, Adam, AdamW, RMSprop, …) on a stacked tensor is exactly that optimizer on each member.

Fallback (``path="sequential"``): a model the vectorized forward cannot run (in-place buffer updates such as batch
norm's running statistics, data-dependent control flow) or an optimizer that is not elementwise trains one member
after another, one model alive at a time, on the same batches; the trace says why.

A member whose loss is NaN/inf is *diverged* from that step on: its loss is recorded as NaN and its gradients are
zeroed, so its parameters stay at their last finite values and cost nothing to the others.

The loss is recorded every step; the per-layer statistics (gradient norm, update norm ‖Δθ‖, weight norm) only on
:func:`stat_steps` (every ``max(1, steps // STAT_SAMPLES)``-th step from 0, and the last), where the parameters are
copied before the update: copying and reducing every parameter every step cost about as much as Adam itself.

Gradients handed to the optimizer have their parameter's strides (:func:`_set_grads`): ``vmap`` returns some
gradients transposed (a ``Linear`` weight's comes back ``[K, in, out]``-strided), and torch's fused CPU Adam reads
a gradient's memory as if it had its parameter's layout, silently (``docs/probe.md``, cost section, has the
repro).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import inspect
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from deepstart.experiments.fastmlp import FastMLP
from deepstart.probe.tasks import logits_of

__all__ = ["Trace", "train_members", "make_optimizer", "stat_steps", "ELEMENTWISE", "STAT_SAMPLES"]

STAT_SAMPLES = 20  # per-layer statistics on about this many steps (plus the last)

ELEMENTWISE = tuple(getattr(torch.optim, n) for n in ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop",
                                                       "Adagrad", "Rprop", "ASGD") if hasattr(torch.optim, n))


def make_optimizer(optimizer, params, lr: float) -> torch.optim.Optimizer:
    """``optimizer(params, lr=lr)``, with ``fused=True`` when it is one of torch's classes with a fused kernel for
    these parameters' device and the caller chose neither ``foreach=`` nor ``fused=`` (the same update in one pass
    over the memory: on 2 CPU cores, Adam on 8 stacked 20 × 256 MLPs takes 4 ms a step fused, 28 ms foreach)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    cls = optimizer.func if isinstance(optimizer, functools.partial) else optimizer
    chosen = set(optimizer.keywords) if isinstance(optimizer, functools.partial) else set()
    if cls.__module__.startswith("torch.optim") and "fused" in inspect.signature(cls).parameters and \
            not chosen & {"foreach", "fused", "differentiable"} and \
            all(p.device.type in _get_fused_kernels_supported_devices() and p.is_floating_point() for p in params):
        return optimizer(params, lr=lr, fused=True)
    return optimizer(params, lr=lr)


def stat_steps(steps: int) -> np.ndarray:
    """The steps whose per-layer statistics are recorded: every ``max(1, steps // STAT_SAMPLES)``-th from 0, and the
    last (every step when ``steps < 2 · STAT_SAMPLES``)."""
    every = max(1, steps // STAT_SAMPLES)
    return np.unique(np.r_[np.arange(0, steps, every), steps - 1])


@dataclass
class Trace:
    """Per member (rows): the loss on every step's batch before its update, and on the steps ``stat_steps`` per
    layer the gradient norm, the update norm ‖Δθ‖ and the weight norm ‖θ‖ before the update."""

    loss: np.ndarray          # [K, steps]
    grad_norm: np.ndarray     # [K, S, L]
    update_norm: np.ndarray   # [K, S, L]
    weight_norm: np.ndarray   # [K, S, L]
    layers: tuple
    path: str                 # "fastmlp", "vmap" or "sequential"
    note: str = ""
    stat_steps: np.ndarray | None = None  # [S]: the steps of the per-layer statistics


def _layers(names) -> tuple[tuple, np.ndarray]:
    layers = tuple(dict.fromkeys(n.rsplit(".", 1)[0] if "." in n else n for n in names))
    index = {name: i for i, name in enumerate(layers)}
    return layers, np.array([index[n.rsplit(".", 1)[0] if "." in n else n] for n in names])


class _Recorder:
    def __init__(self, k: int, steps: int, names):
        self.layers, self.owner = _layers(names)
        self.steps = stat_steps(steps)
        self.at = {int(t): j for j, t in enumerate(self.steps)}
        self.loss = np.full((k, steps), np.nan)
        self.grad, self.update, self.weight = (np.full((k, len(self.steps), len(self.layers)), np.nan)
                                               for _ in range(3))

    def put(self, rows, step: int, grads, before, update) -> None:
        """Statistics of ``step`` (one of :attr:`steps`): ``grads``/``before``/``update`` are lists (one per
        parameter) of ``[k]`` squared norms (tensors)."""
        for target, sq in ((self.grad, grads), (self.weight, before), (self.update, update)):
            per_param = torch.stack(sq).cpu().double().numpy()  # [P, k]
            per_layer = np.zeros((len(self.layers), per_param.shape[1]))
            np.add.at(per_layer, self.owner, per_param)
            target[rows, self.at[step]] = np.sqrt(per_layer.T)

    def trace(self, path: str, note: str = "") -> Trace:
        return Trace(self.loss, self.grad, self.update, self.weight, self.layers, path, note, self.steps)


def _sq(t: torch.Tensor) -> torch.Tensor:
    """Per member (leading axis) squared norm."""
    t = t.detach()
    return torch.linalg.vector_norm(t.reshape(len(t), -1), dim=1).square() if t.dim() > 1 else t.square()


def _stacked_forward(base: nn.Module, buffers: dict):
    """``f(params, args, kwargs) -> [K, …] logits`` for the stacked ``params`` (and the path's name)."""
    if FastMLP.supports(base):
        fast = FastMLP(base)
        # a batch shared by all members, expanded: matmul would broadcast it and pay a copy and a fill of every
        # member's first-layer weight gradient in its backward
        return (lambda p, a, kw: fast.forward(p, a[0].expand(len(next(iter(p.values()))), *a[0].shape)
                                              if a[0].dim() == 2 else a[0])), fast, "fastmlp"

    def one(p, b, a, kw):
        return logits_of(functional_call(base, (p, b), a, kw))
    vm = vmap(one, in_dims=(0, 0, None, None), randomness="different")
    return (lambda p, a, kw: vm(p, buffers, a, kw)), None, "vmap"


def _set_grads(leaves, names, grads, alive) -> None:
    """``.grad`` of each stacked leaf: its gradient in the leaf's own strides (fused optimizers read the memory as
    laid out like the parameter), zeroed for diverged rows (non-finite entries set to 0 there). On the CPU the
    masking is skipped while every member is alive; on an accelerator asking would wait for it every step, so the
    mask is always applied."""
    it, start = iter(grads), 0
    every = alive.device.type == "cpu" and bool(alive.all())
    for g in leaves:
        n = len(next(iter(g.values())))
        keep = alive[start:start + n]
        for k in names:
            grad, leaf = next(it), g[k]
            if grad is None:
                grad = torch.zeros_like(leaf)
            elif not every:
                grad = torch.where(keep.view(-1, *([1] * (grad.dim() - 1))), grad, 0.0)
            leaf.grad = _in_layout_of(leaf, grad)
        start += n


def _in_layout_of(param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``grad`` with ``param``'s strides (a copy only when they differ): torch's fused CPU optimizers read a
    gradient's memory as if laid out like its parameter (``docs/probe.md``)."""
    return grad if grad.stride() == param.stride() else torch.empty_like(param).copy_(grad)


def _stepper(opts, groups, names, rec, rows):
    """``step(t)``: the optimizers' step; on a statistics step ``t``, also per member the squared norms of the
    gradients, of the weights before the step and of the update (``groups``: per optimizer, its stacked leaves by
    name; members in ``rows``' order). The weights before the step are copied into buffers allocated once: a fresh
    copy of this size costs its page faults each time (1.7 ms instead of 0.1 ms per 2 MB on 2 CPU cores)."""
    before = []

    def per_member(tensors):  # [k] squared norms per parameter, members in rows' order
        return [torch.cat([_sq(t[k]) for t in tensors]) for k in names]

    def step(t: int) -> None:
        if t not in rec.at:
            for opt in opts:
                opt.step()
            return
        if not before:
            before.extend({k: torch.empty_like(g[k]) for k in names} for g in groups)
        for b, g in zip(before, groups):
            torch._foreach_copy_(list(b.values()), [g[k].detach() for k in names])
        grads = per_member([{k: g[k].grad for k in names} for g in groups])
        weights = per_member(before)
        for opt in opts:
            opt.step()
        for b, g in zip(before, groups):
            torch._foreach_sub_(list(b.values()), [g[k].detach() for k in names])  # b ← θ_before − θ_after
        rec.put(rows, t, grads, weights, per_member(before))
    return step


def train_stacked(base, members, lrs, task, make_opt, steps: int, data_seed: int, device, bar=None) -> Trace:
    """Vectorized training of ``members`` (list of ``(params, buffers)``) with per-member ``lrs``."""
    names = list(members[0][0])
    stacked = {k: torch.stack([m[0][k].detach() for m in members]).to(device) for k in names}
    buffers = {k: torch.stack([m[1][k] for m in members]).to(device) for k in members[0][1]}
    base = copy.deepcopy(base).to(device)
    forward, fast, path = _stacked_forward(base, buffers)
    if fast is not None:
        stacked = fast.from_native(stacked)
    groups = sorted(set(lrs), key=lrs.index)
    order = [i for lr in groups for i in range(len(members)) if lrs[i] == lr]  # members grouped by lr
    leaves = [{k: v[[i for i in order if lrs[i] == lr]].clone().requires_grad_() for k, v in stacked.items()}
              for lr in groups]
    del stacked
    opts = [make_opt(list(g.values()), lr) for g, lr in zip(leaves, groups)]
    if fast is None:
        buffers.update({k: v[order] for k, v in buffers.items()})
    rec = _Recorder(len(members), steps, names)
    alive = torch.ones(len(members), dtype=torch.bool, device=device)
    losses_t = torch.full((steps, len(members)), float("nan"), device=device)  # read back once, at the end
    flat = [g[k] for g in leaves for k in names]
    opt_step = _stepper(opts, leaves, names, rec, order)
    gen = torch.Generator().manual_seed(data_seed)
    if task.restart is not None:
        task.restart()
    vloss = vmap(task.loss, in_dims=(0, None))
    for step in range(steps):
        args, kwargs, y = task.batch(gen)
        params = {k: torch.cat([g[k] for g in leaves]) if len(leaves) > 1 else leaves[0][k] for k in names}
        losses = vloss(forward(params, args, kwargs), y)
        grads = torch.autograd.grad(losses.sum(), flat, allow_unused=True)
        with torch.no_grad():
            alive &= torch.isfinite(losses)
            losses_t[step] = torch.where(alive, losses, float("nan"))
            _set_grads(leaves, names, grads, alive)
            del grads
            opt_step(step)
            for opt in opts:
                opt.zero_grad(set_to_none=True)
        if bar is not None:
            bar.update(1)
    rec.loss[order] = losses_t.T.double().cpu().numpy()
    return rec.trace(path)


def _sequential_stats(opt, leaves, rec, row: int, step: int) -> None:
    """The statistics of :func:`_stepper` around ``opt.step()``, for one model's own parameters (no member axis)."""
    grads = [torch.zeros(1) if p.grad is None else p.grad.double().pow(2).sum().view(1) for p in leaves]
    before = [p.detach().clone() for p in leaves]
    opt.step()
    rec.put([row], step, grads, [b.double().pow(2).sum().view(1) for b in before],
            [(p.detach() - b).double().pow(2).sum().view(1) for p, b in zip(leaves, before)])


def train_sequential(base, members, lrs, task, make_opt, steps: int, data_seed: int, device, bar=None,
                     note: str = "") -> Trace:
    """One member after another, one model alive at a time, each on the same batches."""
    names = list(members[0][0])
    rec = _Recorder(len(members), steps, names)
    for i, ((params, buffers), lr) in enumerate(zip(members, lrs)):
        model = copy.deepcopy(base).to(device)
        with torch.no_grad():
            own = dict(model.named_parameters())
            for k in names:
                own[k].copy_(params[k])
            for k, b in model.named_buffers():
                if k in buffers:
                    b.copy_(buffers[k])
        leaves = [own[k] for k in names]
        opt = make_opt(leaves, lr)
        gen = torch.Generator().manual_seed(data_seed)
        if task.restart is not None:
            task.restart()
        diverged = False
        for step in range(steps):
            args, kwargs, y = task.batch(gen)
            if diverged:
                continue
            loss = task.loss(model(*args, **kwargs), y)
            if not bool(torch.isfinite(loss)):
                diverged = True
                continue
            rec.loss[i, step] = float(loss.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for p in leaves:  # backward gives a parameter's layout; a hook or custom Function may not
                    if p.grad is not None:
                        p.grad = _in_layout_of(p, p.grad)
                if step in rec.at:
                    _sequential_stats(opt, leaves, rec, i, step)
                else:
                    opt.step()
            if bar is not None:
                bar.update(1)
        del model, opt, leaves
    return rec.trace("sequential", note)


@contextlib.contextmanager
def _own_rng(seed: int, device):
    """torch's global RNG (dropout masks) seeded from the probe's data seed inside, and the caller's state restored
    after: a probe is reproducible from its ``generator`` and leaves the caller's random stream alone."""
    cuda = torch.device(device).type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed(seed)
        yield


def train_members(base, members, lrs, task, make_opt, steps, data_seed, device, *, vectorize: bool, bar=None):
    """Vectorized when ``vectorize`` and the model runs under it, else sequential (the trace's note says why)."""
    with _own_rng(data_seed, device):
        if not vectorize:
            return train_sequential(base, members, lrs, task, make_opt, steps, data_seed, device, bar,
                                    "optimizer not elementwise: members trained one after another")
        try:
            return train_stacked(base, members, lrs, task, make_opt, steps, data_seed, device, bar)
        except (RuntimeError, NotImplementedError, ValueError) as err:
            first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            return train_sequential(base, members, lrs, task, make_opt, steps, data_seed, device, bar,
                                    f"the model does not run under torch.func.vmap ({first}); members trained "
                                    "one after another, one model alive at a time")
