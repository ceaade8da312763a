"""Training: one network the ordinary PyTorch way, or many at once as one vectorized computation.

Public API (stable; used by the reproductions and the sweep runners)::

    from deepstart.experiments.train import Trial, train_batch, train_single

    trials = [Trial(dataset="mnist", depth=20, width=20, init="he", lr=1e-3, seed=s) for s in range(5)]
    results = train_batch(trials)                 # list[TrialResult], same order as trials
    results[0].epochs_to(0.2)                     # Hanin & Rolnick's "epochs to 20% accuracy"

- :func:`train_batch` groups trials by :attr:`Trial.group_key` (same shapes and schedule), trains each group as one
  ``torch.func.vmap`` computation over stacked parameters (:mod:`deepstart.experiments.batched`), and returns results
  equal, to float tolerance, to :func:`train_single` on each trial with the same seed.
- :func:`train_single` is the plain reference: ``nn.Module`` + ``torch.optim.SGD``/``Adam`` + a Python loop.

Devices: ``device=`` (``"cpu"``, the default; ``"cuda"``, ``"cuda:N"``, ``"mps"``; checked by
:func:`resolve_device`) is where the training arithmetic runs. Networks are initialized and minibatch orders drawn
from CPU generators and then moved, so the same seed gives the same initial weights and data order on every device;
only floating-point arithmetic differs between devices (the device is part of a stored result's provenance).

Both use the same minibatch order (``torch.randperm`` per epoch from ``Generator().manual_seed(data_seed)``), the
same evaluation schedule (step 0, then every ``eval_every`` steps or each epoch end, and the last step) and the
same divergence rule (a non-finite training loss stops the trial and records ``diverged_at_step``).

"Equal to float tolerance" is per step: batched and solo runs differ only in floating-point summation order
(~1e-7 relative). Over many steps of a deep ReLU net, a pre-activation within rounding of 0 can flip sign in one
run and not the other, so long trajectories drift apart like any chaotic system (measured on MNIST, depth 20,
width 64: parameters agree to 1e-7 after 10 steps for most seeds, differ by ~1e-2 after 100). The tests compare
shallow nets over tens of steps, where the agreement is exact to ~1e-6.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import torch
import torch.nn.functional as F

from deepstart._device import resolve_device as _resolve_device
from deepstart.experiments.metrics import TrialResult
from deepstart.experiments.trial import Data, Trial, load_data

__all__ = ["Trial", "TrialResult", "Data", "build_model", "train_single", "train_batch", "group_trials",
           "schedule", "load_data", "resolve_device"]


def resolve_device(device=None) -> torch.device:
    """``device`` checked to be usable here (:func:`deepstart._device.resolve_device`); None → the CPU."""
    return _resolve_device(device) or torch.device("cpu")


def build_model(trial: Trial, data: Data, generator: torch.Generator | None = None) -> torch.nn.Module:
    """The network ``trial`` describes, sized for ``data`` (already shaped by ``Data.for_arch``)."""
    from deepstart.experiments import models

    n_cls = data.num_classes
    shape = tuple(data.x_train.shape[1:])
    common = dict(depth=trial.depth, init=trial.resolved_init, generator=generator)
    if trial.arch == "mlp":
        return models.mlp(shape[0], n_cls, width=trial.width if trial.depth else None,
                          activation=trial.activation, **common)
    if trial.arch == "conv-mlp":
        return models.conv_mlp(shape, n_cls, width=trial.width, activation=trial.activation, **common)
    if trial.arch == "cnn":
        return models.cnn(shape[0], n_cls, channels=trial.width, activation=trial.activation, **common)
    kind = "mlp" if trial.arch == "resnet" else "conv"
    return models.resnet(shape[0], n_cls, width=trial.width, eta=trial.eta, kind=kind,
                         activation=trial.activation, **common)


def schedule(trial: Trial, n_train: int) -> tuple[int, int, set[int]]:
    """``(steps_per_epoch, total_steps, eval_steps)``; the last partial minibatch of an epoch is kept."""
    per_epoch = -(-n_train // trial.batch_size)
    total = trial.steps if trial.steps is not None else trial.epochs * per_epoch
    every = trial.eval_every or per_epoch
    evals = {0, total, *range(every, total + 1, every)}
    return per_epoch, total, evals


def _epoch_perm(generator: torch.Generator, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=generator)


def _evaluate(model, data: Data, chunk: int = 4096) -> tuple[float | None, float | None]:
    if len(data.y_test) == 0:
        return None, None
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data.y_test), chunk):
            out = model(data.x_test[i:i + chunk])
            y = data.y_test[i:i + chunk]
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(-1) == y).sum())
    n = len(data.y_test)
    return loss / n, correct / n


def train_single(trial: Trial, data: Data | None = None, *, return_model: bool = False, device=None):
    """Train one network with ordinary PyTorch (the reference for :func:`train_batch`) on ``device`` (default CPU).

    Returns a :class:`TrialResult` (and the trained model if ``return_model``)."""
    dev = resolve_device(device)
    data = load_data(trial) if data is None else data.for_arch(trial.arch, trial.limit, trial.test_limit)
    t0 = time.perf_counter()
    model = build_model(trial, data, torch.Generator().manual_seed(trial.seed)).to(dev)
    data = data.to(dev)
    if trial.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=trial.lr, momentum=trial.momentum,
                              weight_decay=trial.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=trial.lr, weight_decay=trial.weight_decay)
    gen = torch.Generator().manual_seed(trial.resolved_data_seed)
    n = len(data.y_train)
    per_epoch, total, evals = schedule(trial, n)
    history = [_record(0, per_epoch, None, None, *_evaluate(model, data), t0)]
    loss_sum, correct, seen, examples, step, diverged_at = 0.0, 0, 0, 0, 0, None
    while step < total and diverged_at is None:
        perm = _epoch_perm(gen, n)
        for b in range(per_epoch):
            if step >= total:
                break
            idx = perm[b * trial.batch_size:(b + 1) * trial.batch_size].to(dev)
            out = model(data.x_train[idx])
            loss = F.cross_entropy(out, data.y_train[idx])
            step += 1
            if not torch.isfinite(loss):
                diverged_at = step
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach())
            correct += int((out.argmax(-1) == data.y_train[idx]).sum())
            seen += 1
            examples += len(idx)
            if step in evals:
                history.append(_record(step, per_epoch, loss_sum / seen, correct / examples,
                                       *_evaluate(model, data), t0))
                loss_sum, correct, seen, examples = 0.0, 0, 0, 0
    result = TrialResult(trial.id, trial.to_dict(), tuple(history), diverged_at is not None, diverged_at,
                         step if diverged_at is None else diverged_at - 1, time.perf_counter() - t0, 1)
    return (result, model) if return_model else result


def _record(step, per_epoch, train_loss, train_acc, test_loss, test_acc, t0) -> dict:
    return {"step": step, "epoch": step / per_epoch, "train_loss": train_loss, "train_acc": train_acc,
            "test_loss": test_loss, "test_acc": test_acc, "time": time.perf_counter() - t0}


def group_trials(trials, max_members: int | None = None) -> list[list[int]]:
    """Indices of ``trials`` grouped by :attr:`Trial.group_key` (input order kept), each group split into chunks of
    at most ``max_members``."""
    groups: OrderedDict = OrderedDict()
    for i, t in enumerate(trials):
        groups.setdefault(t.group_key, []).append(i)
    out = []
    for idx in groups.values():
        size = max_members or len(idx)
        out += [idx[i:i + size] for i in range(0, len(idx), size)]
    return out


def train_batch(trials, data: Data | dict | None = None, *, max_members: int | None = None,
                progress: bool = False, device=None) -> list[TrialResult]:
    """Train ``trials`` vectorized, grouped by shape, on ``device`` (default CPU); results in the order of ``trials``.

    ``data``: a :class:`Data` for all trials, a dict ``dataset name -> Data``, or None (``load_data`` per group).
    ``max_members`` caps the networks per vectorized batch (memory). Diverging members are dropped from their
    batch and recorded as diverged; they never stop the others."""
    from deepstart.experiments.batched import train_group

    dev = resolve_device(device)
    trials = list(trials)
    for t in trials:
        if not isinstance(t, Trial):
            raise TypeError(f"train_batch expects Trial objects, got {type(t).__name__}; build them with Trial(...)")
    results: list = [None] * len(trials)
    for idx in group_trials(trials, max_members):
        first = trials[idx[0]]
        if data is None:
            d = load_data(first)
        else:
            d = data[first.dataset] if isinstance(data, dict) else data
            d = d.for_arch(first.arch, first.limit, first.test_limit)
        for i, r in zip(idx, train_group([trials[i] for i in idx], d, progress=progress, device=dev)):
            results[i] = r
    return results
