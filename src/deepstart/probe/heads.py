"""Backbones in the probe: a task for models whose input or output the default tasks do not fit, and a readout head.

A backbone (``BertModel``, ``ViTModel``, ``T5Model``, ``WhisperModel``, an ``nn.TransformerEncoder``, a CNN trunk)
returns features, not the task's logits. With ``head="auto"`` (the default of :func:`deepstart.probe`) the probe

* picks a task from the model's **input kind** (:func:`input_kind`), where the default tasks refuse the model:

  ==============  ============================================================  =====================================
  kind            how it is recognised                                          task (fresh batch every step)
  ==============  ============================================================  =====================================
  ``causal``      token ids in, and perturbing the last token leaves every      ``ngram``: next token of a random
                  earlier position's output unchanged (measured, not guessed)   bigram rule
  ``bidirect``    token ids in, later tokens change earlier outputs             ``ngram``: the next token is in the
                  (BERT, DeBERTa)                                               input, so the task is to copy the
                                                                                right neighbour through attention
  ``seq2seq``     a Hugging Face encoder-decoder fed ``input_ids`` (T5)         ``ngram``, the same ids to the
                                                                                encoder and the decoder
  ``speech``      a Hugging Face encoder-decoder fed ``input_features``         ``ngram`` for the decoder, N(0, 1)
                  (Whisper)                                                     features to the encoder
  ``image``       ``pixel_values`` (``config.num_channels``/``image_size``)     ``clusters`` (10 classes) on
                  or ``input_shape=`` of an image                               ``input_shape``; or ``"cifar10"``
  ``sequence``    ``input_shape=(T, d)`` float sequences                        ``clusters`` per sequence
  ==============  ============================================================  =====================================

* and adds a **readout head** (:class:`Readout`) when the output is not the task's logits (:func:`read_output`):
  one ``nn.Linear`` on the pooled features (per-example targets: ``pooler_output`` when the model has one, else the
  mean over every axis but batch and channels/features) or on every token (per-token targets), PyTorch's default
  init drawn **once** from the probe's generator and copied into every member, so the user's inits and the reference
  start from the same head and the comparison is about the backbone. As in the labels' short training
  (``tools/calibration/train.py``).

A model whose forward needs several positional tensors (``nn.Transformer(src, tgt)``) gets the task's input in each.
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from deepstart.probe.tasks import Task, clusters_task, ngram_task

__all__ = ["Readout", "backbone_task", "input_kind", "read_output", "readout", "with_head"]

CLASSES = 10         # classes of the synthetic per-example task for a backbone


def _positional(model: nn.Module) -> list[str]:
    """Names of the forward's positional parameters without defaults (``nn.Transformer``: src, tgt)."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]


def first_input_name(model: nn.Module) -> str:
    """The name of the forward's first parameter (the key token ids are passed under for a non-HF model)."""
    names = _positional(model)
    return names[0] if names else "input"


def _is_causal(model: nn.Module, vocab: int, key: str, seq_len: int = 8) -> bool:
    """Causality measured: outputs at positions < T−1 do not move when the last token changes (eval mode)."""
    ids = torch.arange(2 * seq_len).remainder(vocab).view(2, seq_len)
    other = ids.clone()
    other[:, -1] = (other[:, -1] + 1) % vocab
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            a, b = (_feature_tensor(model(**{key: x})) for x in (ids, other))
    finally:
        model.train(was)
    a, b = a[:, : seq_len - 1].double(), b[:, : seq_len - 1].double()
    return bool((a - b).abs().max() <= 1e-6 * (a.abs().max() + 1e-30))


def _feature_tensor(out) -> torch.Tensor:
    tensor, _ = read_output(out)
    return tensor


def input_kind(model: nn.Module, input_shape=None) -> str:
    """One of ``causal``, ``bidirect``, ``seq2seq``, ``speech``, ``image``, ``sequence``, ``vector`` (module doc)."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "is_encoder_decoder", False):
        return "speech" if getattr(model, "main_input_name", "") == "input_features" else "seq2seq"
    if config is not None and getattr(model, "main_input_name", "") == "pixel_values":
        return "image"
    vocab = getattr(config, "vocab_size", None)
    embed = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    if vocab is not None or (embed is not None and input_shape is None):
        vocab = int(vocab or embed.num_embeddings)
        key = "input_ids" if config is not None else first_input_name(model)
        return "causal" if _is_causal(model, vocab, key) else "bidirect"
    if input_shape is not None:
        return "image" if len(input_shape) == 3 else "sequence" if len(input_shape) == 2 else "vector"
    return "vector"


def _token_task(model, kind, batch_size, generator, device) -> Task:
    config = getattr(model, "config", None)
    vocab = int(_vocab(model))
    limit = min(getattr(config, name, None) or 64 for name in ("n_positions", "max_position_embeddings",
                                                               "max_target_positions"))
    key = "input_ids" if config is not None else first_input_name(model)
    task = ngram_task(vocab, seq_len=min(64, int(limit)), batch_size=batch_size or 8, generator=generator,
                      device=device, key=key)
    if kind == "bidirect":
        return _extend(task, lambda g, kw: kw, "; the model sees the whole sequence: it has to copy each position's "
                       "right neighbour through attention")
    if kind == "seq2seq":
        return _extend(task, lambda g, kw: {**kw, "decoder_input_ids": kw[key]},
                       "; the encoder gets the same ids (it sees the answer: a copy through cross-attention)")
    if kind == "speech":
        bins, frames = int(config.num_mel_bins), 2 * int(config.max_source_positions)

        def speech(g, kw):
            ids = kw[key]
            feats = torch.randn((len(ids), bins, frames), generator=g).to(device)
            return {"input_features": feats, "decoder_input_ids": ids}
        return _extend(task, speech, f"; the encoder gets N(0, 1) features [{bins}, {frames}], fresh every step")
    return task


def _extend(task: Task, kwargs_fn, note: str) -> Task:
    base = task.batch

    def batch(g):
        args, kw, y = base(g)
        return args, kwargs_fn(g, kw), y
    return Task(task.name, batch, task.loss, task.baseline, task.description + note, task.restart)


def _as_inputs(task: Task, model: nn.Module, key: str | None) -> Task:
    """The task's one positional input passed as ``key=`` (``pixel_values``), or to every positional parameter."""
    n = len(_positional(model))
    if key is None and n <= 1:
        return task
    base = task.batch

    def batch(g):
        args, kw, y = base(g)
        return ((), {**kw, key: args[0]}, y) if key is not None else (args * n, kw, y)
    note = f" (as {key}=)" if key is not None else f" (the same tensor to each of the forward's {n} inputs)"
    return Task(task.name, batch, task.loss, task.baseline, task.description + note, task.restart)


def backbone_task(task, model: nn.Module, input_shape, batch_size, generator, device, real_task) -> Task | None:
    """The task for a model the default tasks refuse (``task`` None/"clusters"/"ngram"/a real data name), or None
    when its input kind has none here. ``real_task(name, model, batch_size, device)`` loads real data."""
    kind = input_kind(model, input_shape)
    config = getattr(model, "config", None)
    key = "pixel_values" if kind == "image" and config is not None else None
    if isinstance(task, str) and task not in ("clusters", "ngram"):
        return _as_inputs(real_task(task, model, batch_size, device), model, key) if kind == "image" else None
    if kind in ("causal", "bidirect", "seq2seq", "speech"):
        return _token_task(model, kind, batch_size, generator, device)
    if kind == "image" and config is not None:
        size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
        input_shape = (int(config.num_channels), int(size), int(size))
    if kind in ("image", "sequence"):
        p = next(iter(model.parameters()))
        return _as_inputs(clusters_task(input_shape, CLASSES, batch_size=batch_size or 128, generator=generator,
                                        dtype=p.dtype, device=device), model, key)
    return None


def read_output(out) -> tuple[torch.Tensor, bool | None]:
    """``(tensor, is_logits)`` of a model's output: ``.logits`` (True), ``pooler_output``/``last_hidden_state``
    (features: False), a tensor or the first tensor of a tuple (None: decided by its shape)."""
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits, True
    for name in ("last_hidden_state", "pooler_output"):
        t = getattr(out, name, None)
        if isinstance(t, torch.Tensor):
            return t, False
    if isinstance(out, torch.Tensor):
        return out, None
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0], None
    raise ValueError(f"cannot read features or logits from the model's output ({type(out).__name__}): the probe "
                     "needs a tensor, a tuple starting with one, or an object with .logits, .last_hidden_state or "
                     ".pooler_output; wrap the model so that it returns one, or pass task= a Task with its own loss")


def _features(out, per_token: bool) -> torch.Tensor:
    pooled = getattr(out, "pooler_output", None)
    if not per_token and isinstance(pooled, torch.Tensor):
        return pooled.flatten(1)
    t = getattr(out, "last_hidden_state", None)
    t = t if isinstance(t, torch.Tensor) else read_output(out)[0]
    if per_token:
        return t
    if t.dim() == 4:  # [B, C, H, W]: mean over space
        return t.mean((2, 3))
    return t.mean(1) if t.dim() == 3 else t.flatten(1)


class Readout(nn.Module):
    """``head(features(backbone(...)))``: pooled features (per-example targets) or every token (per-token)."""

    def __init__(self, backbone: nn.Module, head: nn.Linear, per_token: bool):
        super().__init__()
        self.backbone, self.head, self.per_token = backbone, head, per_token

    def forward(self, *args, **kwargs):
        return self.head(_features(self.backbone(*args, **kwargs), self.per_token))


def readout(model: nn.Module, task: Task, head, seed: int) -> tuple[Readout | None, str]:
    """The :class:`Readout` the model needs on ``task`` (None when its output already is the task's logits, or
    ``head`` is None/False) and a note saying what was added. ``head``: ``"auto"`` or ``"linear"`` (always)."""
    if head is None or head is False:
        return None, ""
    if head not in ("auto", "linear"):
        raise ValueError(f"head={head!r}: use 'auto' (a linear readout when the output is not the task's logits), "
                         "'linear' (always) or None (never)")
    args, kwargs, y = task.batch(torch.Generator().manual_seed(seed))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*args, **kwargs)
    finally:
        model.train(was)
    tensor, is_logits = read_output(out)
    per_token = y.dim() == 2
    if y.is_floating_point():
        raise ValueError("a readout head is added for class targets only (integer targets); for regression "
                         "targets return the predictions from the model, or pass head=None")
    classes = int(y.max()) + 1
    if is_logits is None:  # a bare tensor: logits when its shape is the targets' shape plus a class axis
        is_logits = tensor.dim() == y.dim() + 1 and tensor.shape[: y.dim()] == y.shape and tensor.shape[-1] >= classes
    if is_logits and head == "auto":
        return None, ""
    width = _features(out, per_token).shape[-1]
    classes = max(classes, getattr(task, "classes", None) or 0, CLASSES if not per_token else 0)
    if per_token:
        classes = max(classes, _vocab(model) or 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linear = nn.Linear(width, classes)
    where = "every token's features" if per_token else "the pooled features"
    return Readout(model, linear, per_token), (f"readout head: Linear({width}, {classes}) on {where} (PyTorch's "
                                               f"default init, one draw shared by every init and the reference)")


def _vocab(model) -> int | None:
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is None:
        embed = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
        vocab = embed.num_embeddings if embed is not None else None
    return vocab


def with_head(members, head: nn.Linear) -> list:
    """Members ``(params, buffers)`` of the backbone, renamed into a :class:`Readout`'s names, each with a copy of
    the one ``head``."""
    head_params = {f"head.{k}": v.detach() for k, v in head.named_parameters()}
    return [({**{f"backbone.{k}": v for k, v in p.items()}, **{k: v.clone() for k, v in head_params.items()}},
             {f"backbone.{k}": v for k, v in b.items()}) for p, b in members]
