"""One conformance suite for every tensor initializer (STYLE.md): real modules × dtypes.

For each initializer × {Linear, Hugging Face Conv1D, Conv1d, Conv2d, Conv3d, grouped Conv2d, ConvTranspose2d} ×
{float32, float64}:
the same tensor object is returned with its shape and dtype; the same generator seed gives the same tensor even
after the global RNG is disturbed, and the global RNG is never consumed; empty tensors warn and are left alone;
tensors with fewer than 2 dimensions raise ValueError with advice.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from deepstart.init import (
    critical_, delta_orthogonal_, fractional_moment_, glorot_normal_, glorot_uniform_, he_normal_, he_uniform_,
    kaiming_normal_, kaiming_uniform_, layout_of, lecun_normal_, lecun_uniform_, orthogonal_, random_walk_,
    variance_scaling_, xavier_normal_, xavier_uniform_)

SEED = 20181128  # tests/conftest.py's seed


class Conv1D(nn.Module):
    """Duck-typed stand-in for Hugging Face's ``transformers.pytorch_utils.Conv1D``: weight ``[in, out]``, nf = out."""

    def __init__(self, nf, nx, dtype=None):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf, dtype=dtype))


def _fans_kw(layout, groups):
    return dict(layout=layout, groups=groups)


# name -> f(tensor, generator, layout, groups); every public tensor initializer of deepstart.init
INITIALIZERS = {
    "variance_scaling_(1.5, fan_avg, truncated_normal)": lambda t, g, lay, gr: variance_scaling_(
        t, 1.5, "fan_avg", "truncated_normal", generator=g, **_fans_kw(lay, gr)),
    "variance_scaling_(0.5, fan_out, rademacher)": lambda t, g, lay, gr: variance_scaling_(
        t, 0.5, "fan_out", "rademacher", generator=g, **_fans_kw(lay, gr)),
    "he_normal_": lambda t, g, lay, gr: he_normal_(t, generator=g, **_fans_kw(lay, gr)),
    "he_uniform_": lambda t, g, lay, gr: he_uniform_(t, generator=g, **_fans_kw(lay, gr)),
    "lecun_normal_": lambda t, g, lay, gr: lecun_normal_(t, generator=g, **_fans_kw(lay, gr)),
    "lecun_uniform_": lambda t, g, lay, gr: lecun_uniform_(t, generator=g, **_fans_kw(lay, gr)),
    "glorot_normal_": lambda t, g, lay, gr: glorot_normal_(t, generator=g, **_fans_kw(lay, gr)),
    "glorot_uniform_": lambda t, g, lay, gr: glorot_uniform_(t, generator=g, **_fans_kw(lay, gr)),
    "kaiming_normal_(a=0.2, fan_out)": lambda t, g, lay, gr: kaiming_normal_(
        t, 0.2, "fan_out", generator=g, **_fans_kw(lay, gr)),
    "kaiming_uniform_(tanh)": lambda t, g, lay, gr: kaiming_uniform_(
        t, nonlinearity="tanh", generator=g, **_fans_kw(lay, gr)),
    "xavier_normal_(gain=1.5)": lambda t, g, lay, gr: xavier_normal_(t, 1.5, generator=g, **_fans_kw(lay, gr)),
    "xavier_uniform_": lambda t, g, lay, gr: xavier_uniform_(t, generator=g, **_fans_kw(lay, gr)),
    "orthogonal_": lambda t, g, lay, gr: orthogonal_(t, 1.3, generator=g),
    "delta_orthogonal_": lambda t, g, lay, gr: delta_orthogonal_(t, 1.3, generator=g, **_fans_kw(lay, gr)),
    "random_walk_(relu)": lambda t, g, lay, gr: random_walk_(t, "relu", generator=g, **_fans_kw(lay, gr)),
    "random_walk_(tanh)": lambda t, g, lay, gr: random_walk_(t, "tanh", generator=g, **_fans_kw(lay, gr)),
    "fractional_moment_(0.8, relu)": lambda t, g, lay, gr: fractional_moment_(
        t, 0.8, "relu", generator=g, **_fans_kw(lay, gr)),
    "fractional_moment_(1, leaky_relu)": lambda t, g, lay, gr: fractional_moment_(
        t, 1.0, "leaky_relu", negative_slope=0.1, generator=g, **_fans_kw(lay, gr)),
    "critical_(tanh, orthogonal)": lambda t, g, lay, gr: critical_(
        t, "tanh", q_star=1 / 64, generator=g, **_fans_kw(lay, gr)),
    "critical_(tanh, gaussian)": lambda t, g, lay, gr: critical_(
        t, "tanh", q_star=1 / 4, weights="gaussian", generator=g, **_fans_kw(lay, gr)),
}

# real modules; all have c_out >= c_in per group so that delta-orthogonal applies, and fan_in >= 9 so that the
# tanh random-walk gain exists (it does not below width 9, tests/theory/test_random_walk.py)
MODULES = {
    "Linear": lambda dtype: nn.Linear(12, 16, dtype=dtype),
    "HF Conv1D": lambda dtype: Conv1D(16, 12, dtype=dtype),
    "Conv1d": lambda dtype: nn.Conv1d(4, 6, 3, dtype=dtype),
    "Conv2d": lambda dtype: nn.Conv2d(4, 6, 3, dtype=dtype),
    "Conv3d": lambda dtype: nn.Conv3d(2, 3, (3, 1, 3), dtype=dtype),
    "Conv2d(groups=2)": lambda dtype: nn.Conv2d(4, 8, 3, groups=2, dtype=dtype),
    "ConvTranspose2d": lambda dtype: nn.ConvTranspose2d(4, 6, 3, dtype=dtype),
}
DTYPES = [torch.float32, torch.float64]


def _run(name, module, seed):
    return INITIALIZERS[name](module.weight, torch.Generator().manual_seed(seed), layout_of(module),
                              int(getattr(module, "groups", 1)))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("module_name", list(MODULES))
@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_contract_on_real_modules(name, module_name, dtype):
    module = MODULES[module_name](dtype)
    data = module.weight  # the nn.Parameter itself (requires grad: initializers work under no_grad)
    shape, before = tuple(data.shape), data.detach().clone()
    rng_state = torch.get_rng_state()
    out = _run(name, module, SEED)
    assert out is data, "must return the tensor it was given (in place)"
    assert tuple(out.shape) == shape and out.dtype == dtype
    assert torch.equal(torch.get_rng_state(), rng_state), "must not consume the global RNG"
    assert out.requires_grad and out.grad_fn is None, "stays a leaf parameter"
    assert torch.isfinite(out).all() and not torch.equal(out, before)
    first = out.detach().clone()
    torch.manual_seed(12345)  # disturb the global RNG
    torch.rand(17)
    again = _run(name, module, SEED)
    assert torch.equal(again, first), f"seed {SEED}: same generator seed must give the same tensor"
    other = _run(name, module, SEED + 1)
    assert not torch.equal(other, first), "a different seed should give a different tensor"


@pytest.mark.parametrize("shape", [(0, 5), (0, 3, 3, 3), (4, 0)])
@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_empty_tensor_warns_and_does_nothing(name, shape):
    t = torch.empty(shape)
    with pytest.warns(UserWarning, match="zero-element"):
        out = INITIALIZERS[name](t, torch.Generator().manual_seed(SEED), "auto", 1)
    assert out is t and tuple(out.shape) == shape


@pytest.mark.parametrize("shape", [(5,), ()])
@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_fewer_than_two_dims_raises_with_advice(name, shape):
    t = torch.zeros(shape)
    with pytest.raises(ValueError, match=r"2 dimensions") as err:
        INITIALIZERS[name](t, torch.Generator().manual_seed(SEED), "auto", 1)
    assert "zeros_" in str(err.value), "the message should say what to use for 1-D parameters"
    assert torch.equal(t, torch.zeros(shape)), "nothing written before raising"
