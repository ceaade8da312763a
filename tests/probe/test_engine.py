"""The probe's engine: fused optimizers on the stacked leaves, gradients in their parameters' layout, and the
per-layer statistics taken on a subset of steps."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from deepstart.probe import ProbeResult, probe
from deepstart.probe import engine

torch = pytest.importorskip("torch")
nn = torch.nn


class _LoopAdam(torch.optim.Adam):
    """torch's Adam (not fused: a class outside torch.optim) under another module: trained one member at a time."""


@pytest.mark.parametrize("dtype, loss_tol, stat_tol", [(torch.float32, 1e-5, 1e-5), (torch.float64, 1e-6, 1e-12)])
def test_fused_stacked_training_matches_the_loop(plain_mlp, dtype, loss_tol, stat_tol):
    """The stacked path runs torch's fused Adam on [K, …] leaves; the loop runs the single-tensor Adam on each model.
    They agree to rounding, so any difference in the update (a stride, a member mixed up) shows. In float64 the
    statistics agree to 1e-12; the loss only to float32's rounding, as the tasks take the cross-entropy in float32."""
    def build():
        return plain_mlp(3, 16, 2.0)().to(dtype)
    kw = dict(steps=45, n_inits=3, lr=1e-2, reference=None)
    fast = probe(build, generator=torch.Generator().manual_seed(3), **kw)
    loop = probe(build, optimizer=_LoopAdam, generator=torch.Generator().manual_seed(3), **kw)
    assert fast.path == "fastmlp" and loop.path == "sequential"
    assert np.all(np.isfinite(fast.loss)) and fast.loss.shape == (3, 45)
    np.testing.assert_allclose(fast.loss, loop.loss, rtol=loss_tol)
    assert fast.stat_steps == loop.stat_steps == tuple(range(0, 45, 2))
    np.testing.assert_allclose(fast.grad_norm, loop.grad_norm, rtol=stat_tol)
    np.testing.assert_allclose(fast.update_ratio, loop.update_ratio, rtol=stat_tol)
    np.testing.assert_allclose(fast.update_share, loop.update_share, rtol=stat_tol)


def test_torch_optimizers_run_fused_unless_told_otherwise():
    params = [torch.zeros(3, 2, requires_grad=True)]
    assert engine.make_optimizer(torch.optim.Adam, params, 1e-3).defaults["fused"] is True
    assert engine.make_optimizer(torch.optim.SGD, params, 1e-3).defaults["fused"] is True
    assert not engine.make_optimizer(functools.partial(torch.optim.Adam, foreach=False), params, 1e-3
                                     ).defaults["fused"]
    assert not engine.make_optimizer(_LoopAdam, params, 1e-3).defaults["fused"]
    assert "fused" not in engine.make_optimizer(torch.optim.RMSprop, params, 1e-3).defaults  # has no fused kernel


def test_gradients_take_their_parameters_layout_before_a_fused_step():
    """vmap hands back a Linear weight's gradient transposed; torch's fused CPU Adam reads a gradient's memory as if
    laid out like its parameter (docs/probe.md). ``_set_grads`` copies such a gradient into the parameter's layout,
    so the fused step equals the single-tensor step."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(2, 5, 3, generator=gen)
    grad = torch.randn(2, 3, 5, generator=gen).transpose(1, 2)  # values [2, 5, 3], strides of [2, 3, 5]
    leaf = start.clone().requires_grad_()
    engine._set_grads([{"w": leaf}], ["w"], [grad], torch.ones(2, dtype=torch.bool))
    assert leaf.grad.stride() == leaf.stride()
    torch.testing.assert_close(leaf.grad, grad, rtol=0, atol=0)
    torch.optim.Adam([leaf], lr=0.1, fused=True).step()
    ref = start.clone().requires_grad_()
    ref.grad = grad.contiguous()
    torch.optim.Adam([ref], lr=0.1, foreach=False).step()
    torch.testing.assert_close(leaf.detach(), ref.detach())


def test_statistics_steps_are_evenly_spaced_and_include_the_last():
    assert engine.stat_steps(12).tolist() == list(range(12))
    s = engine.stat_steps(200)
    assert s.tolist() == list(range(0, 200, 10)) + [199]
    assert len(engine.stat_steps(1000)) == engine.STAT_SAMPLES + 1


def test_stat_steps_survive_serialization_and_old_results_read_as_every_step(plain_mlp):
    r = probe(plain_mlp(2, 8, 2.0), steps=50, n_inits=2, lr=1e-2, reference=None,
              generator=torch.Generator().manual_seed(1))
    assert r.grad_norm.shape == (2, len(r.stat_steps), 3) and r.stat_steps[-1] == 49
    assert ProbeResult.from_dict(r.to_dict()).stat_steps == r.stat_steps
    old = r.to_dict()
    del old["stat_steps"]
    assert ProbeResult.from_dict(old).stat_steps == tuple(range(50))


def _tiny_gpt2(dropout: float):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=96, n_positions=16, n_embd=32, n_layer=1, n_head=2,
                                     resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=0,
                                     eos_token_id=0, attn_implementation="eager")
    return lambda: transformers.GPT2LMHeadModel(config)


def test_vmap_path_with_fused_adam_matches_the_loop_for_gpt2():
    """GPT-2's Conv1D weights, embeddings and layer norms through vmap, fused Adam on the stacked leaves."""
    kw = dict(steps=8, n_inits=2, lr=1e-3, reference=None)
    vec = probe(_tiny_gpt2(0.0), generator=torch.Generator().manual_seed(2), **kw)
    loop = probe(_tiny_gpt2(0.0), optimizer=_LoopAdam, generator=torch.Generator().manual_seed(2), **kw)
    assert vec.path == "vmap" and loop.path == "sequential"
    np.testing.assert_allclose(vec.loss, loop.loss, rtol=1e-5)
    np.testing.assert_allclose(vec.grad_norm, loop.grad_norm, rtol=1e-4)


def test_dropout_is_drawn_from_the_probes_seed_and_the_callers_rng_is_left_alone():
    kw = dict(steps=3, n_inits=2, lr=1e-3, reference=None)
    torch.manual_seed(11)
    state = torch.get_rng_state()
    a = probe(_tiny_gpt2(0.1), generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(torch.get_rng_state(), state)
    b = probe(_tiny_gpt2(0.1), generator=torch.Generator().manual_seed(5), **kw)
    np.testing.assert_array_equal(a.loss, b.loss)
    off = probe(_tiny_gpt2(0.0), generator=torch.Generator().manual_seed(5), **kw)
    assert not np.allclose(a.loss, off.loss, rtol=1e-4)  # the dropout is there to be seeded
