"""Singular values of a network's input-output Jacobian at one input, exact or matrix-free.

Dynamical isometry (Pennington, Schoenholz & Ganguli 2017, §2) asks for all singular values of
``J = ∂ model(x) / ∂ x`` near 1. :func:`jacobian_singular_values` measures them on a real ``nn.Module``:

- ``method="exact"`` forms ``J`` (fast sequential path or batched jvp/vjp, see :mod:`._sequential`) and returns
  every singular value;
- ``method="lanczos"`` never forms ``J``: block Lanczos on the Gram matrix (``JᵀJ`` or ``JJᵀ``, whichever is
  smaller) applied as plain GEMM chains over the cached activation derivatives for sequential stacks (Linear
  layers restricted to the units an activation does not zero, see :func:`._sequential.flat_chain_maps`), through
  ``torch.func.jvp``/``vjp`` otherwise, gives the top-``k`` singular values, and its Rademacher
  starting block doubles as stochastic Lanczos quadrature (SLQ) probes for the spectral density and moments with
  standard errors (see :mod:`.lanczos`).

Models with an op that has no forward-mode AD (fused attention, a custom ``autograd.Function`` without ``jvp``) are
measured from reverse mode only (:mod:`._reverse`): ``Jᵀu`` by vjp and ``Jv`` by the vjp of the vjp, within a time
and memory budget; ``"auto"`` then forms ``J`` (one vjp per output, chunked) only up to 512 outputs and runs Lanczos
beyond. What cannot be done within the budget raises :class:`JacobianBudgetError` saying why.

Spectral moments are per singular value: ``m_k = mean_i σ_i^{2k}`` over the ``min(n_in, n_out)`` singular values,
i.e. ``tr((JJᵀ)^k) / min(n_in, n_out)`` — the moments ``m₁, m₂`` of the eigenvalue law of ``JJᵀ`` in THEORY.md §2.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from deepstart.diagnose._reverse import JacobianBudgetError
from deepstart.diagnose._sampling import sample_jacobian_spectrum

__all__ = ["JacobianBudgetError", "SingularValues", "jacobian_singular_values", "sample_jacobian_spectrum"]

METHODS = ("auto", "exact", "lanczos")
EXACT_MAX_DIM = 2048  # "auto" forms J when min(n_in, n_out) is at most this
REVERSE_EXACT_MAX_DIM = 512  # ... or, from reverse mode only (one vjp per output), when n_out is at most this
DEFAULT_K = 10
EXACT_CHUNK = 128  # reverse mode only: vjps per chunk when J is formed
TIME_BUDGET_S = 40.0  # default budgets of the reverse-mode-only path
MEMORY_BUDGET_BYTES = 2 ** 30
MAX_UNCONVERGED_ERROR = 0.1  # a run stopped by the time budget keeps its top values if their error is below this


@dataclass(frozen=True)
class SingularValues:
    """Jacobian singular values of one model at one input.

    Attributes:
        values: singular values, descending (all of them when ``complete``, else the top ``k``).
        method: ``"exact"`` or ``"lanczos"``; ``path`` says how (``sequential``/``sequential-reverse``/``jacfwd``/
            ``jacrev``/``JtJ``/``JJt``).
        complete: whether ``values`` holds every singular value.
        input_dim, output_dim: flattened sizes of the input and output.
        moments: ``(m₁, m₂)`` with ``m_k = mean σ^{2k}`` over ``min(input_dim, output_dim)`` singular values.
        moment_errors: standard errors of ``moments`` (zeros for the exact method).
        slq_nodes: SLQ quadrature nodes (eigenvalues of the Gram matrix, i.e. σ²), shape [M]; empty if exact.
        slq_weights: per-probe quadrature weights [n_probes, M], each row summing to 1; empty if exact.
        krylov_dim: dimension of the Krylov space used (0 if exact).
        note: how the values were obtained when it matters for reading them (reverse mode only, a run stopped by
            the time budget with its estimated error); empty otherwise.
    """

    values: np.ndarray
    method: str
    path: str
    complete: bool
    input_dim: int
    output_dim: int
    moments: tuple[float, float]
    moment_errors: tuple[float, float] = (0.0, 0.0)
    slq_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    slq_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    krylov_dim: int = 0
    note: str = ""

    @property
    def n_probes(self) -> int:
        return int(self.slq_weights.shape[0])

    def density(self, bins=40, range=None):  # noqa: A002 - numpy's name
        """Histogram of the eigenvalues σ² of ``JJᵀ`` as probability masses per bin, with standard errors.

        Exact: masses of the empirical law (errors 0). Lanczos: SLQ masses averaged over probes, errors the
        standard error across probes (Ubaru, Chen & Saad 2017, §3). Returns ``(edges, mass, mass_err)``.
        """
        if self.method == "exact":
            lam = self.values ** 2
            mass, edges = np.histogram(lam, bins=bins, range=range)
            return edges, mass / lam.size, np.zeros_like(mass, dtype=float)
        edges = np.histogram_bin_edges(self.slq_nodes, bins=bins, range=range)
        per_probe = np.stack([np.histogram(self.slq_nodes, bins=edges, weights=w)[0] for w in self.slq_weights])
        err = per_probe.std(axis=0, ddof=1) / np.sqrt(self.n_probes) if self.n_probes > 1 else np.zeros(len(edges) - 1)
        return edges, per_probe.mean(axis=0), err

    def to_dict(self) -> dict:
        return {"values": self.values.tolist(), "method": self.method, "path": self.path, "complete": self.complete,
                "input_dim": self.input_dim, "output_dim": self.output_dim, "moments": list(self.moments),
                "moment_errors": list(self.moment_errors), "slq_nodes": self.slq_nodes.tolist(),
                "slq_weights": self.slq_weights.tolist(), "krylov_dim": self.krylov_dim,
                "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> "SingularValues":
        weights = np.asarray(d.get("slq_weights", []), dtype=float)
        return cls(values=np.asarray(d["values"], dtype=float), method=d["method"], path=d["path"],
                   complete=bool(d["complete"]), input_dim=int(d["input_dim"]), output_dim=int(d["output_dim"]),
                   moments=tuple(float(m) for m in d["moments"]),
                   moment_errors=tuple(float(m) for m in d.get("moment_errors", (0.0, 0.0))),
                   slq_nodes=np.asarray(d.get("slq_nodes", []), dtype=float),
                   slq_weights=weights.reshape(-1, weights.shape[-1]) if weights.size else np.zeros((0, 0)),
                   krylov_dim=int(d.get("krylov_dim", 0)), note=str(d.get("note", "")))

    def plot(self, ax=None, bins=40):
        """Histogram of the eigenvalues σ² of ``JJᵀ`` (SLQ estimate with error bars for ``lanczos``; the top-k
        values marked). Returns ``(fig, ax)``."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots() if ax is None else (ax.figure, ax)
        edges, mass, err = self.density(bins=bins)
        widths = np.diff(edges)
        ax.bar(edges[:-1], mass / widths, width=widths, align="edge", alpha=0.6,
               yerr=err / widths if self.method == "lanczos" else None, label=f"{self.method} ({self.path})")
        if not self.complete:
            for v in self.values ** 2:
                ax.axvline(v, color="C3", lw=0.8, alpha=0.7)
        ax.set_xlabel("eigenvalue of JJᵀ (σ²)")
        ax.set_ylabel("density")
        ax.set_title(f"Jacobian spectrum: m₁={self.moments[0]:.4g}, m₂={self.moments[1]:.4g}")
        ax.legend()
        return fig, ax


def _check_args(method, k, x):
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}; use 'exact' to form J, 'lanczos' for "
                         "matrix-free top-k values and SLQ moments, or 'auto' to choose by size")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor holding one input with a batch dimension of 1, got {type(x)}")
    if x.ndim < 1 or x.shape[0] != 1:
        raise ValueError(f"x has shape {tuple(x.shape)}; pass one input with a leading batch dimension of 1, "
                         "e.g. x[:1] or x.unsqueeze(0)")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k={k!r} must be a positive int (number of top singular values) or None")


def jacobian_singular_values(model, x, *, method: str = "auto", k: int | None = None, generator=None,
                             n_probes: int = 16, tol: float = 1e-4, max_dim: int | None = None,
                             device=None, time_budget: float | None = None,
                             memory_budget: float | None = None) -> SingularValues:
    """Singular values of the input-output Jacobian of ``model`` at the single input ``x``.

    Pennington, Schoenholz & Ganguli 2017, eq. 2: ``J = ∂x^L/∂x^0``; dynamical isometry means all σ_i ≈ 1.

    Args:
        model: any ``nn.Module``; it is evaluated in its current mode, on the device and dtype of its parameters
            and ``x`` (nothing is moved, cast or left changed).
        x: one input with a leading batch dimension of 1 (``[1, features]``, ``[1, C, H, W]``, …).
        method: ``"exact"`` (all values), ``"lanczos"`` (top ``k`` + SLQ moments), or ``"auto"``: exact when
            ``min(n_in, n_out) ≤ 2048``, else lanczos.
        k: number of top singular values (lanczos default 10; for exact, truncates the result).
        generator: ``torch.Generator`` for the Rademacher SLQ probes (lanczos only).
        n_probes: SLQ probes = Lanczos block size (lanczos only; at least ``k`` is used for the block).
        tol: relative accuracy target of the top-``k`` singular values (the Krylov size is chosen from it: the
            Gram matrix's top eigenvalues are asked to 2·tol; lanczos only).
        max_dim: cap on the Krylov dimension (default: the Gram matrix's size).
        device: where to compute (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``; default: where the model and ``x``
            are). The given model is never moved: a copy made on the device is used when its parameters are
            elsewhere; ``x`` is moved; the probes are drawn there (a generator on it seeded from ``generator``
            unless ``generator`` already draws there); TF32 is off for the call.
        time_budget, memory_budget: seconds and bytes for the reverse-mode-only path (models with an op lacking
            forward-mode AD): the batched columns are chunked to fit the memory, and a Lanczos run stopped by the
            time keeps its top values only if the estimated relative error of their σ² is below 0.1 (``note`` says
            so).
            Defaults: ``TIME_BUDGET_S`` (40 s) and ``MEMORY_BUDGET_BYTES`` (1 GiB) of this module.

    Raises:
        ValueError: a bad ``method``/``k``/``x``, or a ``device`` that is unknown, unavailable (``"cuda"``
            without CUDA) or unsupported (``"meta"``).
        JacobianBudgetError: reverse mode only, and the budget does not allow the measurement.
        NotImplementedError: ``method="lanczos"`` on a model with neither forward AD nor a double backward (use
            ``"exact"``).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8))
        >>> sv = jacobian_singular_values(net, torch.randn(1, 8))
        >>> sv.values.shape, sv.complete
        ((8,), True)
    """
    _check_args(method, k, x)
    from deepstart.diagnose._device import full_precision, generator_on, model_on, resolve_device

    dev = resolve_device(device)
    if dev is not None:
        model, x, generator = model_on(model, dev), x.to(dev), generator_on(generator, dev)
    with full_precision(x.device):
        budget = (TIME_BUDGET_S if time_budget is None else time_budget,
                  MEMORY_BUDGET_BYTES if memory_budget is None else memory_budget)
        return _singular_values(model, x, method, k, generator, n_probes, tol, max_dim, budget)


def _singular_values(model, x, method, k, generator, n_probes, tol, max_dim, budget) -> SingularValues:
    from deepstart.diagnose._reverse import forward_ad_missing
    from deepstart.diagnose._sequential import flat_function, is_fast_sequential

    f, v = flat_function(model, x)
    n_in = v.numel()
    with torch.no_grad():
        n_out = f(v).numel()
    missing = None if is_fast_sequential(model) else forward_ad_missing(f, v)
    if missing is not None:
        return _reverse_only(f, v, n_out, method, k, generator, n_probes, tol, max_dim, budget, missing)
    if method == "auto":
        method = "exact" if min(n_in, n_out) <= EXACT_MAX_DIM else "lanczos"
    if method == "exact":
        from deepstart.diagnose._sequential import exact_jacobian

        return _exact(*exact_jacobian(model, x), k, n_in, n_out)
    return _lanczos(lambda: _products(model, x, f, v), v, n_out, k=DEFAULT_K if k is None else k,
                    generator=generator, n_probes=n_probes, tol=tol, max_dim=max_dim)


def _reverse_only(f, v, n_out, method, k, generator, n_probes, tol, max_dim, budget, missing) -> SingularValues:
    """Reverse-mode AD only (:mod:`._reverse`): Lanczos with ``Jv`` by double backward, or ``J`` one vjp per output
    (chunked) when ``"auto"`` finds at most ``REVERSE_EXACT_MAX_DIM`` outputs, ``"exact"`` is asked, or the double
    backward fails its adjoint check. Raises :class:`JacobianBudgetError` when the budget does not allow it."""
    from deepstart.diagnose._reverse import adjoint_mismatch, graph_bytes, plan_chunk, reverse_products

    start = time.perf_counter()
    time_budget, memory_budget = budget
    n_in = v.numel()
    note = f"reverse mode only (no forward-mode AD: {missing})"
    saved = graph_bytes(f, v)
    wanted = method
    if method == "auto":
        method = "exact" if n_out <= REVERSE_EXACT_MAX_DIM else "lanczos"
    if method == "lanczos":
        top = DEFAULT_K if k is None else k
        block = min(max(n_probes, top), n_in, n_out) if isinstance(n_probes, int) else 2
        maps = reverse_products(f, v, plan_chunk(saved, block, memory_budget))
        broken = adjoint_mismatch(maps, n_in, n_out, v)
        if broken is None:
            left = time_budget - (time.perf_counter() - start)
            return _lanczos(lambda: maps, v, n_out, k=top, generator=generator, n_probes=n_probes, tol=tol,
                            max_dim=max_dim, time_limit=left, note=note)
        if wanted == "lanczos":
            raise NotImplementedError(f"{note}, and Jv by double backward fails ({broken}); use method='exact' "
                                      "(one vjp per output)")
        note = f"{note}; no double backward ({broken}), so J was formed one vjp per output"
    chunk = min(plan_chunk(saved, n_out, memory_budget), EXACT_CHUNK)  # the time is checked after each chunk
    jtu = reverse_products(f, v, chunk)["jtu"]
    eye = torch.eye(n_out, dtype=v.dtype, device=v.device)
    rows = []
    with torch.no_grad():
        for lo in range(0, n_out, chunk):
            rows.append(jtu(eye[:, lo:lo + chunk]).T)
            elapsed = time.perf_counter() - start
            if elapsed * n_out / min(lo + chunk, n_out) > time_budget:
                raise JacobianBudgetError(f"{note}: forming J by {n_out} vjps would take about "
                                          f"{elapsed * n_out / (lo + chunk):.0f} s, over the time budget of "
                                          f"{time_budget:.0f} s; raise the time budget or measure a smaller input")
    return _exact(torch.cat(rows), "jacrev", k, n_in, n_out, note=note)


def _exact(jac, path, k, n_in, n_out, note="") -> SingularValues:
    s = torch.linalg.svdvals(jac.detach()).double().cpu().numpy()
    lam = s ** 2
    moments = (float(lam.mean()), float((lam ** 2).mean()))
    complete = k is None or k >= s.size
    return SingularValues(values=s if complete else s[:k], method="exact", path=path, complete=complete,
                          input_dim=n_in, output_dim=n_out, moments=moments, note=note)


def _lanczos(products, v, n_out, *, k, generator, n_probes, tol, max_dim, time_limit=None,
             note="") -> SingularValues:
    """Block Lanczos + SLQ on the smaller Gram matrix, its products from ``products()`` (a dict as from
    :func:`_products`); ``time_limit`` (seconds) stops the run early, keeping the values only if their estimated
    relative error is below ``MAX_UNCONVERGED_ERROR`` (else :class:`JacobianBudgetError`)."""
    from deepstart.diagnose._sequential import forward_ad_quietly
    from deepstart.diagnose.lanczos import block_lanczos, rademacher

    n_in = v.numel()
    n = min(n_in, n_out)
    if k > n:
        raise ValueError(f"k={k} exceeds the number of singular values min(n_in, n_out) = {n}; use k ≤ {n} "
                         "or method='exact'")
    if not isinstance(n_probes, int) or n_probes < 2:
        raise ValueError(f"n_probes={n_probes!r} must be an int ≥ 2 (standard errors need two probes)")
    block = min(max(n_probes, k), n)
    path, gram = ("JtJ", "jtj") if n_in <= n_out else ("JJt", "jjt")
    start = time.perf_counter()
    with torch.no_grad(), forward_ad_quietly():
        op, dtype = products()[gram], v.dtype
        matvec = lambda q: op(q.to(dtype)).double()  # noqa: E731
        z = rademacher(n, block, generator=generator, device=v.device)
        left = None if time_limit is None else time_limit - (time.perf_counter() - start)
        res = block_lanczos(matvec, z, k=k, tol=2 * tol, max_dim=max_dim, time_limit=left)
    note = _budget_note(res, time.perf_counter() - start, note)
    probe_m1 = (z * res.first_block).sum(0) / n  # zᵀ G z / n
    probe_m2 = (res.first_block ** 2).sum(0) / n  # ‖G z‖² / n
    per = torch.stack([probe_m1, probe_m2]).cpu().numpy()
    theta = res.ritz_values.clamp_min(0).cpu().numpy()
    values = np.sqrt(res.top_values.clamp_min(0).cpu().numpy()[:k])  # refined top-k (lanczos.py), descending
    return SingularValues(values=values, method="lanczos", path=path, complete=bool(res.exact and k >= n),
                          input_dim=n_in, output_dim=n_out, moments=tuple(float(m) for m in per.mean(1)),
                          moment_errors=tuple(float(e) for e in per.std(1, ddof=1) / np.sqrt(block)),
                          slq_nodes=theta, slq_weights=(res.probe_weights / n).cpu().numpy(),
                          krylov_dim=res.krylov_dim, note=note)


def _budget_note(res, elapsed, note) -> str:
    """``note`` extended when the time limit stopped the run; :class:`JacobianBudgetError` when the top values
    it leaves are worse than ``MAX_UNCONVERGED_ERROR`` (relative)."""
    if not res.out_of_time:
        return note
    error = float(res.top_errors.max())
    if not error < MAX_UNCONVERGED_ERROR:
        raise JacobianBudgetError(f"the top singular values did not converge within the time budget ({elapsed:.0f} "
                                  f"s, Krylov dimension {res.krylov_dim}; estimated relative error {error:.2g}); "
                                  "raise the time budget or measure a smaller input")
    stop = f"stopped by the time budget at Krylov dimension {res.krylov_dim}, top σ² within about {error:.1%}"
    return f"{note}; {stop}" if note else stop


def _products(model, x, f, v) -> dict:
    """``{"jtj": V ↦ JᵀJ V, "jjt": U ↦ JJᵀ U}`` on column blocks: plain GEMM chains for flat Linear/activation
    stacks (:func:`._sequential.flat_chain_maps`), cached ``D_l`` both ways for other fast sequential stacks, else
    ``torch.func.jvp``/``vjp`` batched with ``vmap``."""
    from deepstart.diagnose._sequential import (flat_chain_maps, is_fast_sequential, sequential_cotangent_map,
                                                sequential_tangent_map)

    if is_fast_sequential(model):
        maps = flat_chain_maps(model, x)
        if maps is not None:
            return maps
        push, pull = sequential_tangent_map(model, x), sequential_cotangent_map(model, x)
        jv = lambda t: push(t.T.reshape(t.shape[1], *x.shape[1:])).T  # noqa: E731
        jtu = lambda u: pull(u.T).reshape(u.shape[1], -1).T  # noqa: E731
    else:
        _, vjp_fn = torch.func.vjp(f, v)
        jv = torch.func.vmap(lambda t: torch.func.jvp(f, (v,), (t,))[1], in_dims=1, out_dims=1)
        jtu = torch.func.vmap(lambda u: vjp_fn(u)[0], in_dims=1, out_dims=1)
    return {"jtj": lambda q: jtu(jv(q)), "jjt": lambda q: jv(jtu(q))}
