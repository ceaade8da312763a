"""Jacobian products from reverse-mode AD only, for models with ops that have no forward-mode AD.

Fused attention kernels (``F.scaled_dot_product_attention`` inside ``nn.MultiheadAttention`` /
``nn.TransformerEncoder``) and custom ``autograd.Function``s without a ``jvp`` cannot be pushed forward with
``torch.func.jvp``. Both products that Lanczos needs are still available from reverse mode:

- ``Jᵀu``: one vjp, ``u ↦ (∂f/∂x)ᵀ u``;
- ``Jv``: the vjp ``g(u) = Jᵀu`` is linear in ``u``, so its own vjp with cotangent ``v`` is ``(∂g/∂u)ᵀ v = Jv``
  (the double-backward trick; e.g. Townsend 2017, "A new trick for calculating Jacobian vector products").

The graphs of ``f`` and of ``g`` are built once at ``x`` and reused by every product; a block of columns is
applied as batched cotangents (``torch.autograd.grad(..., is_grads_batched=True)``, i.e. ``vmap``) in chunks, so
the memory is the two graphs plus one chunk of columns in flight. Fused attention has no double backward either
(``_scaled_dot_product_flash_attention_for_cpu_backward``): the graphs are built with PyTorch's math attention
backend, the same function composed of differentiable ops.
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["JacobianBudgetError", "forward_ad_missing", "graph_bytes", "reverse_products", "composite_attention",
           "plan_chunk", "adjoint_mismatch"]

GRAPH_FACTOR = 3  # the graphs of f and of g = Jᵀu: about three times the tensors saved by one forward pass
COLUMN_FACTOR = 3  # one column in flight through the batched double backward: about three forward graphs


class JacobianBudgetError(RuntimeError):
    """The Jacobian cannot be measured within the time or memory budget (the message says which and how much)."""


def forward_ad_missing(f, v) -> str | None:
    """``None`` when ``torch.func.jvp`` runs through ``f`` at ``v``, else the first line of its error: a
    ``NotImplementedError`` (an op without a forward-mode derivative) or a ``RuntimeError`` (an old-style
    ``autograd.Function``, which no ``torch.func`` transform takes; a model that fails outright fails again in
    reverse mode, with its own error). One forward pass."""
    from deepstart.diagnose._sequential import forward_ad_quietly

    try:
        with torch.no_grad(), forward_ad_quietly():
            torch.func.jvp(f, (v,), (torch.zeros_like(v),))
    except (NotImplementedError, RuntimeError) as exc:  # RuntimeError: an autograd.Function without setup_context
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


@contextlib.contextmanager
def composite_attention():
    """Scaled dot-product attention by PyTorch's math backend (differentiable twice; fused kernels are not)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.MATH]):
        yield


def graph_bytes(f, v) -> int:
    """Bytes of the tensors autograd saves for the backward pass of one ``f(v)`` (each storage counted once,
    leaves that require grad, i.e. the parameters and the input, left out): the memory of one forward+backward
    beyond the model and its input."""
    seen: dict = {}

    def pack(t):
        base = t if t._base is None else t._base  # a weight is often saved as a view (its transpose)
        if t.device.type != "meta" and not (base.is_leaf and base.requires_grad):
            s = t.untyped_storage()
            seen[(s.data_ptr(), t.device)] = s.nbytes()
        return t

    with torch.enable_grad(), composite_attention(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        f(v.detach().requires_grad_(True))
    return int(sum(seen.values()))


def plan_chunk(saved: int, block: int, budget_bytes: float) -> int:
    """Columns per vmapped chunk so that the two graphs (``GRAPH_FACTOR × saved``) plus the chunk in flight
    (``COLUMN_FACTOR × saved`` per column) fit ``budget_bytes``; raises :class:`JacobianBudgetError` when not even
    one column fits."""
    free = budget_bytes - GRAPH_FACTOR * saved
    per_column = max(COLUMN_FACTOR * saved, 1)
    if free < per_column:
        need = (GRAPH_FACTOR + COLUMN_FACTOR) * saved
        raise JacobianBudgetError(f"reverse-mode products need about {need / 2**20:.0f} MiB (one forward graph "
                                  f"saves {saved / 2**20:.1f} MiB), over the budget of {budget_bytes / 2**20:.0f} "
                                  "MiB; raise the memory budget or measure a smaller input")
    return int(max(1, min(block, free // per_column)))


def reverse_products(f, v, chunk: int | None = None) -> dict:
    """``{"jv", "jtu", "jtj", "jjt"}`` on column blocks (``[n_in, b] -> [n_out, b]`` etc.) from reverse mode only:
    ``Jᵀu`` by a vjp of the graph of ``f(v)``, ``Jv`` by the vjp of ``g(u) = Jᵀu`` with respect to ``u`` (the graph of
    ``g`` built at the first ``Jv``). Plain autograd with batched cotangents (``is_grads_batched``), ``chunk``
    columns at a time (all at once when ``None``), so custom ``autograd.Function``s of either style work."""
    with torch.enable_grad(), composite_attention():
        x = v.detach().requires_grad_(True)
        y = f(x)
        u = torch.zeros_like(y, requires_grad=True)
    double: list = []

    def pull(out, inp, cols):  # columns of cotangents of `out` -> columns of vjps w.r.t. `inp`, chunk by chunk
        parts = cols.T.split(chunk or cols.shape[1])
        with composite_attention():
            return torch.cat([torch.autograd.grad(out, inp, p.contiguous(), retain_graph=True,
                                                  is_grads_batched=True)[0] for p in parts]).T

    def jv(cols):
        if not double:
            with torch.enable_grad(), composite_attention():
                double.append(torch.autograd.grad(y, x, u, create_graph=True)[0])
        return pull(double[0], u, cols)

    def jtu(cols):
        return pull(y, x, cols)

    return {"jv": jv, "jtu": jtu, "jtj": lambda q: jtu(jv(q)), "jjt": lambda q: jv(jtu(q))}


def adjoint_mismatch(maps: dict, n_in: int, n_out: int, like: torch.Tensor) -> str | None:
    """``None`` when ``uᵀ(Jv) = (Jᵀu)ᵀv`` for two random pairs (to 1e-4 of ``‖u‖‖J‖‖v‖``-scale), else why not.

    Catches a ``Jv`` that double backward cannot give: a backward that is not differentiable (e.g. marked
    ``once_differentiable``) raises, or, under ``torch.func`` transforms, silently gives zeros."""
    g = torch.Generator(device=like.device).manual_seed(0)
    u = torch.randn(n_out, 2, generator=g, dtype=like.dtype, device=like.device)
    t = torch.randn(n_in, 2, generator=g, dtype=like.dtype, device=like.device)
    try:
        with torch.no_grad():
            jt, ju = maps["jv"](t), maps["jtu"](u)
    except RuntimeError as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    left, right = (u * jt).sum(0), (ju * t).sum(0)
    scale = (ju.norm(dim=0) * t.norm(dim=0)).clamp_min(torch.finfo(like.dtype).tiny)
    bad = ((left - right).abs() > 1e-4 * scale).any() | ~torch.isfinite(left).all()
    if bool(bad):
        return (f"uᵀ(Jv) = {left.tolist()} but (Jᵀu)ᵀv = {right.tolist()}: the double backward is wrong (a backward "
                "marked once_differentiable?)")
    return None
