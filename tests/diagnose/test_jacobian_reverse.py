"""Jacobian singular values from reverse mode only (deepstart.diagnose._reverse) against torch.func.jacrev + svdvals,
on models whose ops have no forward-mode AD: fused attention (nn.TransformerEncoder) and a custom autograd.Function
without ``jvp``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from deepstart.diagnose import check, jacobian_singular_values
from deepstart.diagnose import jacobian as jac_mod
from deepstart.diagnose.jacobian import JacobianBudgetError

# jacrev through the fused attention kernel: torch warns that its backward has no batching rule (it loops)
_SLOW_REFERENCE = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")


def _encoder(seed=0, depth=2, d=16, heads=2, norm_first=True):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=2 * d, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        model = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False).double().eval()
    return model


class _Cube(torch.autograd.Function):
    """x ↦ x³/3 + x with a backward and no ``jvp``: torch.func.jvp raises NotImplementedError."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x ** 3 / 3 + x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (x * x + 1) * g


class _CubeOnce(_Cube):
    """The same op with a backward marked once_differentiable: double backward silently gives zeros under
    torch.func."""

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (x * x + 1) * g


class _CubeOld(torch.autograd.Function):
    """The same op as an old-style Function (ctx in forward, no setup_context): no torch.func transform takes it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3 / 3 + x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return (x * x + 1) * g


class _CustomNet(nn.Module):
    def __init__(self, n_in, n_out, op=_Cube, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.op = op
        self.a = nn.Parameter(torch.randn(n_in, n_in, generator=g, dtype=torch.float64) / n_in ** 0.5)
        self.b = nn.Parameter(torch.randn(n_out, n_in, generator=g, dtype=torch.float64) / n_in ** 0.5)

    def forward(self, x):
        h = x @ self.a.T
        return (x + 0.5 * torch.tanh(h if self.op is None else self.op.apply(h))) @ self.b.T


def _reference(model, x):
    """torch.func.jacrev + svdvals: every singular value, and the moments mean σ², mean σ⁴."""
    f = lambda v: model(v.reshape(x.shape)).reshape(-1)  # noqa: E731
    s = torch.linalg.svdvals(torch.func.jacrev(f)(x.reshape(-1)).detach()).numpy()
    return s, ((s ** 2).mean(), (s ** 4).mean())


def _x(shape, seed=1):
    return torch.randn(1, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@_SLOW_REFERENCE
@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_exact_from_reverse_mode_matches_jacrev(norm_first):
    model, x = _encoder(norm_first=norm_first), _x((6, 16))
    sv = jacobian_singular_values(model, x)  # 96 outputs: "auto" forms J one vjp per output
    ref, moments = _reference(model, x)
    assert sv.method == "exact" and sv.path == "jacrev" and "_transformer_encoder_layer_fwd" in sv.note
    np.testing.assert_allclose(sv.values, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sv.moments, moments, rtol=1e-9)


@_SLOW_REFERENCE
def test_encoder_lanczos_from_reverse_mode_matches_jacrev():
    """Top 5 values to the requested relative accuracy (tol 1e-6, float64); the SLQ moments within 4 standard
    errors of the exact ones, and their errors no larger than the moments (the probes scatter, not explode). In
    training mode (dropout 0) the fused op is scaled_dot_product_attention; in eval mode the encoder layer's fast
    path (the other tests)."""
    model, x = _encoder(depth=3).train(), _x((6, 16))
    sv = jacobian_singular_values(model, x, method="lanczos", k=5, tol=1e-6,
                                  generator=torch.Generator().manual_seed(2))
    ref, moments = _reference(model, x)
    assert sv.path == "JtJ" and sv.note.startswith("reverse mode only") and "scaled_dot_product" in sv.note
    np.testing.assert_allclose(sv.values, ref[:5], rtol=1e-5)
    for m, err, exact in zip(sv.moments, sv.moment_errors, moments):
        assert 0 < err < exact and abs(m - exact) < 4 * err, (m, err, exact)


@pytest.mark.parametrize("n_in,n_out", [(30, 30), (40, 24), (24, 40)])
def test_custom_op_without_jvp_both_methods_match_jacrev(n_in, n_out):
    model, x = _CustomNet(n_in, n_out), _x((n_in,))
    ref, moments = _reference(model, x)
    exact = jacobian_singular_values(model, x, method="exact")
    assert exact.path == "jacrev" and "jvp function" in exact.note
    np.testing.assert_allclose(exact.values, ref, rtol=1e-9, atol=1e-12)
    lz = jacobian_singular_values(model, x, method="lanczos", k=4, tol=1e-6, n_probes=8,
                                  generator=torch.Generator().manual_seed(3))
    assert lz.path == ("JtJ" if n_in <= n_out else "JJt")
    np.testing.assert_allclose(lz.values, ref[:4], rtol=1e-5)
    for m, err, ex in zip(lz.moments, lz.moment_errors, moments):
        assert abs(m - ex) < 4 * err + 1e-9 * ex, (m, err, ex)


def test_reverse_path_is_taken_exactly_when_forward_mode_raises(monkeypatch):
    """A model with forward AD keeps the jvp path (no note); the same model with torch.func.jvp made to raise
    NotImplementedError is measured by reverse mode only, with the same values."""
    model, x = _CustomNet(20, 20, op=None), _x((20,))
    ref, _ = _reference(model, x)
    fwd = jacobian_singular_values(model, x, method="lanczos", k=3, tol=1e-7, generator=torch.Generator())
    assert fwd.note == ""

    def no_forward_ad(*args, **kwargs):
        raise NotImplementedError("no forward AD for this op (test)")

    monkeypatch.setattr(torch.func, "jvp", no_forward_ad)
    rev = jacobian_singular_values(model, x, method="lanczos", k=3, tol=1e-7, generator=torch.Generator())
    assert rev.note == "reverse mode only (no forward-mode AD: no forward AD for this op (test))"
    np.testing.assert_allclose(rev.values, ref[:3], rtol=1e-6)
    np.testing.assert_allclose(rev.values, fwd.values, rtol=1e-6)


def test_wrong_double_backward_is_caught_and_j_formed_by_vjps(monkeypatch):
    """once_differentiable: Jv by double backward would be zeros; the adjoint check refuses it, "auto" forms J by
    vjps instead (says so), an explicit "lanczos" raises NotImplementedError saying to use "exact"."""
    model, x = _CustomNet(24, 24, op=_CubeOnce), _x((24,))
    with pytest.raises(NotImplementedError, match="double backward.*method='exact'"):
        jacobian_singular_values(model, x, method="lanczos", k=3)
    monkeypatch.setattr(jac_mod, "REVERSE_EXACT_MAX_DIM", 8)  # so that "auto" picks Lanczos at 24 outputs
    sv = jacobian_singular_values(model, x)
    assert sv.method == "exact" and "no double backward" in sv.note
    np.testing.assert_allclose(sv.values, _reference(model, x)[0], rtol=1e-9, atol=1e-12)


def test_budgets_skip_with_a_reason(monkeypatch):
    model, x = _CustomNet(30, 30), _x((30,))
    with pytest.raises(JacobianBudgetError, match="MiB.*budget of 0 MiB"):
        jacobian_singular_values(model, x, memory_budget=1)
    with pytest.raises(JacobianBudgetError, match="30 vjps.*time budget of 0 s"):
        jacobian_singular_values(model, x, method="exact", time_budget=0)
    # Lanczos stopped by the time after its first block: refused when its error bound is above the threshold,
    # kept with a note saying so when below
    monkeypatch.setattr(jac_mod, "MAX_UNCONVERGED_ERROR", 0.0)
    with pytest.raises(JacobianBudgetError, match="did not converge within the time budget"):
        jacobian_singular_values(model, x, method="lanczos", k=3, n_probes=4, time_budget=0)
    monkeypatch.setattr(jac_mod, "MAX_UNCONVERGED_ERROR", np.inf)
    sv = jacobian_singular_values(model, x, method="lanczos", k=3, n_probes=4, time_budget=0)
    assert sv.krylov_dim == 4 and "stopped by the time budget at Krylov dimension 4" in sv.note


def test_check_measures_the_encoder_jacobian_or_says_why(monkeypatch):
    """check: the Jacobian of a fused-attention encoder is measured (note: reverse mode); with no time left it is
    not measured and the note says why (no crash)."""
    model, x = _encoder(), torch.randn(4, 6, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    report = check(model, x, n_inits=2, generator=torch.Generator().manual_seed(5))
    assert report.jacobian is not None and len(report.jacobian["values"]) == 96
    assert any(n.startswith("Jacobian: exact, reverse mode only") for n in report.notes)
    monkeypatch.setattr(jac_mod, "TIME_BUDGET_S", 0.0)
    report = check(model, x, n_inits=2, generator=torch.Generator().manual_seed(5))
    assert report.jacobian is None
    assert any(n.startswith("Jacobian: not measured (JacobianBudgetError") for n in report.notes)


def test_memory_budget_chunks_the_columns_without_changing_the_values():
    """A budget that leaves room for 2 columns in flight (plan_chunk: graphs 3×, each column 3× one forward graph)
    gives the same values as the default budget (16 columns at once)."""
    from deepstart.diagnose._reverse import graph_bytes, plan_chunk
    from deepstart.diagnose._sequential import flat_function

    model, x = _CustomNet(40, 40), _x((40,))
    saved = graph_bytes(*flat_function(model, x))
    budget = 9 * saved
    assert plan_chunk(saved, 16, budget) == 2 and plan_chunk(saved, 16, 2 ** 30) == 16
    kw = dict(method="lanczos", k=4, tol=1e-8)
    small = jacobian_singular_values(model, x, memory_budget=budget, generator=torch.Generator().manual_seed(6), **kw)
    whole = jacobian_singular_values(model, x, generator=torch.Generator().manual_seed(6), **kw)
    np.testing.assert_allclose(small.values, whole.values, rtol=1e-10)
    np.testing.assert_allclose(small.moments, whole.moments, rtol=1e-10)


def test_old_style_function_is_measured_from_plain_autograd():
    """An old-style autograd.Function: torch.func refuses it (RuntimeError), so the values come from plain autograd
    (batched cotangents), checked against torch.autograd.functional.jacobian (one backward per output)."""
    model, x = _CustomNet(30, 30, op=_CubeOld), _x((30,))
    j = torch.autograd.functional.jacobian(lambda v: model(v.reshape(x.shape)).reshape(-1), x.reshape(-1))
    ref = torch.linalg.svdvals(j).numpy()
    exact = jacobian_singular_values(model, x)
    assert exact.path == "jacrev" and "setup_context" in exact.note
    np.testing.assert_allclose(exact.values, ref, rtol=1e-9, atol=1e-12)
    lz = jacobian_singular_values(model, x, method="lanczos", k=4, tol=1e-7, generator=torch.Generator())
    np.testing.assert_allclose(lz.values, ref[:4], rtol=1e-6)
