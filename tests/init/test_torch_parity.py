"""``torch.nn.init`` parity: deepstart.init's kaiming_*, xavier_*, trunc_normal_, orthogonal_, calculate_gain against
torch's own functions on the same shapes (the reference is torch itself, called in the test).

* same signature (names, order, kinds, defaults) as torch, deepstart's extras keyword-only;
* where torch consumes the generator the same way (Kaiming, Xavier, trunc_normal_, orthogonal_ on float64 tall
  matrices), the same seed gives an equal tensor; elsewhere (orthogonal_ wide or float32) the law: KS against the
  exact Haar marginal and two-sample KS against torch's draws (p > 1e-4, fixed seeds);
* HF Conv1D and embedding layouts: the fans torch would need ``w.T`` / a reshaped tensor for;
* bounds for the uniform and truncated laws; bad inputs raise ValueError naming the valid choices, writing nothing.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from scipy import stats

import deepstart.init as di

SEED = 20181128  # tests/conftest.py's seed
P_MIN = 1e-4  # KS p-value threshold (STYLE.md)
TORCH_NAMES = ["kaiming_normal_", "kaiming_uniform_", "xavier_normal_", "xavier_uniform_", "trunc_normal_",
               "orthogonal_", "calculate_gain"]
# a Linear [out, in], a wide Linear, Conv1d, Conv2d, Conv3d weights
SHAPES = [(48, 40), (20, 64), (12, 6, 5), (16, 8, 3, 3), (6, 3, 3, 1, 3)]
DTYPES = [torch.float32, torch.float64]


def _gen(seed=SEED):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_signature_is_torchs(name):
    ours, theirs = inspect.signature(getattr(di, name)), inspect.signature(getattr(torch.nn.init, name))
    shared = list(ours.parameters.values())[:len(theirs.parameters)]
    assert [(p.name, p.kind, p.default) for p in shared] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()]
    extra = list(ours.parameters.values())[len(theirs.parameters):]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extra), "extras (layout=, groups=) keyword-only"


@pytest.mark.parametrize("nonlinearity", di.NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0, 0.2, math.sqrt(5), -0.1])
def test_calculate_gain_equals_torch_to_the_bit(nonlinearity, param):
    assert di.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)
    assert di.gain_var(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param) ** 2,
                                                             rel=1e-15)


# (function, keyword arguments): every argument of torch's signature, defaults included
SAME_DRAWS = [
    ("kaiming_normal_", {}), ("kaiming_normal_", {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_normal_", {"nonlinearity": "relu"}), ("kaiming_normal_", {"mode": "FAN_OUT", "nonlinearity": "tanh"}),
    ("kaiming_uniform_", {}), ("kaiming_uniform_", {"a": math.sqrt(5)}),  # nn.Linear's own default
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "selu"}), ("kaiming_uniform_", {"nonlinearity": "linear"}),
    ("xavier_normal_", {}), ("xavier_normal_", {"gain": 1.7}),
    ("xavier_uniform_", {}), ("xavier_uniform_", {"gain": 5 / 3}),
    ("trunc_normal_", {}), ("trunc_normal_", {"mean": 0.01, "std": 0.02, "a": -0.04, "b": 0.04}),
    ("trunc_normal_", {"std": 3.0, "a": 1.0, "b": 2.5}),  # acceptance < 0.3: torch's other (uniform-proposal) sampler
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, kwargs", SAME_DRAWS, ids=lambda v: v if isinstance(v, str) else str(v))
def test_same_seed_gives_torchs_tensor(name, kwargs, shape, dtype):
    ours = getattr(di, name)(torch.empty(shape, dtype=dtype), **kwargs, generator=_gen())
    theirs = getattr(torch.nn.init, name)(torch.empty(shape, dtype=dtype), **kwargs, generator=_gen())
    assert torch.equal(ours, theirs), f"seed {SEED}: {name}({kwargs}) on {shape} {dtype}"


@pytest.mark.parametrize("shape", [(48, 40), (40, 40), (64, 4, 3, 3)], ids=str)
def test_orthogonal_equals_torch_for_float64_tall(shape):
    ours = di.orthogonal_(torch.empty(shape, dtype=torch.float64), 1.3, _gen())  # generator positional, as torch
    theirs = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), 1.3, _gen())
    assert torch.equal(ours, theirs)


def _haar_entry_cdf(n):
    """CDF of one entry of a uniform unit vector in R^n: x² ~ Beta(1/2, (n−1)/2), sign fair."""
    beta = stats.beta(0.5, (n - 1) / 2)
    return lambda x: 0.5 + np.sign(x) * 0.5 * beta.cdf(np.square(x))


@pytest.mark.parametrize("shape, dtype", [((20, 64), torch.float64), ((20, 64), torch.float32),
                                          ((48, 40), torch.float32), ((4, 8, 3, 3), torch.float32)], ids=str)
def test_orthogonal_law_where_torch_draws_differently(shape, dtype):
    # torch draws wide matrices transposed and float32 ones in float32: compare laws, not tensors. Each row (wide) or
    # column (tall) of W/gain is a Haar unit vector in R^n, n = max(rows, cols); pool 8 seeds.
    gain, rows = 1.5, shape[0]
    cols = math.prod(shape[1:])
    n = max(rows, cols)

    def draws(fn):
        return np.concatenate([fn(torch.empty(shape, dtype=dtype), gain, _gen(SEED + i)).double().flatten().numpy()
                               for i in range(8)]) / gain

    ours, theirs = draws(di.orthogonal_), draws(torch.nn.init.orthogonal_)
    assert stats.kstest(ours, _haar_entry_cdf(n)).pvalue > P_MIN
    assert stats.ks_2samp(ours, theirs).pvalue > P_MIN
    m = di.orthogonal_(torch.empty(shape, dtype=torch.float64), gain, _gen()).reshape(rows, -1)
    gram = m.T @ m if rows >= cols else m @ m.T
    assert torch.allclose(gram, gain**2 * torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("name, kwargs, bound", [
    ("kaiming_uniform_", {"a": 0.2, "mode": "fan_out"}, math.sqrt(3 * 2 / (1.04 * 300))),  # fan_out = 300
    ("xavier_uniform_", {"gain": 2.0}, 2.0 * math.sqrt(6 / (300 + 200))),
])
def test_uniform_bounds_and_variance(name, kwargs, bound):
    w = getattr(di, name)(torch.empty(300, 200, dtype=torch.float64), **kwargs, generator=_gen()).flatten()
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.999 * bound  # 60k draws reach the edge
    # U(±b) has variance b²/3; SE of the sample mean of w² from its own spread, 5 SE
    w2 = w**2
    assert abs(float(w2.mean()) - bound**2 / 3) < 5 * float(w2.std()) / math.sqrt(w2.numel())


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.5, 2.0, -1.0, 3.0), (0.0, 3.0, 1.0, 2.5)])
def test_trunc_normal_bounds_and_law(mean, std, a, b):
    w = di.trunc_normal_(torch.empty(40000, dtype=torch.float64).view(200, 200), mean, std, a, b, _gen()).flatten()
    assert a <= float(w.min()) and float(w.max()) <= b
    law = stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert stats.kstest(w.numpy(), law.cdf).pvalue > P_MIN


class Conv1D(torch.nn.Module):
    """Duck-typed Hugging Face ``Conv1D``: weight ``[in, out]``, nf = out (tests/init/test_conformance.py)."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = torch.nn.Parameter(torch.empty(nx, nf))


@pytest.mark.parametrize("name", ["kaiming_normal_", "kaiming_uniform_"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_reads_hf_conv1d_and_embedding_layouts(name, mode):
    # torch reads every 2-D tensor as [out, in]: its docs say to pass w.T for x @ w layers. Our layout= gives the
    # same law without the transpose; the draws fill memory in the same order, so the flattened tensors are equal.
    conv1d = Conv1D(nf=96, nx=32)  # 32 in, 96 out
    assert di.layout_of(conv1d) == "linear_transposed"
    ours = getattr(di, name)(conv1d.weight, a=0.1, mode=mode, generator=_gen(), layout=di.layout_of(conv1d))
    theirs = getattr(torch.nn.init, name)(torch.empty(96, 32), a=0.1, mode=mode, generator=_gen())
    assert torch.equal(ours.flatten(), theirs.flatten())
    # nn.Embedding [num, dim]: fan_in = 1, fan_out = dim (deepstart.init.fans); torch sees those fans on [dim, 1]
    emb = torch.nn.Embedding(50, 24)
    ours = getattr(di, name)(emb.weight, mode=mode, nonlinearity="relu", generator=_gen(), layout="embedding")
    same_fan = (50 * 24, 1) if mode == "fan_in" else (24, 50)  # torch's fan_in = 1, resp. fan_out = 24
    theirs = getattr(torch.nn.init, name)(torch.empty(same_fan), mode=mode, nonlinearity="relu", generator=_gen())
    assert torch.equal(ours.flatten(), theirs.flatten())


@pytest.mark.parametrize("call, match", [
    (lambda w: di.kaiming_normal_(w, nonlinearity="swish"), "valid choices: linear, conv1d, .*, leaky_relu, selu"),
    (lambda w: di.kaiming_uniform_(w, mode="fan_avg"), r"fan_in, fan_out \(for fan_avg use xavier"),
    (lambda w: di.kaiming_normal_(w, mode="fan_sum"), "unknown mode 'fan_sum'; valid choices: fan_in, fan_out"),
    (lambda w: di.kaiming_normal_(w, a="0.2"), "negative_slope='0.2' must be a finite number"),
    (lambda w: di.kaiming_normal_(w, a=float("inf")), "negative_slope=inf"),
    (lambda w: di.xavier_normal_(w, gain=-1.0), "gain=-1.0 must be a finite number >= 0"),
    (lambda w: di.xavier_uniform_(w, gain=float("nan")), "gain=nan"),
    (lambda w: di.trunc_normal_(w, std=0.0), r"std=0.0 must be > 0"),
    (lambda w: di.trunc_normal_(w, a=1.0, b=-1.0), "a=1.0 must be below b=-1.0"),
    (lambda w: di.trunc_normal_(w, mean=float("nan")), "mean=nan"),
    (lambda w: di.calculate_gain("gelu"), "unknown nonlinearity 'gelu'"),
    (lambda w: di.orthogonal_(w, "1"), "gain='1'"),
])
def test_bad_inputs_name_the_valid_choices(call, match):
    w = torch.zeros(8, 6)
    with pytest.raises(ValueError, match=match):
        call(w)
    assert torch.count_nonzero(w) == 0, "nothing written before raising"


@pytest.mark.parametrize("name", ["kaiming_normal_", "kaiming_uniform_", "xavier_normal_", "xavier_uniform_"])
def test_one_dimensional_tensor_raises_with_advice(name):
    with pytest.raises(ValueError, match=r"2 dimensions") as err:
        getattr(di, name)(torch.zeros(7))
    assert "zeros_" in str(err.value)


@pytest.mark.parametrize("name", TORCH_NAMES[:-1])
def test_empty_tensor_warns_and_is_left_alone(name):
    t = torch.empty(0, 5)
    with pytest.warns(UserWarning, match="zero-element"):
        assert getattr(di, name)(t, generator=_gen()) is t
