"""Vectorized training equals training each network alone (same seed), and divergence is contained."""
from __future__ import annotations

import pytest
import torch

from deepstart.experiments.batched import train_group
from deepstart.experiments.train import Trial, load_data, train_batch, train_single

# float32, ≤ 25 steps: the vmapped bmm and the per-network mm differ only by summation order (≈1e-7 relative per
# step); 1e-5 absolute on O(0.1) parameters leaves two orders of magnitude of margin.
ATOL = 1e-5


def _max_diff(params: dict, model) -> float:
    return max(float((params[k] - v.detach()).abs().max()) for k, v in model.named_parameters())


def _check_equivalent(trials):
    data = load_data(trials[0])
    results, params = train_group(trials, data, return_params=True)
    for trial, result, p in zip(trials, results, params):
        alone, model = train_single(trial, data, return_model=True)
        assert _max_diff(p, model) < ATOL, trial
        assert [h["step"] for h in result.history] == [h["step"] for h in alone.history]
        for hb, ha in zip(result.history, alone.history):
            for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
                if ha[key] is None:
                    assert hb[key] is None
                else:
                    assert hb[key] == pytest.approx(ha[key], abs=1e-4), (key, hb["step"])
        assert result.batch_members == len(trials) and not result.diverged
    return results


def test_sgd_momentum_weight_decay_per_member_order():
    # Different lr / momentum / weight decay / init / data order per member: each must match its solo run.
    trials = [Trial(dataset="toy", depth=3, width=16, batch_size=32, steps=25, eval_every=10, seed=s,
                    data_seed=s % 2, lr=0.02 * (s + 1), momentum=0.5 * (s % 2), weight_decay=1e-3 * s,
                    init=["he", "orthogonal", "he", "glorot"][s]) for s in range(4)]
    _check_equivalent(trials)


def test_adam_shared_data_order():
    trials = [Trial(dataset="toy", depth=2, width=12, batch_size=50, steps=20, eval_every=7, optimizer="adam",
                    lr=1e-3 * (s + 1), seed=s, data_seed=3) for s in range(3)]
    _check_equivalent(trials)


@pytest.mark.parametrize("arch", ["resnet", "cnn", "conv-mlp"])
def test_other_architectures(arch):
    trials = [Trial(dataset="toy", arch=arch, depth=2, width=6, eta="1/l", batch_size=64, steps=8, lr=0.05,
                    seed=s) for s in range(2)]
    _check_equivalent(trials)


def test_diverging_member_is_dropped_and_others_unaffected():
    good = [Trial(dataset="toy", arch="resnet", depth=3, width=16, batch_size=32, steps=20, lr=0.05, seed=s)
            for s in range(2)]
    bad = good[0].replace(lr=1e3, seed=5)
    trials = [good[0], bad, good[1]]
    data = load_data(bad)
    results, params = train_group(trials, data, return_params=True)
    alone = train_single(bad, data)
    assert alone.diverged  # the reference diverges too, at the same step
    assert results[1].diverged and results[1].diverged_at_step == alone.diverged_at_step
    assert results[1].steps_run == results[1].diverged_at_step - 1
    for i in (0, 2):  # the batch went on: the others match their solo runs exactly as before
        assert not results[i].diverged and results[i].steps_run == 20
        _, model = train_single(trials[i], data, return_model=True)
        assert _max_diff(params[i], model) < ATOL


def test_train_batch_groups_by_shape_and_keeps_order():
    trials = [Trial(dataset="toy", depth=d, width=8, steps=3, test_limit=0, seed=s) for d in (1, 2) for s in (0, 1)]
    trials = [trials[0], trials[2], trials[1], trials[3]]  # interleave shapes
    results = train_batch(trials)
    assert [r.trial_id for r in results] == [t.id for t in trials]
    assert all(r.batch_members == 2 for r in results)
    assert all(r.history[-1]["test_acc"] is None for r in results)  # test_limit=0: no evaluation


def test_train_group_rejects_mixed_shapes():
    with pytest.raises(ValueError, match="one group_key"):
        train_group([Trial(dataset="toy", depth=1), Trial(dataset="toy", depth=2)], load_data(Trial(dataset="toy")))


def test_train_batch_rejects_non_trials():
    with pytest.raises(TypeError, match="Trial objects"):
        train_batch([{"depth": 2}])


def test_training_learns_toy_problem():
    # Sanity: the toy classes (means of norm 3, unit noise) are separable enough that a small He MLP reaches
    # well above chance (10%) in 200 steps.
    t = Trial(dataset="toy", depth=2, width=32, batch_size=64, steps=200, eval_every=50, lr=0.05, momentum=0.9)
    r = train_batch([t])[0]
    assert r.history[-1]["test_acc"] > 0.5
    assert r.steps_to(0.2) is not None and r.steps_to(0.2) <= 200
    torch.testing.assert_close(torch.tensor(r.epochs_to(0.2)), torch.tensor(r.steps_to(0.2) / 32))


def test_fast_mlp_path_equals_vmap_path(monkeypatch):
    # Plain MLPs take the explicit-bmm path (fastmlp); forcing the generic vmap path must give the same numbers.
    from deepstart.experiments.fastmlp import FastMLP

    trials = [Trial(dataset="toy", depth=3, width=16, batch_size=32, steps=15, lr=0.05, momentum=0.9, seed=s,
                    data_seed=s, activation=["tanh", "tanh", "tanh"][s]) for s in range(3)]
    data = load_data(trials[0])
    assert FastMLP.supports(train_single(trials[0], data, return_model=True)[1])
    fast, p_fast = train_group(trials, data, return_params=True)
    monkeypatch.setattr(FastMLP, "supports", staticmethod(lambda base: False))
    slow, p_slow = train_group(trials, data, return_params=True)
    for a, b, pa, pb in zip(fast, slow, p_fast, p_slow):
        assert a.history[-1]["train_loss"] == pytest.approx(b.history[-1]["train_loss"], abs=1e-5)
        for k in pa:
            assert pa[k].shape == pb[k].shape
            torch.testing.assert_close(pa[k], pb[k], atol=ATOL, rtol=0)


def test_lazy_package_names():
    import deepstart.experiments as ex

    assert ex.Trial is Trial and callable(ex.train_batch) and callable(ex.run_sweep)
    with pytest.raises(AttributeError):
        ex.no_such_name  # noqa: B018


def test_real_mnist_small(data_root, monkeypatch):
    # A 2-hidden-layer He MLP on 2,000 MNIST images: after 150 SGD steps it is far above chance (10%) — logistic
    # regression alone reaches ~85% on MNIST, so 0.75 on a 1,000-image test subset is a loose, reliable floor.
    pytest.importorskip("deepstart.data")
    monkeypatch.setenv("DEEPSTART_DATA", str(data_root))
    trials = [Trial(dataset="mnist", depth=2, width=64, lr=0.05, momentum=0.9, steps=150, eval_every=50,
                    limit=2000, test_limit=1000, seed=s) for s in range(2)]
    results = train_batch(trials)
    for r in results:
        assert r.history[-1]["test_acc"] > 0.75
        assert r.epochs_to(0.2) is not None


def test_diverged_members_stop_costing_compute(monkeypatch):
    """After a member's loss turns NaN/Inf, every later step runs on a stack without it (K shrinks from 3 to 2)."""
    from deepstart.experiments.fastmlp import FastMLP

    sizes = []
    real = FastMLP.grad_and_loss

    def counting(self, params, x, y):
        sizes.append(next(iter(params.values())).shape[0])
        return real(self, params, x, y)

    monkeypatch.setattr(FastMLP, "grad_and_loss", counting)
    trials = [Trial(dataset="toy", depth=3, width=16, batch_size=32, steps=30, lr=lr, seed=s, test_limit=0)
              for s, lr in enumerate([0.05, 1e4, 0.05])]
    results = train_group(trials, load_data(trials[0]))
    at = results[1].diverged_at_step
    assert results[1].diverged and at is not None and at < 30
    assert not results[0].diverged and not results[2].diverged and results[0].steps_run == 30
    assert sizes == [3] * at + [2] * (30 - at)
    assert len(results[1].history) < len(results[0].history)  # no records after divergence
