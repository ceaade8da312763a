"""Ground truth for the labelled zoo (:mod:`tools.calibration.cases`), measured with plain forward and
backward hooks and no deepstart code, so that a reader can check ``check``'s verdicts by hand.

* residual models (a repeated block class is found, see :func:`_blocks`): the mean squared length per unit
  ``M = ‖x‖²/d`` of the stream at the input of the first block and at every block output, and the squared
  gradient norms ``G`` at the first and last block outputs under ``<u, output>`` with a fixed Gaussian ``u``;
* plain MLP/CNN: the same at every activation output, read as the input of each weight layer after the first.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
from torch import nn

__all__ = ["truth"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _blocks(model: nn.Module, cls_name: str | None = None, under: str = "") -> list[tuple[str, nn.Module]]:
    """The residual blocks: instances of the class named ``cls_name`` (under the module prefix ``under``) when
    given, else of the shallowest non-container module class with children that occurs at least twice (GPT2Block,
    BertLayer, TransformerEncoderLayer, BasicBlock ...); on a tie the class met last in ``named_modules``
    (nn.Transformer: the decoder layers, which feed the output). ``[]`` for plain nets."""
    if cls_name is not None:
        return [(n, m) for n, m in model.named_modules() if type(m).__name__ == cls_name and n.startswith(under)]
    found = defaultdict(list)
    for name, m in model.named_modules():
        if name and not isinstance(m, _CONTAINERS) and next(m.children(), None) is not None:
            found[type(m)].append((name, m))
    found = {t: v for t, v in found.items() if len(v) >= 2}
    if not found:
        return []
    depth = {t: min(n.count(".") for n, _ in v) for t, v in found.items()}
    return found[[t for t in found if depth[t] == min(depth.values())][-1]]


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Weight layers (Linear/Conv) after the first: their inputs are the activation outputs."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))][1:]


def _first_tensor(args, kwargs):
    for a in (*args, kwargs.get("hidden_states"), *kwargs.values()):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            return a
    return None


def _as_tensor(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "last_hidden_state"):
        if getattr(out, key, None) is not None:
            return getattr(out, key)
    return out[0]


def _call(model: nn.Module, inputs):
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _measure_once(model: nn.Module, inputs, u_seed: int, cls_name: str | None = None,
                  under: str = "", shared: bool = False) -> tuple[list[str], list[float], list[float], float]:
    """One init: names, M and per-example G (NaN where not measured) at each point, min LayerNorm input M/eps.
    ``shared``: the block modules are called more than once (weights shared across layers): every call's output
    is a point, in call order."""
    blocks = _blocks(model, cls_name, under)
    points = blocks or _layers(model)
    names = ([blocks[0][0] + ".input"] if blocks else []) + [n for n, _ in points]
    acts: dict[int, torch.Tensor] = {}
    norm_ratio = [math.inf]

    def keep(i):
        def hook(t):
            acts[i] = t
            if t.requires_grad:
                t.retain_grad()
        return hook

    def norm_hook(m, args):
        eps = getattr(m, "eps", None) or getattr(m, "variance_epsilon", None)
        if eps and isinstance(args[0], torch.Tensor):
            norm_ratio[0] = min(norm_ratio[0], args[0].detach().double().pow(2).mean().item() / eps)

    handles, calls = [], []

    def keep_call(t):  # shared blocks: the next point in call order
        keep(len(calls))(t)
        calls.append(t)

    try:
        for i, (_, m) in enumerate(points):
            if shared and blocks:
                handles.append(m.register_forward_pre_hook(
                    lambda mod, a, kw: None if calls else keep_call(_first_tensor(a, kw)), with_kwargs=True))
                handles.append(m.register_forward_hook(lambda mod, a, out: keep_call(_as_tensor(out))))
            elif blocks:
                if i == 0:
                    handles.append(m.register_forward_pre_hook(
                        lambda mod, a, kw, k=keep(0): k(_first_tensor(a, kw)), with_kwargs=True))
                handles.append(m.register_forward_hook(lambda mod, a, out, k=keep(i + 1): k(_as_tensor(out))))
            else:
                handles.append(m.register_forward_pre_hook(lambda mod, a, k=keep(i): k(a[0])))
        for m in model.modules():
            if "norm" in type(m).__name__.lower() and not isinstance(m, nn.modules.batchnorm._NormBase):
                handles.append(m.register_forward_pre_hook(norm_hook))
        out = _as_tensor(_call(model, inputs))
        u = torch.randn(out.shape, generator=torch.Generator().manual_seed(u_seed), dtype=out.dtype)
        (u * out).sum().backward()
    finally:
        for h in handles:
            h.remove()
    if shared and blocks:
        names = [names[0]] + [f"{blocks[0][0]}#{j}" for j in range(len(calls) - 1)]
    M, G = [], []
    for i in range(len(names)):
        t = acts[i]
        M.append(t.detach().double().pow(2).mean().item())
        g = t.grad
        G.append(g.double().pow(2).sum().item() / g.shape[0] if g is not None else math.nan)
    if not blocks:  # a pooled/flattened head input is not a link of the chain: drop it
        while len(names) > 1 and acts[len(names) - 1][0].numel() != acts[0][0].numel():
            names, M, G = names[:-1], M[:-1], G[:-1]
            acts.pop(len(names))
    return names, M, G, norm_ratio[0]


def _single_layers(rnn: nn.RNNBase) -> list[nn.RNNBase]:
    """The ``num_layers`` layers of a stacked ``nn.LSTM``/``nn.GRU``/``nn.RNN`` as one-layer modules sharing its
    weights (``weight_ih_l{k}`` ..., both directions' when bidirectional, the projections ``weight_hr_l{k}`` of an
    LSTM with ``proj_size``), so that each layer's output can be read
    (the stacked module hides them)."""
    layers, directions, out = [], 2 if rnn.bidirectional else 1, rnn.proj_size or rnn.hidden_size
    for k in range(rnn.num_layers):
        kw = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
        kw |= {"proj_size": rnn.proj_size} if rnn.proj_size else {}
        one = type(rnn)(rnn.input_size if k == 0 else directions * out, rnn.hidden_size, 1,
                        bias=rnn.bias, batch_first=rnn.batch_first, bidirectional=rnn.bidirectional, **kw)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
            for suffix in ("", "_reverse")[:directions]:
                if hasattr(rnn, f"{name}_l{k}{suffix}"):
                    setattr(one, f"{name}_l0{suffix}", getattr(rnn, f"{name}_l{k}{suffix}"))
        layers.append(one)
    return layers


def _measure_recurrent(model: nn.Module, inputs, u_seed: int):
    """Recurrent models (one stacked ``nn.RNNBase``, batch_first): M and per-example G at each layer's output (all
    time steps) under ``<u, last layer's output>``; and, under ``<u_T, last layer's output at the last step>``,
    ``time_grad_log_ratio`` = log(G at the first input step / G at the last input step) (Pascanu et al. 2013)."""
    rnn = next(m for m in model.modules() if isinstance(m, nn.RNNBase))
    seen = {}
    handle = rnn.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0].detach()))
    try:
        with torch.no_grad():
            _call(model, inputs)
    finally:
        handle.remove()
    layers = _single_layers(rnn)
    x = seen["x"].clone().requires_grad_(True)
    outs, h = [], x
    for layer in layers:
        h = layer(h)[0]
        h.retain_grad()
        outs.append(h)
    g = torch.Generator().manual_seed(u_seed)
    u = torch.randn(h.shape, generator=g, dtype=h.dtype)
    (u * h).sum().backward(retain_graph=True)
    M = [o.detach().double().pow(2).mean().item() for o in outs]
    G = [o.grad.double().pow(2).sum().item() / o.shape[0] for o in outs]
    x.grad = None
    (u[:, -1] * h[:, -1]).sum().backward()
    gx = x.grad.double().pow(2).sum(dim=(0, 2))
    time_ratio = math.log(gx[0].item() / gx[-1].item()) if gx[-1] > 0 and gx[0] > 0 else -math.inf
    return [f"rnn.layer{k}" for k in range(len(layers))], M, G, math.inf, time_ratio


def truth(case, n_inits: int = 4, *, seed: int = 0) -> dict:
    """Hook-measured ground truth of ``case`` over ``n_inits`` inits (global RNG seeded ``seed + i`` inside
    ``torch.random.fork_rng``, so the caller's RNG state is untouched), one fixed input batch and a fixed ``u``.

    Returns ``kind`` ("blocks" or "layers"), ``points`` (names), ``M`` (mean over inits at each point; for blocks
    point 0 is the first block's input), ``stream_growth`` = mean_i log(M_last/M_first) and ``first_gain`` =
    mean_i log(M_1/M_0) in nats (for blocks: the first block's output over its input, i.e. log(1 + branch/stream)),
    ``grad_log_ratio`` = mean_i log(G_first/G_last) at the first and last block outputs (layers: activation
    outputs; negative means vanishing toward the input; G is the per-example squared norm, so a change of shape
    between the two enters it: ResNet-56 has 16·32·32 vs 64·8·8 units, log 4 nats), ``norm_over_eps_min``: min over LayerNorm/RMSNorm modules
    of (mean input²)/eps (inf without such norms; ≪ 1 means the norm no longer normalizes).
    """
    if isinstance(n_inits, bool) or not isinstance(n_inits, int) or n_inits < 1:
        raise ValueError(f"n_inits={n_inits!r} must be a positive int")
    inputs = case.inputs(torch.Generator().manual_seed(seed))
    Ms, Gs, ratios, times, names = [], [], [], [], None
    for i in range(n_inits):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            model = case.build()
        if any(isinstance(m, nn.RNNBase) for m in model.modules()):
            names, M, G, ratio, t = _measure_recurrent(model, inputs, u_seed=seed + 10_000)
            times.append(t)
        else:
            names, M, G, ratio = _measure_once(model, inputs, u_seed=seed + 10_000,
                                               cls_name=getattr(case, "blocks", None),
                                               under=getattr(case, "blocks_under", ""),
                                               shared=getattr(case, "shared", False))
        Ms.append(M), Gs.append(G), ratios.append(ratio)
    M, G = np.array(Ms), np.array(Gs)
    blocks = names[0].endswith(".input") and len(names) > 1
    g_first = G[:, 1] if blocks else G[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "case": case.name,
            "kind": "blocks" if blocks else "layers",
            "points": names,
            "M": M.mean(axis=0).tolist(),
            "stream_growth": float(np.mean(np.log(M[:, -1] / M[:, 0]))),
            "first_gain": float(np.mean(np.log(M[:, 1] / M[:, 0]))),
            "grad_log_ratio": float(np.mean(np.log(g_first / G[:, -1]))),
            "block_gain_max": float(np.max(np.mean(np.log(M[:, 1:] / M[:, :-1]), axis=0))) if len(names) > 1
            else math.nan,
            "norm_over_eps_min": float(min(ratios)),
            "time_grad_log_ratio": float(np.mean(times)) if times else None,
            "finite": bool(np.isfinite(M).all() and np.isfinite(G[~np.isnan(G)]).all()),
            "n_inits": n_inits,
        }
