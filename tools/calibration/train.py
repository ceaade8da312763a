"""Short training runs that label the held-out zoo (:mod:`tools.calibration.label`), independent of ``check``.

Tasks (one per ``ZooCase.task``), all with Adam (Kingma & Ba 2015; lr 1e-3, recurrent models 1e-2 — the usual
rates, chosen on the stock models before any ``check`` run) and seeded batches (the same for every model):

* ``cifar``: CIFAR-10 (JPEG copy, the first 4096 training images, per-channel standardized), batch 32,
  ``STEPS["cifar"]`` steps, 10-way cross-entropy; reference loss log 10 (chance).
* ``lm`` / ``seq2seq`` / ``speech``: next-token prediction on a fixed random bigram chain: 64 active token ids out of
  1000, each followed by one of 4 fixed successors with probabilities 0.4/0.3/0.2/0.1 (entropy 1.28 nats per
  token); batch 16 × 32 tokens, ``STEPS["lm"]`` steps. ``seq2seq`` feeds the same tokens to the encoder, ``speech`` fixed N(0, 1)
  features. Reference loss: the empirical unigram entropy of the targets (what a model ignoring context reaches).

* ``audio`` (added for the second held-out zoo, before its labelling): raw-waveform classification, 10 classes;
  class c is a sine of frequency 250·(c + 1) Hz at 16 kHz with a uniform random phase and amplitude in [0.5, 1],
  plus N(0, 0.5²) noise, 1600 samples (0.1 s); batch 32, ``STEPS["audio"]`` steps, 10-way cross-entropy;
  reference log 10 (chance), like ``cifar``.

Where the model's output is not already the task's logits (a backbone returning features), a linear head with
PyTorch's default init is added on the pooled features (images) or on every token (sequences).
"""
from __future__ import annotations

import math
import time

import torch
from torch import nn
from torch.nn import functional as F

from tools.calibration.truth import _as_tensor, _call

STEPS = {"cifar": 100, "lm": 150, "seq2seq": 150, "speech": 150, "audio": 100}
LR, LR_RECURRENT = 1e-3, 1e-2
VOCAB, ACTIVE, SUCCESSORS, SEQ, LM_BATCH = 1000, 64, (0.4, 0.3, 0.2, 0.1), 32, 16
CIFAR_N, CIFAR_BATCH = 4096, 32
AUDIO_RATE, AUDIO_LEN, AUDIO_NOISE = 16_000, 1600, 0.5
CLASSIFY = ("cifar", "audio")  # tasks with 10 classes, one label per example, reference log 10


class BigramTask:
    """The fixed bigram chain (seed 0): ``sample(g)`` gives a [LM_BATCH, SEQ + 1] batch of token ids."""

    def __init__(self, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.tokens = 3 + torch.randperm(VOCAB - 3, generator=g)[:ACTIVE]  # ids 0-2 are pad/bos/eos
        self.next = torch.stack([torch.randperm(ACTIVE, generator=g)[: len(SUCCESSORS)] for _ in range(ACTIVE)])
        self.p = torch.tensor(SUCCESSORS)

    def sample(self, g: torch.Generator) -> torch.Tensor:
        state = torch.randint(0, ACTIVE, (LM_BATCH,), generator=g)
        seq = [state]
        for _ in range(SEQ):
            pick = torch.multinomial(self.p.expand(LM_BATCH, -1), 1, generator=g).squeeze(1)
            state = self.next[state, pick]
            seq.append(state)
        return self.tokens[torch.stack(seq, 1)]


def _cifar(n: int = CIFAR_N):
    from deepstart.experiments.data.load import load

    return load("cifar10", "train", limit=n, progress=False)


def _unigram_entropy(targets: torch.Tensor) -> float:
    p = torch.bincount(targets.flatten(), minlength=VOCAB).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log()).sum())


def tones(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The ``audio`` task's waveforms [len(labels), AUDIO_LEN] for class ``labels``: a sine of 250·(c + 1) Hz,
    random phase and amplitude U(0.5, 1), plus N(0, AUDIO_NOISE²) noise."""
    n = len(labels)
    t = torch.arange(AUDIO_LEN) / AUDIO_RATE
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    amp = 0.5 + 0.5 * torch.rand(n, 1, generator=g)
    freq = 250.0 * (labels[:, None] + 1)
    return amp * torch.sin(2 * math.pi * freq * t + phase) + AUDIO_NOISE * torch.randn(n, AUDIO_LEN, generator=g)


def _features(out, task: str) -> torch.Tensor:
    pooled = getattr(out, "pooler_output", None)
    if task == "cifar" and pooled is not None:
        return pooled.flatten(1)
    t = _as_tensor(out)
    if task in CLASSIFY:
        return t.mean(dim=tuple(range(2, t.dim()))) if t.dim() == 4 else (t.mean(1) if t.dim() == 3 else t)
    return t


def _batches(task: str, seed: int):
    """(inputs, targets) for step i, from a generator seeded ``seed`` (the same batches for every model)."""
    g = torch.Generator().manual_seed(seed)
    if task == "cifar":
        x, y = _cifar()
        while True:
            idx = torch.randint(0, len(x), (CIFAR_BATCH,), generator=g)
            yield x[idx], y[idx]
    if task == "audio":
        while True:
            y = torch.randint(0, 10, (CIFAR_BATCH,), generator=g)
            yield {"input_values": tones(y, g)}, y
    bigram, feats = BigramTask(), torch.randn(LM_BATCH, 16, 32, generator=torch.Generator().manual_seed(1))
    while True:
        seq = bigram.sample(g)
        ids, targets = seq[:, :-1], seq[:, 1:]
        if task == "lm":
            yield {"input_ids": ids}, targets
        elif task == "seq2seq":
            yield {"input_ids": ids, "decoder_input_ids": ids}, targets
        else:
            yield {"input_features": feats, "decoder_input_ids": ids}, targets


def short_training(case, *, steps: int | None = None, seed: int = 0) -> dict:
    """Train ``case.build()`` (built after ``torch.manual_seed(seed)``) on its task; the loss curve's summary.

    Returns ``first`` (mean loss of the first 5 steps), ``last`` (mean of the last 10), ``reference`` (log 10, or
    the unigram entropy of the targets seen), ``finite``, ``head_added`` and ``seconds`` (measured under load)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = case.build()
        task = case.task
        steps = steps or STEPS[task]
        lr = LR_RECURRENT if any(isinstance(m, nn.RNNBase) for m in model.modules()) else LR
        batches = _batches(task, seed + 1)
        inputs, targets = next(batches)
        classes = 10 if task in CLASSIFY else VOCAB
        width = _features(_call(model, inputs), task).shape[-1]
        head = nn.Linear(width, classes) if width != classes else nn.Identity()
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    losses, seen, started = [], [], time.perf_counter()
    for step in range(steps):
        if step:
            inputs, targets = next(batches)
        logits = head(_features(_call(model, inputs), task))
        loss = F.cross_entropy(logits.reshape(-1, classes).float(), targets.reshape(-1))
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
        seen.append(targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    finite = all(math.isfinite(v) for v in losses) and len(losses) == steps
    seen = seen or [targets]  # a loss non-finite from the first step: the reference of the batch it saw
    reference = math.log(10) if task in CLASSIFY else _unigram_entropy(torch.cat([t.flatten() for t in seen]))
    return {"task": task, "steps": steps, "lr": lr, "first": sum(losses[:5]) / len(losses[:5]),
            "last": sum(losses[-10:]) / len(losses[-10:]), "reference": reference, "finite": finite,
            "head_added": isinstance(head, nn.Linear), "seconds": time.perf_counter() - started}
