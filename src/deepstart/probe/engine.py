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
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from deepstart.experiments.fastmlp import FastMLP
from deepstart.probe.tasks import logits_of

__all__ = ["Trace", "train_members", "ELEMENTWISE"]

ELEMENTWISE = tuple(getattr(torch.optim, n) for n in ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop",
                                                       "Adagrad", "Rprop", "ASGD") if hasattr(torch.optim, n))


@dataclass
class Trace:
    """Per member (rows) and step: loss on that step's batch before its update, and per layer the gradient norm,
    the update norm ‖Δθ‖ and the weight norm ‖θ‖ before the update."""

    loss: np.ndarray          # [K, steps]
    grad_norm: np.ndarray     # [K, steps, L]
    update_norm: np.ndarray   # [K, steps, L]
    weight_norm: np.ndarray   # [K, steps, L]
    layers: tuple
    path: str                 # "fastmlp", "vmap" or "sequential"
    note: str = ""


def _layers(names) -> tuple[tuple, np.ndarray]:
    layers = tuple(dict.fromkeys(n.rsplit(".", 1)[0] if "." in n else n for n in names))
    index = {name: i for i, name in enumerate(layers)}
    return layers, np.array([index[n.rsplit(".", 1)[0] if "." in n else n] for n in names])


class _Recorder:
    def __init__(self, k: int, steps: int, names):
        self.layers, self.owner = _layers(names)
        L = len(self.layers)
        self.loss = np.full((k, steps), np.nan)
        self.grad, self.update, self.weight = (np.full((k, steps, L), np.nan) for _ in range(3))

    def put(self, rows, step: int, loss, grads, before, after) -> None:
        """``grads``/``before``/``after``: lists (one per parameter) of ``[k]`` squared norms (tensors)."""
        self.loss[rows, step] = loss
        for target, sq in ((self.grad, grads), (self.weight, before), (self.update, after)):
            per_param = torch.stack(sq).cpu().double().numpy()  # [P, k]
            per_layer = np.zeros((len(self.layers), per_param.shape[1]))
            np.add.at(per_layer, self.owner, per_param)
            target[rows, step] = np.sqrt(per_layer.T)

    def trace(self, path: str, note: str = "") -> Trace:
        return Trace(self.loss, self.grad, self.update, self.weight, self.layers, path, note)


def _sq(t: torch.Tensor) -> torch.Tensor:
    """Per member (leading axis) squared norm."""
    return torch.linalg.vector_norm(t.detach(), dim=tuple(range(1, t.dim()))).square() if t.dim() > 1 else \
        t.detach().square()


def _stacked_forward(base: nn.Module, buffers: dict):
    """``f(params, args, kwargs) -> [K, …] logits`` for the stacked ``params`` (and the path's name)."""
    if FastMLP.supports(base):
        fast = FastMLP(base)
        return (lambda p, a, kw: fast.forward(p, a[0])), fast, "fastmlp"

    def one(p, b, a, kw):
        return logits_of(functional_call(base, (p, b), a, kw))
    vm = vmap(one, in_dims=(0, 0, None, None), randomness="different")
    return (lambda p, a, kw: vm(p, buffers, a, kw)), None, "vmap"


def _set_grads(leaves, names, grads, alive) -> None:
    """``.grad`` of each stacked leaf: its gradient, zeroed for diverged rows (non-finite entries set to 0 there)."""
    it, start, every = iter(grads), 0, bool(alive.all())
    for g in leaves:
        n = len(next(iter(g.values())))
        keep = alive[start:start + n]
        for k in names:
            grad = next(it)
            if grad is None:
                grad = torch.zeros_like(g[k])
            elif not every:
                grad = torch.where(keep.view(-1, *([1] * (grad.dim() - 1))), grad, 0.0)
            g[k].grad = grad
        start += n


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
    gen = torch.Generator().manual_seed(data_seed)
    if task.restart is not None:
        task.restart()
    vloss = vmap(task.loss, in_dims=(0, None))
    for step in range(steps):
        args, kwargs, y = task.batch(gen)
        params = {k: torch.cat([g[k] for g in leaves]) if len(leaves) > 1 else leaves[0][k] for k in names}
        losses = vloss(forward(params, args, kwargs), y)
        grads = torch.autograd.grad(losses.sum(), [g[k] for g in leaves for k in names], allow_unused=True)
        with torch.no_grad():
            alive &= torch.isfinite(losses.detach())
            _set_grads(leaves, names, grads, alive)
            before = [{k: g[k].detach().clone() for k in names} for g in leaves]
            for opt in opts:
                opt.step()
            per_param = [[torch.cat([f(g, b, k) for g, b in zip(leaves, before)]) for k in names]
                         for f in (lambda g, b, k: _sq(g[k].grad), lambda g, b, k: _sq(b[k]),
                                   lambda g, b, k: _sq(g[k].detach() - b[k]))]
            loss_np = losses.detach().double().cpu().numpy()
            loss_np[~alive.cpu().numpy()] = np.nan
            rec.put(order, step, loss_np, *per_param)
            for opt in opts:
                opt.zero_grad(set_to_none=True)
        if bar is not None:
            bar.update(1)
    return rec.trace(path)


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
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                grads = [torch.zeros(()) if p.grad is None else p.grad.detach().double().pow(2).sum() for p in leaves]
                before = [p.detach().clone() for p in leaves]
                opt.step()
                rec.put([i], step, float(loss), [g.view(1) for g in grads],
                        [b.double().pow(2).sum().view(1) for b in before],
                        [(p.detach() - b).double().pow(2).sum().view(1) for p, b in zip(leaves, before)])
            if bar is not None:
                bar.update(1)
        del model, opt, leaves
    return rec.trace("sequential", note)


def train_members(base, members, lrs, task, make_opt, steps, data_seed, device, *, vectorize: bool, bar=None):
    """Vectorized when ``vectorize`` and the model runs under it, else sequential (the trace's note says why)."""
    if not vectorize:
        return train_sequential(base, members, lrs, task, make_opt, steps, data_seed, device, bar,
                                "optimizer not elementwise: members trained one after another")
    try:
        return train_stacked(base, members, lrs, task, make_opt, steps, data_seed, device, bar)
    except (RuntimeError, NotImplementedError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        return train_sequential(base, members, lrs, task, make_opt, steps, data_seed, device, bar,
                                f"the model does not run under torch.func.vmap ({first}); members trained one "
                                "after another, one model alive at a time")
