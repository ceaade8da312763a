"""Read the architecture ``check`` can see: one traced forward pass with hooks on every module.

From the trace we find the *sites* where lengths are measured (Hanin & Rolnick 2018, §1: M_j = ‖x_j‖²/n_j):

* every executed leaf-ish module with its own parameters (``nn.Linear``, ``nn.Conv2d``, norms, attention, …); when
  its output goes straight into a known pointwise activation module, the site is measured at the activation's
  output (the post-activation x_j of the paper), otherwise at the module's output;
* every residual block it can prove: a module whose output ``y`` and input ``x`` have the same shape and satisfy
  ``y − x = η·b`` with ``b`` the output of its last executed submodule (so ``y = x + η·branch(x)``, η measured).

The *main path* is the sequence of sites outside residual blocks plus the outermost blocks, in execution order;
FM1/FM2 are read along it. Nothing is guessed: unknown module types are measured as black boxes and marked so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = ["ModelForwardError", "Site", "Trace", "trace_model", "find_sites", "activation_spec", "first_tensor",
           "expected_input"]

_SIMPLE_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu", nn.SELU: "selu",
                       nn.Identity: "linear"}
_THEORY_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class ModelForwardError(ValueError):
    """The model's forward pass raised; the message names the innermost module and the input shapes it got."""


def activation_spec(module: nn.Module) -> str | None:
    """The ``deepstart.theory`` activation spec of a pointwise activation module, or None if not one we know."""
    for cls, name in _SIMPLE_ACTIVATIONS.items():
        if type(module) is cls:
            return name
    if type(module) is nn.LeakyReLU:
        return f"leaky_relu(negative_slope={module.negative_slope})"
    if type(module) is nn.Hardtanh and module.min_val == -1.0 and module.max_val == 1.0:
        return "hard_tanh"
    if type(module) is nn.GELU and module.approximate == "none":
        return "gelu"
    if type(module) is nn.ELU:
        return f"elu(alpha={module.alpha})"
    if type(module) is nn.Softplus and module.threshold >= 20:
        return f"softplus(beta={module.beta})"
    if type(module).__name__ == "Erf" and not list(module.parameters()):
        return "erf"
    return None


def first_tensor(obj):
    """The first floating-point tensor in a tensor / tuple / list / dict (depth-first), or None."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.is_floating_point() else None
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        for item in obj:
            t = first_tensor(item)
            if t is not None:
                return t
    return None


def _shapes(args) -> list:
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(tuple(a.shape))
        elif isinstance(a, (tuple, list)):
            out.append(_shapes(a))
        elif isinstance(a, dict):
            out.append({k: _shapes([v])[0] if _shapes([v]) else type(v).__name__ for k, v in a.items()})
    return out


def expected_input(model: nn.Module) -> str:
    """What the first layer with parameters expects, in words (for error messages)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            return f"first layer {name!r} (Linear) expects inputs of shape [N, {m.in_features}]"
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            dims = ", ".join(["H", "W", "D"][: m.weight.ndim - 2])
            return f"first layer {name!r} ({type(m).__name__}) expects inputs of shape [N, {m.in_channels}, {dims}]"
        if isinstance(m, nn.Embedding):
            return f"first layer {name!r} (Embedding) expects integer inputs in [0, {m.num_embeddings})"
    return "no Linear/Conv/Embedding layer found to say which input shape the model expects"


@dataclass
class Call:
    """One module call in the traced forward pass."""

    name: str
    module: nn.Module
    call_no: int          # how many times this module was called before in the pass
    start: int            # order of the pre-hook
    end: int              # order of the forward hook
    inp: torch.Tensor | None
    out: torch.Tensor | None


@dataclass
class Trace:
    calls: list
    output: object


def trace_model(model: nn.Module, args: tuple, kwargs: dict) -> Trace:
    """Run ``model(*args, **kwargs)`` once with hooks on every module; hooks are removed in ``finally``.

    Raises :class:`ModelForwardError` naming the innermost module that raised and the input shapes it got.
    """
    calls, stack, counts, handles = [], [], {}, []
    clock = [0]

    def pre(name):
        def hook(module, inputs):
            stack.append((name, module, clock[0], _shapes(inputs), first_tensor(inputs)))
            clock[0] += 1
        return hook

    def post(name):
        def hook(module, inputs, output):
            _, _, start, _, inp = stack.pop()
            k = counts.get(name, 0)
            counts[name] = k + 1
            calls.append(Call(name, module, k, start, clock[0], inp, first_tensor(output)))
            clock[0] += 1
        return hook

    try:
        for name, m in model.named_modules():
            handles.append(m.register_forward_pre_hook(pre(name)))
            handles.append(m.register_forward_hook(post(name)))
        with torch.no_grad():
            output = model(*args, **kwargs)
    except Exception as exc:
        if stack:
            name, module, _, shapes, _ = stack[-1]
            where = f"module {name or '<root>'!r} ({type(module).__name__}) with input shapes {shapes}"
        else:
            where = f"the model ({type(model).__name__}) with input shapes {_shapes(args)}"
        raise ModelForwardError(f"the model's forward raised in {where}: {type(exc).__name__}: {exc}. "
                                f"Hint: the {expected_input(model)}.") from exc
    finally:
        for h in handles:
            h.remove()
    return Trace(calls, output)


@dataclass
class Site:
    """Where one length is measured. ``kind`` is ``"layer"`` or ``"block"`` (a residual block)."""

    name: str
    kind: str
    module_type: str
    module_name: str
    call_no: int
    measure_name: str         # module whose output is measured
    measure_call_no: int
    activation: str | None    # theory spec of the activation following the layer (None: none or unknown)
    width: int                # features (Linear) or channels (conv) of the measured tensor
    numel: int                # elements per sample of the measured tensor
    shape: tuple              # measured tensor shape (with the batch dimension)
    fan_in: float | None = None
    sigma_w: float | None = None    # √(fan_in · E W²) of the weights' law: weight std against fan-in
    sigma_b: float | None = None    # rms of the bias
    weight_std: float | None = None
    eta: float | None = None        # residual multiplier (blocks)
    parent: str | None = None       # enclosing residual block
    main: bool = True
    source: str | None = None       # "input", the name of the site whose measured tensor feeds this one, or None
    theory_layer: bool = False      # Linear/Conv: mean-field theory applies
    sigma_w_measured: float | None = None  # √(fan_in · mean W²) of the given weights (sigma_w: of the law)
    weight_family: str | None = None       # normal / uniform / orthogonal / … (deepstart.diagnose.law)
    weight_law: str | None = None          # the standard law it matched ("he", "glorot", …) or "measured"
    notes: list = field(default_factory=list)


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16) or not t.is_floating_point():
        t = t.double()
    return t.numpy().astype(np.float64)


def _weight_stats(module: nn.Module):
    """(fan_in, σ_w, σ_b, weight std) of a layer's main weight; fans from ``deepstart.init.compute_fans``."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        params = [p for p in module.parameters(recurse=False) if p.ndim >= 2]
        weight = max(params, key=lambda p: p.numel()) if params else None
    if weight is None or weight.ndim < 2:
        return None, None, None, None
    from deepstart.init import compute_fans  # the one place fans are computed (deepstart.init.fans)

    layout = "conv" if weight.ndim > 2 else "linear"
    groups = getattr(module, "groups", 1) if weight is getattr(module, "weight", None) else 1
    fan_in, _ = compute_fans(weight, layout=layout, groups=groups)
    w = _numpy(weight)  # NumPy: no thread-pool sync per small op
    sigma_w = math.sqrt(float(fan_in) * float(np.mean(w * w)))
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor):
        b = _numpy(bias)
        sigma_b = math.sqrt(float(np.mean(b * b)))
    else:
        sigma_b = 0.0
    return float(fan_in), sigma_w, sigma_b, float(w.std(ddof=1)) if w.size > 1 else 0.0


def _residual_eta(call: Call, last: Call | None) -> float | None:
    """η if ``call.out − call.inp = η · last.out`` (to 1e-4 relative), else None."""
    x, y = call.inp, call.out
    if x is None or y is None or last is None or last.out is None or x.shape != y.shape or last.out.shape != y.shape:
        return None
    r, b = (y - x).double(), last.out.double()
    bb = float((b * b).sum())
    rr = float((r * r).sum())
    if not (bb > 0 and rr > 0 and math.isfinite(bb) and math.isfinite(rr)):
        return None
    eta = float((r * b).sum()) / bb
    return eta if float(((r - eta * b) ** 2).sum()) <= 1e-8 * rr else None


def _multi_branch(call: Call, inner: list) -> bool:
    """True if ``call.out − call.inp`` is exactly a combination of outputs of its descendants of the same shape
    (``y = x + Σ_k η_k b_k``, e.g. a Transformer layer's attention and feed-forward branches); η_k not read."""
    x, y = call.inp, call.out
    if x is None or y is None or x.shape != y.shape:
        return False
    cands = []
    for d in inner:  # distinct outputs only (dropout(p=0) repeats its input: a rank-deficient fit)
        if d.out is not None and d.out.shape == y.shape and d.out is not y and \
                not any(torch.equal(d.out, c) for c in cands):
            cands.append(d.out)
    cands = cands[-8:]
    if not cands:
        return False
    r = (y - x).double().reshape(-1)
    rr = float(r @ r)
    if not (rr > 0 and math.isfinite(rr)):
        return False
    a = torch.stack([c.double().reshape(-1) for c in cands], dim=1)
    if not bool(torch.isfinite(a).all()):
        return False
    coef = torch.linalg.lstsq(a, r[:, None]).solution
    res = r[:, None] - a @ coef
    return float((res ** 2).sum()) <= 1e-8 * rr


def _descendant(name: str, parent: str) -> bool:
    return parent == "" or name.startswith(parent + ".")


def find_sites(model: nn.Module, trace: Trace) -> list:
    """Sites in execution order (see the module docstring)."""
    calls = sorted(trace.calls, key=lambda c: c.end)
    by_input = {}
    for c in calls:
        if c.inp is not None:
            by_input.setdefault(id(c.inp), []).append(c)
    blocks = []
    for i, c in enumerate(calls):
        if c.name == "" or not list(c.module.children()):
            continue
        inner = [d for d in calls[:i] if d.start > c.start and _descendant(d.name, c.name)]
        eta = _residual_eta(c, inner[-1] if inner else None)
        if eta is not None:
            blocks.append((c, eta))
        elif len(inner) >= 2 and _multi_branch(c, inner):
            blocks.append((c, None))
    sites = []
    block_ids = {id(c) for c, _ in blocks}
    for c in calls:
        if c.out is None or id(c) in block_ids or not list(c.module.parameters(recurse=False)):
            continue
        site_name = c.name if c.call_no == 0 else f"{c.name}#{c.call_no}"
        measure, act = c, None
        for d in by_input.get(id(c.out), []):
            spec = activation_spec(d.module)
            if d.start > c.end and spec is not None and d.out is not None:
                measure, act = d, spec
                break
        fan_in, sigma_w, sigma_b, wstd = _weight_stats(c.module)
        site = Site(site_name, "layer", type(c.module).__name__, c.name, c.call_no, measure.name, measure.call_no,
                    act, _width(measure.out), _numel(measure.out), tuple(measure.out.shape), fan_in, sigma_w,
                    sigma_b, wstd, theory_layer=isinstance(c.module, _THEORY_LAYERS))
        if not site.theory_layer:
            site.notes.append(f"{site.module_type}: measured as a black box; theory not applicable")
        site._start = c.start
        sites.append(site)
    for c, eta in blocks:
        site = Site(c.name if c.call_no == 0 else f"{c.name}#{c.call_no}", "block", type(c.module).__name__, c.name,
                    c.call_no, c.name, c.call_no, None, _width(c.out), _numel(c.out), tuple(c.out.shape), eta=eta)
        if eta is None:
            site.notes.append(f"{site.name}: residual block with several branches (y = x + Σ η_k b_k); η not read")
        site._start = c.start
        sites.append(site)
    block_spans = [(c.start, c.end, s) for (c, _), s in zip(blocks, [s for s in sites if s.kind == "block"])]
    for s in sites:
        inside = [(a, b, blk) for a, b, blk in block_spans if blk is not s and a < s._start < b]
        if inside:
            s.parent = max(inside, key=lambda t: t[0])[2].name
            s.main = False
    sites.sort(key=lambda s: s._start)
    measured = {}
    for c in calls:
        for s in sites:
            if (s.measure_name, s.measure_call_no) == (c.name, c.call_no):
                measured[id(c.out)] = s.name
    root_inp = next((c.inp for c in calls if c.name == ""), None)
    for s in sites:
        call = next(c for c in calls if (c.name, c.call_no) == (s.module_name, s.call_no))
        if call.inp is not None and call.inp is root_inp:
            s.source = "input"
        elif call.inp is not None:
            s.source = measured.get(id(call.inp))
        del s._start
    return sites


def _width(t: torch.Tensor) -> int:
    return int(t.shape[1]) if t.ndim >= 2 else int(t.numel())


def _numel(t: torch.Tensor) -> int:
    return int(t[0].numel()) if t.ndim >= 2 else int(t.numel())
