"""Vectorized training of K same-shaped networks: stacked parameters, ``torch.func.vmap``, functional optimizers.

The K networks of a group are built one by one (each with its own ``Generator().manual_seed(seed)``, so each is
exactly the network :func:`deepstart.experiments.train.train_single` would build), then their parameters are
stacked along a new leading axis. One step evaluates ``vmap(grad_and_value(loss))`` over the stack, so the K
forward/backward passes run as batched matrix products, and the update is applied to the stacked tensors by a
functional SGD/Adam that reproduces ``torch.optim.SGD``/``torch.optim.Adam`` (same formulas, per-member ``lr``,
``momentum``, ``weight_decay`` as ``[K]`` tensors).

When every member uses the same data order the minibatch is shared (``in_dims=None``: the first layer is then one
matrix product for all K); otherwise each member gathers its own minibatch (``[K, B, ...]``).

``device=``: the networks are built on the CPU (each from its own CPU generator, as above) and their stacked
parameters, the optimizer state and the data moved to ``device``; data orders are drawn on the CPU and moved, so a
run on a GPU starts from the same weights and sees the same minibatches as on the CPU. Per-member bookkeeping
(which members are alive, running losses) stays on the CPU.

A member whose loss is NaN/Inf is recorded as diverged at that step and *removed* from every stacked tensor
(parameters, optimizer state, hyper-parameters, data order), so it costs nothing afterwards.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, vmap

from deepstart.experiments.fastmlp import FastMLP
from deepstart.experiments.metrics import TrialResult
from deepstart.experiments.train import _record, build_model, schedule
from deepstart.experiments.trial import Data, Trial

__all__ = ["train_group", "FunctionalSGD", "FunctionalAdam"]


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1))).to(like.dtype)


class FunctionalSGD:
    """``torch.optim.SGD`` (dampening 0, no Nesterov) on stacked parameters: g ← g + λp; b ← μb + g; p ← p − ηb."""

    def __init__(self, params: dict, lr, momentum, weight_decay):
        self.lr, self.momentum, self.wd = lr, momentum, weight_decay
        self.use_momentum = bool((momentum != 0).any())
        self.buf = {k: torch.zeros_like(v) for k, v in params.items()} if self.use_momentum else {}

    @torch.no_grad()
    def step(self, params: dict, grads: dict) -> None:
        for k, p in params.items():
            g = grads[k]
            if bool((self.wd != 0).any()):
                g = g.add(p * _bcast(self.wd, p))
            if self.use_momentum:
                b = self.buf[k]
                b.mul_(_bcast(self.momentum, b)).add_(g)
                g = b
            p.addcmul_(g, _bcast(self.lr, p), value=-1.0)

    def select(self, keep: torch.Tensor) -> None:
        self.lr, self.momentum, self.wd = self.lr[keep], self.momentum[keep], self.wd[keep]
        self.buf = {k: v[keep] for k, v in self.buf.items()}


class FunctionalAdam:
    """``torch.optim.Adam`` (Kingma & Ba 2015, Alg. 1, torch's form) on stacked parameters, L2 weight decay."""

    def __init__(self, params: dict, lr, momentum, weight_decay, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.wd, self.betas, self.eps, self.t = lr, weight_decay, betas, eps, 0
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}

    @torch.no_grad()
    def step(self, params: dict, grads: dict) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2_sqrt = 1 - b1**self.t, (1 - b2**self.t) ** 0.5
        for k, p in params.items():
            g = grads[k]
            if bool((self.wd != 0).any()):
                g = g.add(p * _bcast(self.wd, p))
            self.m[k].lerp_(g, 1 - b1)
            self.v[k].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (self.v[k].sqrt() / bc2_sqrt).add_(self.eps)
            p.addcdiv_(self.m[k] * _bcast(self.lr / bc1, p), denom, value=-1.0)

    def select(self, keep: torch.Tensor) -> None:
        self.lr, self.wd = self.lr[keep], self.wd[keep]
        self.m = {k: v[keep] for k, v in self.m.items()}
        self.v = {k: v[keep] for k, v in self.v.items()}


_OPTIMIZERS = {"sgd": FunctionalSGD, "adam": FunctionalAdam}


def _stack(models) -> tuple[dict, dict]:
    named = [dict(m.named_parameters()) for m in models]
    named_b = [dict(m.named_buffers()) for m in models]
    params = {n: torch.stack([d[n].detach() for d in named]) for n in named[0]}
    buffers = {n: torch.stack([d[n] for d in named_b]) for n in named_b[0]}
    return params, buffers


class _Group:
    """Mutable state of one vectorized batch: stacked tensors and which trials (``alive``) they belong to."""

    def __init__(self, trials: list[Trial], data: Data, device: torch.device):
        self.trials, self.device = trials, device
        models = [build_model(t, data, torch.Generator().manual_seed(t.seed)) for t in trials]
        self.base = models[0].to(device)
        self.data = data.to(device)
        self.params, self.buffers = _stack(models)
        self.params = {k: v.to(device) for k, v in self.params.items()}
        self.buffers = {k: v.to(device) for k, v in self.buffers.items()}
        self.fast = FastMLP(self.base) if FastMLP.supports(self.base) else None
        if self.fast is not None:
            self.params = self.fast.from_native(self.params)
        hyper = lambda name: torch.tensor([float(getattr(t, name)) for t in trials], device=device)  # noqa: E731
        self.opt = _OPTIMIZERS[trials[0].optimizer](self.params, hyper("lr"), hyper("momentum"),
                                                    hyper("weight_decay"))
        self.alive = torch.arange(len(trials))
        seeds = [t.resolved_data_seed for t in trials]
        self.shared = len(set(seeds)) == 1
        self.gens = [torch.Generator().manual_seed(s) for s in (seeds[:1] if self.shared else seeds)]

        def loss_fn(p, b, x, y):
            out = functional_call(self.base, (p, b), (x,))
            loss = F.cross_entropy(out, y)
            return loss, (loss.detach(), (out.argmax(-1) == y).sum())

        self.grad_fn = {d: vmap(grad_and_value(loss_fn, has_aux=True), in_dims=(0, 0, d, d)) for d in (None, 0)}
        self.fwd = vmap(lambda p, b, x: functional_call(self.base, (p, b), (x,)), in_dims=(0, 0, None))

    def perms(self, n: int) -> torch.Tensor:
        return torch.stack([torch.randperm(n, generator=g) for g in self.gens]).to(self.device)

    def step(self, idx: torch.Tensor):
        """One optimizer step on minibatch ``idx`` ([1, B] shared or [K, B]); returns per-member (loss, correct)."""
        x, y = self.data.x_train[idx], self.data.y_train[idx]
        d = None if self.shared else 0
        if self.shared:
            x, y = x[0], y[0]
        if self.fast is not None:
            return self.fast.grad_and_loss(self.params, x, y)
        grads, (_, (loss, correct)) = self.grad_fn[d](self.params, self.buffers, x, y)
        return grads, loss, correct

    def member_params(self, j: int) -> dict:
        member = {k: v[j].detach().cpu().clone() for k, v in self.params.items()}
        return self.fast.to_native(member) if self.fast is not None else member

    def drop(self, keep: torch.Tensor) -> None:
        """Keep members ``keep`` (indices into the alive members, on the device)."""
        self.params = {k: v[keep] for k, v in self.params.items()}
        self.buffers = {k: v[keep] for k, v in self.buffers.items()}
        self.opt.select(keep)
        self.alive = self.alive[keep.cpu()]
        if not self.shared:
            keep_list = keep.tolist()
            self.gens = [self.gens[i] for i in keep_list]

    @torch.no_grad()
    def evaluate(self, chunk: int = 4096) -> tuple[list, list]:
        n = len(self.data.y_test)
        k = len(self.alive)
        if n == 0:
            return [None] * k, [None] * k
        loss, correct = torch.zeros(k, dtype=torch.float64), torch.zeros(k, dtype=torch.long)
        for i in range(0, n, chunk):
            x = self.data.x_test[i:i + chunk]
            out = self.fast.forward(self.params, x) if self.fast else self.fwd(self.params, self.buffers, x)
            y = self.data.y_test[i:i + chunk]
            ce = F.cross_entropy(out.transpose(1, 2), y.expand(k, -1), reduction="none").sum(1)
            loss += ce.detach().to("cpu", torch.float64)
            correct += (out.argmax(-1) == y).sum(1).cpu()
        return (loss / n).tolist(), (correct.double() / n).tolist()


def train_group(trials: list[Trial], data: Data, *, progress: bool = False,
                return_params: bool = False, device=None):
    """Train ``trials`` (equal :attr:`Trial.group_key`) as one vectorized batch on ``data`` (shaped for the arch)
    on ``device`` (default CPU; see :func:`deepstart.experiments.train.resolve_device`).

    Returns ``list[TrialResult]`` (and, if ``return_params``, one ``{name: tensor}`` per trial, on the CPU, with its
    final or, for diverged members, last finite parameters)."""
    from deepstart.experiments.train import resolve_device

    keys = {t.group_key for t in trials}
    if len(keys) != 1:
        raise ValueError("train_group needs trials with one group_key (same shapes and schedule); "
                         "use train_batch to group them automatically")
    t0 = time.perf_counter()
    first, K = trials[0], len(trials)
    g = _Group(trials, data, resolve_device(device))
    n = len(data.y_train)
    per_epoch, total, evals = schedule(first, n)
    B = first.batch_size
    histories: list[list] = [[] for _ in range(K)]
    diverged_at: list = [None] * K
    final_params: list = [None] * K
    loss_sum = torch.zeros(K, dtype=torch.float64)
    correct = torch.zeros(K, dtype=torch.long)
    seen = examples = step = 0

    def record():
        test_loss, test_acc = g.evaluate()
        for j, i in enumerate(g.alive.tolist()):
            tl = float(loss_sum[i] / seen) if seen else None
            ta = float(correct[i]) / examples if seen else None
            histories[i].append(_record(step, per_epoch, tl, ta, test_loss[j], test_acc[j], t0))

    record()
    bar = _bar(progress, total, f"batch of {K} ({first.arch} d={first.depth} w={first.width})")
    while step < total and len(g.alive):
        perms = g.perms(n)
        for b in range(per_epoch):
            if step >= total or not len(g.alive):
                break
            grads, loss, corr = g.step(perms[:, b * B:(b + 1) * B])
            step += 1
            finite = torch.isfinite(loss).cpu()
            if not bool(finite.all()):
                for j in (~finite).nonzero().flatten().tolist():
                    i = int(g.alive[j])
                    diverged_at[i] = step
                    final_params[i] = g.member_params(j)
                keep = finite.nonzero().flatten().to(g.device)
                grads = {k: v[keep] for k, v in grads.items()}
                loss, corr = loss[keep], corr[keep]
                g.drop(keep)
                if not g.shared:
                    perms = perms[keep]
                if not len(g.alive):
                    break
            g.opt.step(g.params, grads)
            loss_sum.index_add_(0, g.alive, loss.detach().to("cpu", torch.float64))
            correct.index_add_(0, g.alive, corr.to("cpu", torch.long))
            seen += 1
            examples += min(B, n - b * B)
            if step in evals:
                record()
                loss_sum.zero_(), correct.zero_()
                seen = examples = 0
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    for j, i in enumerate(g.alive.tolist()):
        final_params[i] = g.member_params(j)
    results = [TrialResult(t.id, t.to_dict(), tuple(histories[i]), diverged_at[i] is not None, diverged_at[i],
                           step if diverged_at[i] is None else diverged_at[i] - 1, seconds, K)
               for i, t in enumerate(trials)]
    return (results, final_params) if return_params else results


def _bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)
