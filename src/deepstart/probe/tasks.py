"""Tasks for the probe: a batch drawn fresh every step, a loss, and the loss of the best input-blind predictor.

A task must *discriminate*: a network that cannot carry its input to its output may still memorize a few fixed
examples (Adam fits 8 random labels from almost any init), so the synthetic tasks here draw new inputs every step
and their targets depend on the input through a rule the network has to learn:

* :func:`clusters_task` (networks with float inputs and ``[B, C]`` outputs: MLPs, CNNs): C Gaussian clusters with
  fixed random means, fresh noise every step; the baseline is log C (an input-blind predictor reaches it and
  nothing better). A *teacher* task (labels of the same architecture at a good init, standardized per class) was
  tried first and did not qualify: a 50-layer He student does not fit a 50-layer teacher within 100 steps
  (``docs/probe.md``).
* :func:`ngram_task` (language models: token ids in, ``[B, T, V]`` logits out): sequences of a fixed random bigram
  rule over at most 1024 tokens of the vocabulary (each token has ``k`` successors, drawn uniformly), loss the
  next-token cross-entropy; the baseline is the entropy of the rule's stationary unigram law (≈ log 1024 or log V),
  the floor is log k.
* :func:`data_task`: the user's data (tensors or a ``DataLoader``), cross-entropy for integer targets, mean squared
  error for float targets; the baseline is the label entropy or the target variance.

Every task is deterministic given its generator: the probe re-seeds it so every init sees the same batches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["Task", "clusters_task", "ngram_task", "data_task", "logits_of"]


@dataclass
class Task:
    """``batch(generator) -> (args, kwargs, target)`` (shared by all inits), ``loss(output, target) -> scalar``."""

    name: str
    batch: Callable
    loss: Callable
    baseline: float          # loss of the best input-blind predictor
    description: str
    restart: Callable | None = None  # called before each run over the data (a DataLoader starts again)


def logits_of(out):
    """The logits tensor of a model's output: a tensor, ``.logits`` (Hugging Face) or the first tensor of a tuple."""
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ValueError(f"cannot read logits from the model's output ({type(out).__name__}); pass task= with a loss")


def _ce(out, y):
    logits = logits_of(out)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))


def _entropy(counts: torch.Tensor) -> float:
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def clusters_task(input_shape, classes: int, *, separation: float = 1.0, used: int = 10, batch_size: int = 128,
                  generator=None, dtype=None, device=None) -> Task:
    """Gaussian clusters: class y uniform over ``min(classes, used)`` of the outputs (a random subset when there
    are more), input ``(μ_y + ε)/√(1 + s²)`` with fixed class means ``μ_c ~ N(0, s² I)`` (``s = separation``) and
    fresh noise ``ε ~ N(0, I)`` every step, so inputs have unit variance per coordinate. Any network that carries
    its input's direction to its output can separate the clusters; the input-blind baseline is
    log(min(classes, used)) (putting mass on the used outputs only is not learning the task)."""
    shape = tuple(int(s) for s in input_shape)
    if classes < 2:
        raise ValueError(f"the clusters task needs ≥ 2 outputs (classes), the model gives {classes}; pass "
                         "task=(inputs, targets) or a DataLoader")
    dtype = dtype or torch.get_default_dtype()
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    means = torch.randn((classes, *shape), generator=gen, dtype=dtype) * separation
    labels = torch.randperm(classes, generator=gen)[:used] if classes > used else torch.arange(classes)
    scale = 1.0 / math.sqrt(1.0 + separation ** 2)

    def batch(g):
        y = labels[torch.randint(0, len(labels), (batch_size,), generator=g)]
        x = (means[y] + torch.randn((batch_size, *shape), generator=g, dtype=dtype)) * scale
        return (x.to(device),), {}, y.to(device)

    return Task("clusters", batch, _ce, math.log(len(labels)),
                f"clusters: {len(labels)} Gaussian clusters over {classes} outputs (separation {separation:g}) in "
                f"inputs {list(shape)}, "
                f"batch {batch_size}, fresh every step")


def ngram_task(vocab: int, *, k: int = 4, active: int = 1024, seq_len: int = 64, batch_size: int = 8,
               generator=None, device=None, key: str = "input_ids") -> Task:
    """Next-token prediction of a fixed random bigram rule over ``min(vocab, active)`` tokens (a random subset of
    the vocabulary, so each context recurs within the probe's steps): token t+1 is uniform over ``k`` successors
    of token t. The input-blind baseline (the stationary unigram law's entropy) already counts the subset."""
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    n, k = min(vocab, active), min(k, vocab, active)
    tokens = torch.randperm(vocab, generator=gen)[:n]
    succ = torch.stack([torch.randperm(n, generator=gen)[:k] for _ in range(n)])
    p = torch.full((n,), 1.0 / n, dtype=torch.float64)
    for _ in range(200):  # stationary distribution by power iteration
        p = torch.zeros_like(p).index_add_(0, succ.reshape(-1), (p / k).repeat_interleave(k))
    baseline = _entropy(p)

    def batch(g):
        idx = torch.empty((batch_size, seq_len), dtype=torch.long)
        idx[:, 0] = torch.randint(0, n, (batch_size,), generator=g)
        choice = torch.randint(0, k, (batch_size, seq_len), generator=g)
        for t in range(1, seq_len):
            idx[:, t] = succ[idx[:, t - 1], choice[:, t]]
        ids = tokens[idx].to(device)
        return (), {key: ids}, ids

    def loss(out, ids):
        logits = logits_of(out)[:, :-1]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))

    return Task("ngram", batch, loss, baseline,
                f"n-gram: next token of a fixed random bigram rule ({k} successors per token, {n} of the vocabulary's "
                f"{vocab} tokens), sequences of {seq_len}, batch {batch_size}, fresh every step; floor log {k} = "
                f"{math.log(k):.3f}")


def data_task(data, *, batch_size: int = 128, device=None) -> Task:
    """The user's data: ``(inputs, targets)`` tensors (minibatches drawn with the probe's generator) or an iterable
    of ``(inputs, targets)`` batches (a ``DataLoader``; re-iterated from the start for every init)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"task=(inputs, targets) needs equally many (≥ 1) inputs and targets, got {len(x)} "
                             f"and {len(y)}")
        n = len(x)

        def batch(g):
            idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
            return (x[idx].to(device),), {}, y[idx].to(device)
        targets, restart = y, None
    elif hasattr(data, "__iter__") and not isinstance(data, (torch.Tensor, str, dict)):
        state = {"it": None}

        def batch(g):
            try:
                xb, yb = next(state["it"])
            except (TypeError, StopIteration):
                state["it"] = iter(data)
                xb, yb = next(state["it"])
            return (xb.to(device),), {}, yb.to(device)
        first = next(iter(data))
        if not (isinstance(first, (tuple, list)) and len(first) == 2):
            raise ValueError("a DataLoader task must yield (inputs, targets) pairs")
        targets = first[1]
        restart = lambda: state.update(it=None)  # noqa: E731
    else:
        raise TypeError(f"task must be None, 'clusters', 'ngram', a name of real data ('mnist', 'cifar10'), "
                        f"(inputs, targets) tensors or a DataLoader of (inputs, targets); got {type(data).__name__}")
    if targets.is_floating_point():
        baseline = float(targets.double().var(0, unbiased=False).sum()) / max(1, targets[0].numel())

        def loss(out, y):
            return F.mse_loss(logits_of(out).float(), y.float())
        return Task("data", batch, loss, baseline, f"your data ({len(targets) if hasattr(targets, '__len__') else '?'}"
                    f" targets per batch/set), mean squared error", restart)
    baseline = _entropy(torch.bincount(targets.reshape(-1).long()))
    return Task("data", batch, _ce, baseline, "your data, cross-entropy", restart)
