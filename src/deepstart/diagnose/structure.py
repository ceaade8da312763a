"""Structure from the graph: layers, activations, residual additions, normalization placement, widths.

Read from a :class:`~deepstart.diagnose.capture.Graph`, never from numerical fits of the weights:

* **layers**: every op into which a ≥ 2-D parameter enters (``linear``, ``conv*``, ``addmm`` of HF ``Conv1D``,
  ``matmul``, ``embedding``, fused attention). The elementwise ops that follow it (known activations, unknown
  ones such as ``hardswish`` or ``x * sigmoid(x)``, dropout, views) are its *activation*; the site is measured
  after them, at the post-activation x_j of Hanin & Rolnick 2018. An activation the theory doesn't know is
  named ``blackbox:<label>`` and measured like any other (its gain and E φ'² come from the measured tensors).
* **norms**: ``layer_norm``/``batch_norm``/``group_norm``/``rms_norm`` ops and hand-written ``*Norm`` modules.
* **residual blocks**: an addition ``y = s + b`` whose operand ``s`` is an ancestor of ``b`` with a weight op
  between them (or, for projection shortcuts, two paths from a common ancestor with weight ops on one or both).
* **width**: the feature size of the layer's output (hidden size for ``[B, T, C]``, channels for ``[B, C, H, W]``).
* **family** (:func:`family_of`): plain, plain-bn, residual, residual-bn, pre-ln, post-ln, sandwich, deepnorm.

Walking the graph (ancestry, following a node back, a layer's elementwise chain) is :mod:`.graph_walk`; the residual
additions and concatenations are :mod:`.residual`.
"""
from __future__ import annotations

import math

import torch

from deepstart.diagnose.architecture import Site
from deepstart.diagnose.capture import KNOWN_ACTIVATIONS, Graph
from deepstart.diagnose.graph_walk import (_ADDS, _SUBS, _Ancestry, _back, _chain, _per_sample, _shifted_back,
                                           _width)

__all__ = ["read_sites", "family_of", "FAMILIES"]

FAMILIES = ("plain", "plain-bn", "residual", "residual-bn", "pre-ln", "post-ln", "sandwich", "deepnorm")
_HIDING = {"from_numpy", "tensor", "as_tensor", "asarray", "detach", "detach_"}  # tensors from outside the graph
_RECURRENT = {"rnn_tanh": "tanh", "rnn_relu": "relu", "lstm": "lstm", "gru": "gru"}
# pooling ops: a site when a layer reads their output, so that the layer's link is read from its actual input and
# pooling's own factor (the link into the pool) is left out (docs/laws.md)
_POOLS = {f"{kind}_pool{d}d" for kind in ("max", "avg", "adaptive_max", "adaptive_avg", "lp") for d in (1, 2, 3)}
_THEORY_OPS = {"linear", "conv1d", "conv2d", "conv3d", "addmm", "matmul", "__matmul__", "mm"}


def _activation(graph: Graph, members: list, own_module: str, params: dict | None = None) -> str | None:
    """Theory spec of the elementwise ops in ``members``; ``blackbox:<label>`` when the theory doesn't know them."""
    ops = [graph.ops[m] for m in members if graph.ops[m].kind not in ("shape", "transparent") and not
           (graph.ops[m].name in _ADDS | _SUBS and len(graph.ops[m].inputs) == 1)]  # x + b: a bias, not φ
    if not any(o.kind == "activation" for o in ops):  # only affine arithmetic (a bias, a position embedding)
        return None
    if len(ops) == 1 and ops[0].name in KNOWN_ACTIVATIONS:
        return _spec(ops[0], params or {})
    mods = {o.module_type for o in ops if o.module != own_module}
    label = next(iter(mods)) if len(mods) == 1 and all(o.module != own_module for o in ops) else \
        "·".join(o.name.strip("_") for o in ops[:4]) + ("…" if len(ops) > 4 else "")
    return f"blackbox:{label}"


def _spec(op, params: dict) -> str | None:
    base = KNOWN_ACTIVATIONS[op.name]
    kw = {k: v for k, v in op.scalars if k is not None}
    pos = [v for k, v in op.scalars if k is None]
    if base == "leaky_relu":
        return f"leaky_relu(negative_slope={kw.get('negative_slope', pos[0] if pos else 0.01)})"
    if base == "elu":
        return f"elu(alpha={kw.get('alpha', pos[0] if pos else 1.0)})"
    if base == "softplus":
        beta = kw.get("beta", pos[0] if pos else 1.0)
        thr = kw.get("threshold", pos[1] if len(pos) > 1 else 20.0)
        return f"softplus(beta={beta})" if thr >= 20 else f"blackbox:softplus(threshold={thr})"
    if base == "gelu":
        approx = kw.get("approximate", pos[0] if pos and isinstance(pos[0], str) else "none")
        return "gelu" if approx == "none" else "gelu_tanh" if approx == "tanh" else f"blackbox:gelu({approx})"
    if base == "hard_tanh":
        lo, hi = kw.get("min_val", pos[0] if pos else -1.0), kw.get("max_val", pos[1] if len(pos) > 1 else 1.0)
        return "hard_tanh" if (lo, hi) == (-1.0, 1.0) else f"hard_tanh(min_val={lo}, max_val={hi})"
    if base == "celu":
        return f"celu(alpha={kw.get('alpha', pos[0] if pos else 1.0)})"
    if base in ("softshrink", "hardshrink"):
        return f"{base}(lambd={kw.get('lambd', pos[0] if pos else 0.5)})"
    if base == "threshold":
        return f"threshold(threshold={kw.get('threshold', pos[0])}, value={kw.get('value', pos[1])})"
    if base == "prelu":  # one shared slope: leaky ReLU with the module's current slope (per channel: a black box)
        weight = params.get(op.params[0]) if op.params else None
        return f"prelu(init={float(weight.detach()):.6g})" if weight is not None and weight.numel() == 1 else \
            "blackbox:prelu(per-channel)"
    if base == "rrelu":  # F.rrelu(x, lower=1/8, upper=1/3, training=False): a random slope per element in training
        lower, upper = kw.get("lower", pos[0] if pos else 1 / 8), kw.get("upper", pos[1] if len(pos) > 1 else 1 / 3)
        training = bool(kw.get("training", pos[2] if len(pos) > 2 else False))
        return f"rrelu{'_train' if training else ''}(lower={lower}, upper={upper})"
    return base


_LAYOUT_OF_OP = {"linear": "linear", "addmm": "linear_transposed", "matmul": "linear_transposed",
                 "__matmul__": "linear_transposed", "mm": "linear_transposed"}


def _fans(op, weight: torch.Tensor) -> float | None:
    """fan_in of the weight as this op uses it (``addmm``/``matmul`` take ``[in, out]``, HF Conv1D), from
    ``deepstart.init.compute_fans``, the one place fans are computed."""
    from deepstart.init import compute_fans

    layout = _LAYOUT_OF_OP.get(op.name) or ("conv_transpose" if op.name.startswith("conv_transpose") else
                                            "conv" if op.name.startswith("conv") else None)
    if layout is None or weight.ndim < 2 or (layout != "conv" and layout != "conv_transpose" and weight.ndim != 2):
        return None
    return float(compute_fans(weight, layout=layout)[0])


def _weight_stats(op, params: dict):
    """(fan_in, σ_w, σ_b, weight std) of the op's main weight."""
    if not op.params or op.params[0] not in params:
        return None, None, None, None
    w = params[op.params[0]].detach().double()
    fan_in = _fans(op, w)
    bias = next((params[k] for k in op.params[1:] if k in params and params[k].ndim == 1), None)
    sigma_b = float(bias.detach().double().pow(2).mean().sqrt()) if bias is not None and bias.numel() else 0.0
    sigma_w = math.sqrt(fan_in * float(w.pow(2).mean())) if fan_in else None
    return fan_in, sigma_w, sigma_b, float(w.std()) if w.numel() > 1 else 0.0


def read_sites(graph: Graph, params: dict) -> tuple:
    """``(sites, info)``: the measuring sites in execution order and a dict with ``taps`` (node id per site),
    ``pre_taps`` (site index -> node of its pre-activation), ``branch_taps`` (block index -> branch node when no
    site measures it), ``family`` and ``blocks`` (block site -> placement facts)."""
    sizes = [int(math.prod(n.shape)) for n in graph.nodes]  # total elements: views may fold the batch
    anc = _Ancestry(graph)
    consumers = graph.consumers()
    counts, sites, taps, pre_taps = {}, [], [], {}
    measured_back = {}

    def unique(name):
        k = counts.get(name, 0)
        counts[name] = k + 1
        return (name or "<root>") if k == 0 else f"{name or '<root>'}#{k}", k

    custom = _custom_functions(graph)
    for op in graph.ops:
        pool = op.name in _POOLS and bool(op.outputs) and _feeds_layer(graph, op.outputs[0], consumers)
        if (op.kind not in ("weight", "norm") and not pool) or not op.outputs or _constant(graph, op):
            continue
        name, k = unique(op.module)
        try:
            site, end = _site(graph, op, consumers, sizes, params, (name, k), pre_taps, len(sites), custom)
        except Exception as exc:  # noqa: BLE001 - a part the reader cannot read is reported, never a crash
            site, end = _unread_site(graph, op, (name, k), exc)
        sites.append(site)
        taps.append(end)
        measured_back.setdefault(_back(graph, end), len(sites) - 1)
    notes = [f"custom autograd Function {fn} (module {graph.ops[graph.nodes[n].op].module or '<root>'!r}) outside "
             "every measured layer: its backward is not the derivative of the ops it records" for n, fn in
             custom.items() if not any(s.opaque and fn in s.opaque for s in sites)]
    from deepstart.diagnose.residual import _blocks, _place, _softmax_taps

    try:
        blocks = _blocks(graph, anc, sizes, consumers, sites, taps, measured_back, unique)
    except Exception as exc:  # noqa: BLE001
        blocks = {}
        sites = [s for s in sites if s.kind != "block"]
        taps = taps[:len(sites)]
        notes.append(f"residual additions not read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); the "
                     "blocks are not assessed")
    _place(sites, anc, graph)
    _inside_custom(graph, anc, sites, custom)
    inputs = {_back(graph, n) for n in graph.input_nodes} | set(graph.input_nodes)
    for s in sites:
        src = s._in
        if src is None:
            s.source = None
            continue
        r = _back(graph, src)
        if r not in measured_back and r not in inputs:
            r = _shifted_back(graph, src, sizes)  # x + b, s·x (Fixup scalar bias and multiplier) before the layer
        s.source = "input" if r in inputs else (sites[measured_back[r]].name if r in measured_back else None)
        if s.source is None and r not in inputs and not s.opaque:
            op = graph.ops[graph.nodes[r].op] if graph.nodes[r].op >= 0 else None
            made = "a tensor made outside the recorded computation" if op is None else \
                f"{op.name} in module {op.module or '<root>'!r}" if op.name in _HIDING else None
            if made:
                s.opaque = (f"its input comes from {made}: the ops before it are hidden from torch (NumPy, a C "
                            "extension, a detached tensor), so no law can be stated for them")
    try:
        softmax = _softmax_taps(graph, anc, sites)
    except Exception:  # noqa: BLE001 - attention entropy is optional
        softmax = {}
    if notes and sites:
        sites[0].notes.extend(notes)
    return _finish(sites, taps, pre_taps, blocks, softmax)


def _feeds_layer(graph: Graph, nid: int, consumers: dict) -> bool:
    """Whether a weight op reads node ``nid``, directly or through shape-only, transparent and elementwise ops (a
    pooled map flattened into a linear layer, or rectified first)."""
    todo, seen = [nid], set()
    while todo:
        n = todo.pop()
        for c in consumers.get(n, ()):
            o = graph.ops[c]
            if o.kind == "weight":
                return True
            if o.kind in ("shape", "transparent", "activation") and c not in seen:
                seen.add(c)
                todo.extend(o.outputs)
    return False


def _constant(graph: Graph, op) -> bool:
    """The op's output carries no gradient: no trainable parameter enters it, directly or through its inputs (a
    sin/cos position table or a mask read from a buffer by an index, GPT-J's rotary table, whether the index is a
    constant or computed from the token ids). No law of initialization speaks about it, and its gradient is
    undefined (measured, it reads as non-finite), so it is no site."""
    h = op.outputs[0]
    return h < len(graph.tensors) and not graph.tensors[h].requires_grad


def _site(graph, op, consumers, sizes, params, named, pre_taps, index, custom) -> tuple:
    """(site, measured node) of one weight or norm op called ``named`` = (name, call number)."""
    h = op.outputs[0]
    end, members = _chain(graph, h, consumers, sizes)
    name, k = named
    act = _activation(graph, members, op.module, params)
    measure_op = graph.nodes[end].op
    if op.name in _POOLS:
        site = Site(name, "pool", op.module_type or op.name, op.module, k, f"{op.name} → {act or 'identity'}",
                    measure_op, act, _width(graph, h), _per_sample(graph.nodes[end].shape), graph.nodes[end].shape)
    elif op.kind == "weight":
        fan_in, sigma_w, sigma_b, wstd = _weight_stats(op, params)
        theory = op.name in _THEORY_OPS and fan_in is not None
        site = Site(name, "layer", op.module_type or op.name, op.module, k, f"{op.name} → {act or 'identity'}",
                    measure_op, act, _width(graph, h), _per_sample(graph.nodes[end].shape), graph.nodes[end].shape, fan_in, sigma_w,
                    sigma_b, wstd, theory_layer=theory, weight_param=op.params[0],
                    weight_params=[k for k in op.params if k in params and params[k].ndim >= 2])
        site.padding = op.padding
        if not theory and op.name != "embedding":
            site.notes.append(f"{name}: {op.name} ({op.module_type}) measured as a black box; mean-field "
                              "theory not applicable")
    else:
        site = Site(name, "norm", op.module_type or op.name, op.module, k, f"{op.name} → {act or 'identity'}",
                    measure_op, act, _width(graph, h), _per_sample(graph.nodes[end].shape), graph.nodes[end].shape, norm=op.name)
    if act and members and not any(graph.ops[m].inplace for m in members) and end != h:
        pre_taps[index] = h
        site.pre_index = graph.nodes[h].op
    site._in = op.inputs[0] if op.inputs else None
    site._out, site._op, site._out_op = end, op.index, graph.nodes[end].op
    hidden = [custom[n] for n in [h, *(o for m in members for o in graph.ops[m].outputs)] if n in custom]
    if hidden:
        site.opaque = (f"custom autograd Function {hidden[0]}: its backward is not the derivative of the ops "
                       "it records, so no law predicts the gradient it passes back")
    if op.name in _RECURRENT:
        site.recurrent = _recurrent(op, graph)
    if op.kind == "norm":
        site.eps = _norm_eps(op)
    weight = params.get(op.params[0]) if op.kind == "weight" and op.params else None
    site.zero_init = weight is not None and not bool(weight.detach().any())  # Fixup, SkipInit, zero bias tables
    site._const = op.kind == "weight" and not graph.nodes[h].fed  # a table read by a constant index (positions)
    return site, end


def _unread_site(graph, op, named, exc):
    """A site for an op the reader could not read: measured (lengths, gradients) but not assessed."""
    name, k = named
    end = op.outputs[0]
    why = f"{op.name} ({op.module_type or 'op'}) could not be read: {type(exc).__name__}: " \
          f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"
    site = Site(name, "layer" if op.kind == "weight" else "norm", op.module_type or op.name, op.module, k,
                f"{op.name} → identity", graph.nodes[end].op, None, _width(graph, end),
                _per_sample(graph.nodes[end].shape), graph.nodes[end].shape, opaque=why)
    site.notes.append(f"{name}: {why}; measured around it, not assessed")
    site._in = op.inputs[0] if op.inputs else None
    site._out, site._op, site._out_op = end, op.index, graph.nodes[end].op
    return site, end


def _inside_custom(graph: Graph, anc, sites, custom: dict) -> None:
    """Sites computed inside a custom ``torch.autograd.Function``'s forward (Reformer's reversible layers): autograd
    is off there, so no gradient reaches their taps (an artifact, not a NaN measured). Each such site is opaque:
    its forward length is measured, its gradient and law are not (issue 18, no silent verdicts)."""
    if not custom:
        return
    for s in sites:
        t = graph.tensors[s._out] if s._out is not None and s._out < len(graph.tensors) else None
        if s.opaque or not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.requires_grad:
            continue
        fn = next((f for n, f in custom.items() if anc.below(s._out, n)), None)
        if fn is not None:
            s.no_grad = True
            s.opaque = (f"computed inside custom autograd Function {fn}'s forward, where autograd is off: no "
                        "gradient reaches it (its backward is the Function's own), so its law is not assessed")


def _custom_functions(graph: Graph) -> dict:
    """node -> name of the custom ``torch.autograd.Function`` that produced it (its grad_fn)."""
    out = {}
    backward = torch.autograd.function.BackwardCFunction
    for nid, t in enumerate(graph.tensors):
        fn = getattr(t, "grad_fn", None)
        if isinstance(fn, backward):
            out[nid] = type(fn).__name__.removesuffix("Backward")
    return out


def _recurrent(op, graph: Graph) -> dict:
    """Cell, stacked layers and direction of a fused ``nn.RNN``/``nn.LSTM``/``nn.GRU`` call."""
    layers = {p.rsplit("_l", 1)[-1] for p in op.params if ".weight_ih_l" in p and not p.endswith("_reverse")}
    return {"cell": _RECURRENT[op.name], "layers": max(len(layers), 1), "module": op.module,
            "bidirectional": any(p.endswith("_reverse") for p in op.params),
            "input_shape": list(graph.nodes[op.inputs[0]].shape) if op.inputs else [],
            "input_node": op.inputs[0] if op.inputs else None}


def _norm_eps(op) -> float:
    """ε of a norm op from its arguments (keyword ``eps``, else its smallest positive float), else the default."""
    kw = dict((k, v) for k, v in op.scalars if k is not None)
    if isinstance(kw.get("eps"), float):
        return float(kw["eps"])
    floats = [v for k, v in op.scalars if isinstance(v, float) and 0 < v < 0.01]
    return float(min(floats)) if floats else (1e-6 if op.name in ("norm_module", "rms_norm") else 1e-5)


def _finish(sites, taps, pre_taps, blocks, softmax) -> tuple:
    order = sorted(range(len(sites)), key=lambda j: sites[j]._out_op)
    sites = [sites[j] for j in order]
    taps = [taps[j] for j in order]
    remap = {old: new for new, old in enumerate(order)}
    pre_taps = {remap[j]: n for j, n in pre_taps.items()}
    branch_taps = {remap[j]: n for j, n in blocks.items()}
    softmax = {remap[j]: n for j, n in softmax.items()}
    for s in sites:
        for attr in ("_in", "_out", "_op", "_out_op", "_branch", "_stream", "_const", "_proj"):
            s.__dict__.pop(attr, None)
    return sites, {"taps": taps, "pre_taps": pre_taps, "branch_taps": branch_taps, "family": family_of(sites),
                   "softmax_taps": softmax}


def family_of(sites: list) -> str:
    """The normalization family of a model (:func:`deepstart.diagnose.residual.family_of`), a description."""
    from deepstart.diagnose.residual import family_of as family

    return family(sites)
