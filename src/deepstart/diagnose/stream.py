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
own law (tied and cloned tensors stay equal). Each forward replays the recorded graph (same op sequence). An init
whose ops differ (data-dependent control flow: a mixture of experts routes tokens by its router's weights) is left
out with a note (:attr:`Measured.note`); only when the weights as given do not replay is it a
:class:`ControlFlowError`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from deepstart.diagnose.replay import replay

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
    kept: tuple = ()        # indices of the inits measured (those whose forward ran the recorded ops)
    note: str | None = None  # why some inits were left out (data-dependent control flow), if any were


def _loss(out, loss, cotangent):
    if loss is not None:
        return loss(out)
    from deepstart.diagnose.checker import float_outputs

    return sum((u * o).sum() for u, o in zip(cotangent, float_outputs(out)))


def measure(model, graph, sites, info, args, kwargs, inits, loss, cotangent, batch, *, seed=0, bar=None,
            device=None) -> Measured:
    """Measure all sites (module docstring) for each ``params`` dict (parameters and buffers) of ``inits``.

    The statistics stay on the model's device until every init is measured, then reach the host in one transfer
    (:mod:`deepstart.diagnose._statistics`); no per-layer host synchronization."""
    from deepstart.diagnose._statistics import to_host

    roles = {}
    for role, taps in (("site", dict(enumerate(info["taps"]))), ("pre", info["pre_taps"]),
                       ("branch", info["branch_taps"])):
        for j, nid in taps.items():
            roles.setdefault(nid, []).append((role, j))
    for j, nids in info.get("softmax_taps", {}).items():
        for nid in nids:
            roles.setdefault(nid, []).append(("softmax", j))
    taps, copied = _tap_plan(graph, roles)
    pending, source, kept, diverged = [], iter(inits), [], []
    while (params := next(source, None)) is not None:
        try:
            pending.append(_measure_one(model, graph, sites, roles, taps, copied, args, kwargs, params, loss,
                                        cotangent, batch, seed, device))
            kept.append(len(kept) + len(diverged))
        except ControlFlowError as exc:
            if not kept:  # the recorded weights themselves do not replay: nothing can be matched
                raise
            diverged.append(str(exc).split(":", 1)[0])
        params = None  # freed before the next init is drawn: one parameter set alive at a time
        if bar is not None:
            bar.update(1)
    rows = [_row(stats, zeros, roles, sites, batch)
            for stats, (_, zeros) in zip(to_host([p for p, _ in pending]), pending)]
    stack = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    return Measured(stack["sq"], stack["grad"], stack["dead"], stack["pre_sq"], stack["pre_grad"],
                    stack["branch_sq"], stack["cos"], stack["entropy"], kept=tuple(kept),
                    note=_diverged_note(diverged, len(kept)))


def _diverged_note(diverged: list, kept: int) -> str | None:
    """What the inits whose forward ran other ops than the recorded one (a mixture of experts routing tokens by
    its weights, any data-dependent control flow) mean for the report: they are left out, and with one init left
    the spread across inits (FM2) is not measured."""
    if not diverged:
        return None
    spread = ("; with one init left, the spread across inits (FM2) is not measured and the SEs are one net's"
              if kept == 1 else "")
    return (f"control flow depends on the weights: {len(diverged)} of {kept + len(diverged)} inits ran other ops than "
            f"the recorded forward ({diverged[0]}), so their sites cannot be matched and they are left out; the "
            f"statistics are those of the {kept} init(s) that ran the recorded ops (init 0, the weights as given, "
            f"always does){spread}. Pass reinit=... that keeps the control flow for more.")


def _tap_plan(graph, roles) -> tuple:
    """``(op index -> [(output position, node id)], tapped nodes to read at once)``. A tapped tensor that an in-place
    op may change later (``relu_`` on it or on a view of it, ``x += f(x)``) is reduced to its statistics when it is
    made, so they are those of the tensor as made; the others are read where they are, after the forward."""
    taps = {}
    for nid in roles:
        op = graph.nodes[nid].op
        if op >= 0:
            taps.setdefault(op, []).append((graph.ops[op].outputs.index(nid), nid))
    parent = list(range(len(graph.nodes)))  # alias classes: views, casts and in-place results share storage

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n
    for op in graph.ops:
        if op.inputs and (op.inplace or op.kind in ("shape", "transparent")):
            for o in op.outputs:
                parent[find(o)] = find(op.inputs[0])
    last = {}  # alias class -> index of the last in-place op that writes into it
    for op in graph.ops:
        if op.inplace and op.inputs:
            last[find(op.inputs[0])] = op.index
    copied = {nid for nid in roles if graph.nodes[nid].op >= 0 and last.get(find(nid), -1) > graph.nodes[nid].op}
    return taps, copied


def _control_flow_difference(count: int, recorded: int, mismatch) -> str:
    """What an init's replay did differently from the recorded forward, in words (``mismatch`` from ``replay``)."""
    if mismatch is None:
        return f"an initialization ran {count} ops where the recorded forward ran {recorded}"
    index, was, ran = mismatch
    if was is None:
        return f"an initialization ran {count} ops, more than the {recorded} of the recorded forward"
    return (f"op number {index} of an initialization's forward was {ran} where the recorded forward ran {was}"
            f"{'' if count == recorded else f' ({count} ops in all against {recorded})'}")


def _measure_one(model, graph, sites, roles, taps, copied, args, kwargs, params, loss, cotangent, batch, seed,
                 device) -> tuple:
    """One init: the forward replayed with taps, the statistics of the tapped tensors (batched, on the device),
    then one ``autograd.grad`` for the gradients at the taps. Returns ``(Pending, nodes whose gradient is 0)``."""
    from deepstart.diagnose._device import fork_rng
    from deepstart.diagnose._statistics import _SMALL, Pending

    tensors, values, pending = {}, {}, Pending()

    def on_tap(nid, t):
        tensors[nid] = t
        if nid in copied or t.numel() >= _SMALL:  # reduced now: no copy, no stack (small ones: stacked later)
            _reduce(pending, [(nid, t.detach())], graph, sites, roles, batch)
        else:
            values[nid] = t.detach()

    with fork_rng(device):
        torch.manual_seed(seed)  # dropout & co.: the same masks for every init
        out, count, mismatch = replay(model, graph, args, kwargs, params, taps, on_tap)
    if mismatch is not None or count != len(graph.signature):
        raise ControlFlowError(
            f"{_control_flow_difference(count, len(graph.signature), mismatch)}: the model's forward depends on "
            "the values of its weights or inputs (data-dependent control flow), so "
            "sites cannot be matched across inits. Pass reinit=... that keeps the control flow, or check a "
            "submodule whose forward is fixed.")
    _reduce(pending, list(values.items()), graph, sites, roles, batch)
    values.clear()
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
    pending.sq([(nid, g) for nid, g in zip(keys, grads) if g is not None], batch, mean=False, kind="grad")
    return pending, [nid for nid, g in zip(keys, grads) if g is None]


def _reduce(pending, items, graph, sites, roles, batch) -> None:
    """The forward statistics of tapped ``(node id, tensor)`` items by role, added to ``pending``."""
    def having(*wanted):
        return [(nid, v) for nid, v in items if any(role in wanted for role, _ in roles[nid])]
    site_items = having("site")
    pending.sq(having("site", "pre", "branch"), batch, mean=True, kind="sq")
    pending.dead(site_items, {nid: graph.nodes[nid].feature_axis for nid, _ in site_items})
    pending.cos([(nid, v) for nid, v in site_items if any(r == "site" and sites[j].kind == "block"
                                                          for r, j in roles[nid])], batch)
    pending.entropy(having("softmax"))


_ROW_KEYS = {("sq", "site"): "sq", ("sq", "pre"): "pre_sq", ("sq", "branch"): "branch_sq",
             ("grad", "site"): "grad", ("grad", "pre"): "pre_grad"}


def _row(stats, zero_grads, roles, sites, batch) -> dict:
    """One init's ``[B, S]`` and ``[S]`` arrays from its host statistics (NaN where a site has no such tap)."""
    n_sites = len(sites)
    row = {k: np.full((batch, n_sites), np.nan) for k in ("sq", "grad", "pre_sq", "pre_grad", "branch_sq")}
    row["dead"], row["cos"], row["entropy"] = (np.full(n_sites, np.nan) for _ in range(3))
    entropies = {}
    for kind, keys, vals in stats:
        for nid, v in zip(keys, vals):
            for role, j in roles[nid]:
                if (kind, role) in _ROW_KEYS:
                    row[_ROW_KEYS[kind, role]][:, j] = v
                elif kind == "dead" and role == "site":
                    row["dead"][j] = v
                elif kind == "cos" and role == "site" and sites[j].kind == "block":
                    row["cos"][j] = v
                elif kind == "entropy" and role == "softmax":
                    entropies.setdefault(j, []).append(float(v))
    for nid in zero_grads:
        for role, j in roles[nid]:
            if ("grad", role) in _ROW_KEYS:
                row[_ROW_KEYS["grad", role]][:, j] = 0.0
    for j, found in entropies.items():
        row["entropy"][j] = float(np.mean(found))
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
    names = [k for k, p in params.items() if p.is_floating_point() and p.numel() >= 2]
    if not names:
        return ties
    pairs = [torch.stack([(x := params[k].detach().double()).sum(), x.pow(2).sum()]) for k in names]
    one_device = len({t.device for t in pairs}) == 1  # then one host transfer, not one per tensor
    sums = torch.stack(pairs).tolist() if one_device else [t.tolist() for t in pairs]
    for k, (total, squares) in zip(names, sums):
        x = params[k].detach()
        key = (tuple(x.shape), x.dtype, total, squares)
        for other in seen.get(key, []):
            if torch.equal(params[other].detach(), x):
                ties[k] = other
                break
        else:
            seen.setdefault(key, []).append(k)
    return ties


def _redraw(params: dict, plan: dict, ties: dict, generator) -> dict:
    """One new draw of every tensor from its own law (:func:`deepstart.diagnose.measure._resample`), ties kept;
    ``plan``: name -> ``(family, spec)`` from :func:`_redraw_plan`."""
    from deepstart.diagnose.measure import _resample

    out = {}
    for k, p in params.items():
        fam, spec = plan[k]
        out[k] = out[ties[k]] if k in ties else _resample(p, fam, generator, spec=spec)
    return out


def _redraw_plan(params: dict, families: dict, laws: dict) -> dict:
    """name -> ``(family, what a draw needs)``, read once from the given tensors (not again per init)."""
    from deepstart.diagnose.measure import _draw_spec

    plan = {}
    for k, p in params.items():
        fam = families.get(k, "constant") if p.is_floating_point() else "constant"
        plan[k] = (fam, _draw_spec(p, fam, laws.get(k)))
    return plan


def _parametrized(model) -> tuple:
    """Name prefixes of the modules whose weight a parametrization computes (weight norm: w = g·v/‖v‖). Their
    parameters (g, v, bias) are kept as given in every init: weight norm's init is data-dependent (Salimans &
    Kingma 2016 §3: g and b set from the layer's pre-activations for the given v), which a redraw of v or b loses."""
    from torch.nn.utils.parametrize import is_parametrized

    return tuple(f"{name}." if name else "" for name, m in model.named_modules() if is_parametrized(m))


def init_sources(model, n_inits: int, reinit, factory, generator, families=None, laws=None, device=None):
    """``(description, iterator of params dicts)``: parameters and buffers of each init, produced one at a time.

    ``device``: where ``model`` lives (``check``'s device); redraws and re-inits use generators made there from
    seeds drawn with ``generator``, and a factory's models (built on the host) are moved there."""
    from deepstart.diagnose._device import fork_rng
    from deepstart.diagnose.measure import _init_copy

    def gen(seed):
        return torch.Generator(device=device or "cpu").manual_seed(seed)

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
            if device is not None:
                built = built.to(device)
            new = dict(built.named_parameters())
            if set(new) != set(given) or any(new[k].shape != given[k].shape for k in given):
                raise ValueError("factory() built a model whose parameters differ from the checked model's "
                                 f"(names or shapes); it must build the same architecture, got {type(built).__name__}")
            yield {**_with_grad(new.items()), **_buffers(built)}
            del built, new

    def resampled():
        yield {**_with_grad(given.items()), **_buffers(model)}
        if n_inits > 1:
            kept = _parametrized(model)
            ties, plan = _ties(given), _redraw_plan(given, {k: f for k, f in (families or {}).items()
                                                            if not k.startswith(kept)}, laws or {})
        for seed in seeds[1:]:
            yield {**_with_grad(_redraw(given, plan, ties, gen(seed)).items()), **_buffers(model)}

    def rebuilt():
        clone = copy.deepcopy(model)
        for seed in seeds:
            with fork_rng(device):  # reset_parameters on the device draws from its global RNG
                _init_copy(clone, reinit, gen(seed))
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
