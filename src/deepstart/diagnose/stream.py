"""Measure every site for ``n_inits`` initializations, streamed: one parameter set alive at a time.

For each initialization i, input b and site j we record (Hanin & Rolnick 2018, §1):

* ``M[i, b, j] = ‖x_j‖²/n_j`` of the measured tensor (n_j its elements per sample);
* ``G[i, b, j] = ‖∂ℓ/∂x_j‖²`` with ℓ the user's loss or ``⟨u, f(x)⟩`` for a fixed Gaussian cotangent u
  (Schoenholz et al. 2017, §3), from one ``torch.autograd.grad`` over all taps (no parameter gradients);
* ``dead[i, j]``: the fraction of units (along the feature axis) that are exactly 0 for every input and position;
* for layers with an activation, M and G of the pre-activation h (the activation's gain E φ(h)²/E h² and
  E φ'(h)² ≈ G(h)/G(x) are measured, so unknown activations are judged like known ones);
* for residual blocks, M of the branch output, and for ``[B, T, C]`` streams the mean cosine similarity of the
  token representations of one input (rank collapse, Dong et al. 2021; Noci et al. 2022) and the attention
  entropy of the block's softmax over log(keys) (eager attention only; Zhai et al. 2023's entropy collapse).

Inits come from :func:`init_sources`: the model as given (init 0), then a user factory under new seeds, the
Hugging Face model's own config, the modules' ``reset_parameters``, a scheme, or a redraw of each tensor from its
own law (tied and cloned tensors stay equal). Each forward replays the recorded graph (same op sequence; a model
whose ops change between inits has data-dependent control flow and gets a clear error).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from deepstart.diagnose.capture import run_recorded

__all__ = ["Measured", "measure", "init_sources", "ControlFlowError"]


class ControlFlowError(ValueError):
    """A re-initialized model ran different ops than the recorded one (data-dependent control flow)."""


@dataclass
class Measured:
    sq: np.ndarray          # [n, B, S]
    grad: np.ndarray        # [n, B, S]
    dead: np.ndarray        # [n, S]
    pre_sq: np.ndarray      # [n, B, S] (NaN: no pre-activation tap)
    pre_grad: np.ndarray    # [n, B, S]
    branch_sq: np.ndarray   # [n, B, S] (blocks: M of the branch output; NaN elsewhere)
    token_cos: np.ndarray   # [n, S] (blocks with [B, T, C] streams; NaN elsewhere)
    attn_entropy: np.ndarray | None = None  # [n, S] normalized attention entropy in a block's branch (eager)
    path: str = "stream"


def _per_sample_sq(t: torch.Tensor, batch: int, mean: bool = True) -> np.ndarray:
    x = t.detach().double()
    if x.ndim >= 1 and x.shape[0] % batch == 0 and x.shape[0] > 0:  # [B, …] or a folded [B·T, …] (HF Conv1D)
        sq = x.pow(2).reshape(batch, -1)
        v = sq.mean(1) if mean else sq.sum(1)
    else:
        sq = x.pow(2).reshape(-1)
        v = (sq.mean() if mean else sq.sum() / batch).expand(batch)
    return v.cpu().numpy()


def _dead(t: torch.Tensor, axis) -> float:
    """Fraction of units along ``axis`` that are exactly 0 for every input and position."""
    if t.ndim < 2:
        return float(t.eq(0).double().mean())
    axis = 1 if axis is None else axis % t.ndim
    alive = t.detach().ne(0).movedim(axis, 0).reshape(t.shape[axis], -1).any(dim=1)
    return float(1.0 - alive.double().mean())


def _token_cos(t: torch.Tensor, batch: int) -> float:
    """Mean cosine similarity of distinct tokens within one input, averaged over inputs ([B, T, C] only)."""
    if t.ndim != 3 or t.shape[0] != batch or t.shape[1] < 2:
        return math.nan
    x = t.detach().double()
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    g = x @ x.transpose(1, 2)
    n = g.shape[1]
    return float(((g.sum((1, 2)) - g.diagonal(dim1=1, dim2=2).sum(1)) / (n * (n - 1))).mean())


def _entropy(p: torch.Tensor) -> float:
    """Mean entropy of attention rows over log(number of keys each row can see): 1 uniform, 0 one-hot (rows that
    see a single key, e.g. the first token under a causal mask, are left out)."""
    x = p.detach().double().reshape(-1, p.shape[-1])
    support = (x > 0).sum(-1)
    keep = support > 1
    if not bool(keep.any()):
        return math.nan
    x = x[keep]
    h = -(x * torch.where(x > 0, x.log(), torch.zeros_like(x))).sum(-1)
    return float((h / support[keep].double().log()).mean())


def _loss(out, loss, cotangent):
    if loss is not None:
        return loss(out)
    from deepstart.diagnose.checker import float_outputs

    return sum((u * o).sum() for u, o in zip(cotangent, float_outputs(out)))


def measure(model, graph, sites, info, args, kwargs, inits, loss, cotangent, batch, *, seed=0, bar=None) -> Measured:
    """Measure all sites (module docstring) for each ``params`` dict (parameters and buffers) of ``inits``."""
    roles = {}
    for role, taps in (("site", dict(enumerate(info["taps"]))), ("pre", info["pre_taps"]),
                       ("branch", info["branch_taps"])):
        for j, nid in taps.items():
            roles.setdefault(nid, []).append((role, j))
    for j, nids in info.get("softmax_taps", {}).items():
        for nid in nids:
            roles.setdefault(nid, []).append(("softmax", j))
    rows, source = [], iter(inits)
    while (params := next(source, None)) is not None:
        rows.append(_measure_one(model, graph, sites, roles, args, kwargs, params, loss, cotangent, batch, seed))
        params = None  # freed before the next init is drawn: one parameter set alive at a time
        if bar is not None:
            bar.update(1)
    stack = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    return Measured(stack["sq"], stack["grad"], stack["dead"], stack["pre_sq"], stack["pre_grad"],
                    stack["branch_sq"], stack["cos"], stack["entropy"])


def _measure_one(model, graph, sites, roles, args, kwargs, params, loss, cotangent, batch, seed) -> dict:
    """One init: the forward replayed with taps (statistics taken as each tapped tensor is made, before any
    in-place op can change it), then one ``autograd.grad`` for the gradients at the taps."""
    n_sites = len(sites)
    row = {k: np.full((batch, n_sites), np.nan) for k in ("sq", "grad", "pre_sq", "pre_grad", "branch_sq")}
    row["dead"], row["cos"] = np.full(n_sites, np.nan), np.full(n_sites, np.nan)
    entropies = {}
    tensors = {}

    def on_node(nid, t):
        if nid not in roles:
            return
        tensors[nid] = t
        for role, j in roles[nid]:
            if role == "site":
                row["sq"][:, j] = _per_sample_sq(t, batch)
                row["dead"][j] = _dead(t, graph.nodes[nid].feature_axis)
                if sites[j].kind == "block":
                    row["cos"][j] = _token_cos(t, batch)
            elif role == "softmax":
                entropies.setdefault(j, []).append(_entropy(t))
            else:
                row[f"{role}_sq"][:, j] = _per_sample_sq(t, batch)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout & co.: the same masks for every init
        rec, out, _ = run_recorded(model, args, kwargs, params, on_node=on_node)
    if tuple(op.name for op in rec.ops) != graph.signature:
        raise ControlFlowError(
            f"an initialization ran {len(rec.ops)} ops where the recorded forward ran {len(graph.ops)}: the "
            "model's forward depends on the values of its weights or inputs (data-dependent control flow), so "
            "sites cannot be matched across inits. Pass reinit=... that keeps the control flow, or check a "
            "submodule whose forward is fixed.")
    row["entropy"] = np.full(n_sites, np.nan)
    for j, values in entropies.items():
        row["entropy"][j] = float(np.mean(values))
    keys = [nid for nid in roles if nid in tensors and tensors[nid].requires_grad and
            any(role != "softmax" for role, _ in roles[nid])]
    value = _loss(out, loss, cotangent)
    try:
        grads = torch.autograd.grad(value, [tensors[k] for k in keys], allow_unused=True) \
            if keys and value.requires_grad else [None] * len(keys)
    except RuntimeError as exc:
        if "inplace operation" not in str(exc):
            raise
        raise ValueError("the model's backward fails: a tensor it needs was changed in place in forward "
                         f"({str(exc).splitlines()[0][:160]}…). Training this model fails the same way; write "
                         "h = h + f(h) instead of h += f(h) where h is saved for the backward.") from None
    for nid, g in zip(keys, grads):
        gsq = _per_sample_sq(g, batch, mean=False) if g is not None else np.zeros(batch)
        for role, j in roles[nid]:
            if role in ("site", "pre"):
                row["grad" if role == "site" else "pre_grad"][:, j] = gsq
    return row


# ----- where the inits come from -----

def _with_grad(named) -> dict:
    return {k: v.detach().requires_grad_(v.is_floating_point()) for k, v in named}


def _buffers(module) -> dict:
    return {k: v.detach().clone() for k, v in module.named_buffers()}


def _hf_factory(model):
    """A factory that builds a Hugging Face model again from its config (its own ``_init_weights``, tying)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(type(model), "config_class") or not hasattr(model, "post_init"):
        return None

    def build():
        return type(model)(copy.deepcopy(config))
    return build


def _ties(params: dict) -> dict:
    """name -> name of an earlier tensor with identical values (cloned layers, e.g. ``nn.TransformerEncoder``)."""
    seen, ties = {}, {}
    for k, p in params.items():
        if not p.is_floating_point() or p.numel() < 2:
            continue
        x = p.detach()
        key = (tuple(x.shape), x.dtype, float(x.double().sum()), float(x.double().pow(2).sum()))
        for other in seen.get(key, []):
            if torch.equal(params[other].detach(), x):
                ties[k] = other
                break
        else:
            seen.setdefault(key, []).append(k)
    return ties


def _redraw(params: dict, families: dict, laws: dict, ties: dict, generator) -> dict:
    """One new draw of every tensor from its own law (:func:`deepstart.diagnose.measure._resample`), ties kept."""
    from deepstart.diagnose.measure import _resample

    out = {}
    for k, p in params.items():
        fam = families.get(k, "constant") if p.is_floating_point() else "constant"
        out[k] = out[ties[k]] if k in ties else _resample(p, fam, generator, laws.get(k))
    return out


def init_sources(model, n_inits: int, reinit, factory, generator, families=None, laws=None):
    """``(description, iterator of params dicts)``: parameters and buffers of each init, produced one at a time."""
    from deepstart.diagnose.measure import _init_copy

    seeds = [int(torch.randint(0, 2**62, (1,), generator=generator)) for _ in range(n_inits)]
    given = dict(model.named_parameters())
    scheme = reinit is not None and reinit != "resample"
    auto = factory is None and reinit is None and _hf_factory(model) is not None
    build = None if scheme else factory if factory is not None else (_hf_factory(model) if auto else None)

    def from_factory():
        yield {**_with_grad(given.items()), **_buffers(model)}
        for seed in seeds[1:]:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                built = build()
            new = dict(built.named_parameters())
            if set(new) != set(given) or any(new[k].shape != given[k].shape for k in given):
                raise ValueError("factory() built a model whose parameters differ from the checked model's "
                                 f"(names or shapes); it must build the same architecture, got {type(built).__name__}")
            yield {**_with_grad(new.items()), **_buffers(built)}
            del built, new

    def resampled():
        ties = _ties(given)
        yield {**_with_grad(given.items()), **_buffers(model)}
        for seed in seeds[1:]:
            g = torch.Generator().manual_seed(seed)
            yield {**_with_grad(_redraw(given, families, laws or {}, ties, g).items()), **_buffers(model)}

    def rebuilt():
        clone = copy.deepcopy(model)
        for seed in seeds:
            _init_copy(clone, reinit, torch.Generator().manual_seed(seed))
            yield {**_with_grad(clone.named_parameters()), **_buffers(clone)}

    if build is not None:
        what = "factory (inits 1.. rebuilt by the given factory under new seeds; init 0 is the model as given)" \
            if factory is not None else ("Hugging Face config (inits 1.. built again from the model's config: its "
                                         "own _init_weights and weight tying; init 0 is the model as given)")
        return what, from_factory()
    from deepstart.diagnose.measure import describe_reinit

    if not scheme:
        return describe_reinit(None) + "; tied and cloned tensors stay equal", resampled()
    return describe_reinit(reinit), rebuilt()
