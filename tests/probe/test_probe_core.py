"""The probe's criteria, its vectorized trainer against a plain loop, divergence, and bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from deepstart.probe import FRACTION, GROWTH, probe
from deepstart.probe.result import judge_curves

torch = pytest.importorskip("torch")
nn = torch.nn


def _curve(values, steps=40):
    return np.asarray(values, dtype=float).reshape(1, -1) if len(values) == steps else None


def test_criteria_flip_at_their_thresholds(plain_mlp):
    steps, base = 40, math.log(10)
    flat = np.full((1, steps), base)
    below = flat.copy()
    below[0, 10:] = FRACTION * base * 0.99
    above = flat.copy()
    above[0, 10:] = FRACTION * base * 1.01
    assert judge_curves(flat, base, None)[1] == ["stuck"]
    hit, v = judge_curves(below, base, None)
    assert v == ["starts"] and hit[0] == 11  # window max(1, 40 // 20) = 2: the mean of steps 9, 10 is above
    assert judge_curves(above, base, None)[1] == ["stuck"]
    assert judge_curves(below, base, 5.0)[1] == ["slow"]      # 11 > SLOW × 5
    assert judge_curves(below, base, 6.0)[1] == ["starts"]
    nan = below.copy()
    nan[0, 30] = np.nan
    assert judge_curves(nan, base, None)[1] == ["diverges"]
    grows = flat.copy()
    grows[0, -5:] = GROWTH * base * 1.01
    assert judge_curves(grows, base, None)[1] == ["diverges"]
    grows[0, -5:] = GROWTH * base * 0.99
    assert judge_curves(grows, base, None)[1] == ["stuck"]


def test_huge_first_loss_must_beat_the_input_blind_baseline(plain_mlp):
    """An init that starts at loss 50 and only shrinks its outputs to the baseline has not started."""
    steps, base = 40, math.log(10)
    curve = np.full((1, steps), base * 1.0)
    curve[0, 0] = 50.0
    assert judge_curves(curve, base, None)[1] == ["stuck"]


class _LoopAdam(torch.optim.Adam):
    """Adam under another module: the probe cannot prove it elementwise, so it trains members one by one."""


def test_vectorized_training_matches_a_plain_loop(plain_mlp):
    fast = probe(plain_mlp(3, 16, 2.0), steps=12, n_inits=3, lr=1e-2, generator=torch.Generator().manual_seed(3))
    loop = probe(plain_mlp(3, 16, 2.0), steps=12, n_inits=3, lr=1e-2, optimizer=_LoopAdam,
                 generator=torch.Generator().manual_seed(3))
    assert fast.path == "fastmlp" and loop.path == "sequential"
    np.testing.assert_allclose(fast.loss, loop.loss, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(fast.ref_loss, loop.ref_loss, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(fast.grad_norm[:, :5], loop.grad_norm[:, :5], rtol=1e-3)
    np.testing.assert_allclose(fast.update_share, loop.update_share, rtol=1e-2, atol=1e-4)


def test_vmap_path_matches_a_plain_loop_for_a_cnn(plain_mlp):
    def cnn():
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    kw = dict(steps=8, n_inits=2, lr=1e-2, input_shape=(1, 8, 8))
    vec = probe(cnn, generator=torch.Generator().manual_seed(4), **kw)
    loop = probe(cnn, optimizer=_LoopAdam, generator=torch.Generator().manual_seed(4), **kw)
    assert vec.path == "vmap" and loop.path == "sequential"
    np.testing.assert_allclose(vec.loss, loop.loss, rtol=2e-4, atol=1e-5)


class _Branchy(nn.Module):
    """Data-dependent control flow: which layer runs depends on the values (vmap cannot batch ``bool(tensor)``)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Linear(8, 16), nn.Linear(8, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.relu(self.a(x) if bool(self.a.weight.sum() > 0) else self.b(x)))


def test_control_flow_falls_back_to_one_model_at_a_time_with_a_note(plain_mlp):
    r = probe(_Branchy, steps=6, n_inits=2, lr=1e-2, generator=torch.Generator().manual_seed(5))
    assert r.path == "sequential"
    assert any("vmap" in n for n in r.notes)
    assert np.all(np.isfinite(r.loss))


def test_nan_loss_is_reported_as_diverges_not_a_crash(plain_mlp):
    r = probe(plain_mlp(4, 16, 2.0), steps=20, n_inits=3, lr=1e8, optimizer="sgd", reference=None,
              generator=torch.Generator().manual_seed(6))
    assert set(r.verdicts) == {"diverges"}
    assert r.verdict == "diverges"
    assert np.isnan(r.loss).any()
    d = r.to_dict()
    assert d["verdict"] == "diverges" and d["counts"]["diverges"] == 3


def test_user_tensors_and_lr_range(generator, plain_mlp):
    x = torch.randn(512, 12, generator=generator)
    y = (x[:, 0] > 0).long()
    r = probe(lambda: nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 2)), (x, y), steps=30,
              n_inits=2, reference="he", generator=torch.Generator().manual_seed(7))
    assert [row["lr"] for row in r.lr_table] == [1e-4, 1e-3, 1e-2]
    finals = {row["lr"]: row["median_final_loss"] for row in r.lr_table}
    assert r.lr == min(finals, key=finals.get)
    assert r.verdict == "starts"
    assert abs(r.baseline - math.log(2)) < 0.01


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(steps=1), ValueError, "steps"),
    (dict(n_inits=0), ValueError, "n_inits"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(optimizer="lbfgs"), ValueError, "adam"),
    (dict(optimizer=len), TypeError, "Optimizer"),
    (dict(task="imagenet"), ValueError, "mnist"),
    (dict(task=42), TypeError, "DataLoader"),
    (dict(task=(torch.zeros(3, 32), torch.zeros(2).long())), ValueError, "equally many"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, words, plain_mlp):
    with pytest.raises(error, match=words):
        probe(plain_mlp(2, 8, 2.0), **kwargs)


def test_bad_model_and_missing_input_shape(plain_mlp):
    with pytest.raises(TypeError, match="nn.Module"):
        probe(3)
    with pytest.raises(ValueError, match="input_shape"):
        probe(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))


def test_importing_the_probe_does_not_import_diagnose():
    import subprocess
    import sys

    code = "import sys, deepstart.probe; print('deepstart.diagnose' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_module_is_callable_and_results_serialize(plain_mlp):
    import json

    import deepstart

    r = deepstart.probe(plain_mlp(2, 8, 2.0), steps=4, n_inits=2, lr=1e-2)
    d = r.to_dict()
    json.dumps(d, allow_nan=True)
    assert len(d["loss"]) == 2 and len(d["loss"][0]) == 4 and len(d["layers"]) == 3
    assert np.allclose(np.nansum(r.update_share, 1), 1.0)


def test_stuck_needs_a_reference_that_learns(plain_mlp):
    """At lr 1e-7 neither the init nor the reference moves: not 'stuck' but 'inconclusive'; without a reference the
    absolute verdict stands."""
    kw = dict(steps=10, n_inits=2, lr=1e-7)
    with_ref = probe(plain_mlp(2, 8, 2.0), generator=torch.Generator().manual_seed(8), **kw)
    alone = probe(plain_mlp(2, 8, 2.0), generator=torch.Generator().manual_seed(8), reference=None, **kw)
    assert set(with_ref.verdicts) == {"stuck"} and set(with_ref.ref_verdicts) == {"stuck"}
    assert with_ref.verdict == "inconclusive" and any("inconclusive" in n for n in with_ref.notes)
    assert alone.verdict == "stuck"


@pytest.mark.filterwarnings("ignore::deepstart.theory._fixed_point.UnstableFixedPointWarning")  # silu's q* = 0
def test_auto_reference_falls_back_to_he_where_the_critical_scheme_refuses_a_layer():
    """An all-SiLU net gets critical(activation=swish) as its "auto" reference; delta-orthogonal cannot initialize a
    conv with fewer output than input channels (a squeeze-excitation 1 × 1 conv), so the reference is He, and says
    why (was a ValueError from the first reference init: the mbconv-se crash in docs/probe.md's zoo table)."""
    from deepstart.init import apply_
    from deepstart.probe.api import reference_builder

    squeeze = nn.Sequential(nn.Conv2d(3, 16, 3), nn.SiLU(), nn.Conv2d(16, 4, 1), nn.SiLU(), nn.Flatten(),
                            nn.Linear(4 * 6 * 6, 10))
    with pytest.raises(ValueError):
        apply_(squeeze, "critical(activation=swish)", generator=torch.Generator().manual_seed(0))
    described, build = reference_builder(squeeze, "auto")
    assert described.startswith("he (critical(activation=swish) refused")
    built = build(3)
    assert torch.isfinite(built(torch.randn(2, 3, 8, 8))).all()
    w = built[2].weight  # He for the 1 × 1 conv: variance 2 / fan_in = 2 / 16, within 3 SE of 64 draws
    assert abs(float(w.detach().var()) - 2 / 16) < 3 * (2 / 16) * (2 / w.numel()) ** 0.5
    wide = nn.Sequential(nn.Linear(8, 8), nn.SiLU(), nn.Linear(8, 2))
    assert reference_builder(wide, "auto")[0] == "critical(activation=swish)"  # applicable: kept
