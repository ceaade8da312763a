"""User errors raise ValueError naming the bad value and the valid choices (STYLE.md), and write nothing."""
from __future__ import annotations

import pytest
import torch

from deepstart.init import (
    Critical, FractionalMoment, RandomWalk, critical_, delta_orthogonal_, fractional_moment_, he_normal_,
    orthogonal_, parse_scheme, random_walk_, variance_scaling_)

ALL_ACTIVATIONS = "relu, leaky_relu, linear, tanh, hard_tanh, erf, sigmoid, gelu, silu, elu, selu, softplus"


@pytest.mark.parametrize("call, valid", [
    (lambda w: random_walk_(w, "swish"), "valid choices: linear, relu, tanh"),
    (lambda w: fractional_moment_(w, 1.0, "tanh"), "valid choices: relu, leaky_relu, rrelu, linear"),
    (lambda w: critical_(w, "no-such-activation", q_star=0.1), f"valid names: {ALL_ACTIVATIONS}"),
    (lambda w: RandomWalk("swish"), "valid choices: linear, relu, tanh"),
    (lambda w: FractionalMoment(1.0, "gelu"), "valid choices: relu, leaky_relu, rrelu, linear"),
    (lambda w: Critical("no-such-activation"), f"valid names: {ALL_ACTIVATIONS}"),
], ids=["random_walk_", "fractional_moment_", "critical_", "RandomWalk", "FractionalMoment", "Critical"])
def test_unknown_activation(call, valid):
    w = torch.zeros(8, 8)
    with pytest.raises(ValueError, match="unknown activation") as err:
        call(w)
    assert valid in str(err.value)
    assert torch.count_nonzero(w) == 0


@pytest.mark.parametrize("s", [0.0, -0.5, 2.0000001, 3.0, float("nan"), True])
def test_fractional_s_outside_zero_two(s):
    w = torch.zeros(8, 8)
    with pytest.raises(ValueError, match=r"must lie in \(0, 2\]"):
        fractional_moment_(w, s, "relu")
    with pytest.raises(ValueError, match=r"must lie in \(0, 2\]"):
        FractionalMoment(s, "relu")
    assert torch.count_nonzero(w) == 0


@pytest.mark.parametrize("call", [
    lambda w: he_normal_(w), lambda w: variance_scaling_(w, 1.0), lambda w: orthogonal_(w),
    lambda w: delta_orthogonal_(w), lambda w: random_walk_(w, "relu"), lambda w: fractional_moment_(w, 1.0, "relu"),
    lambda w: critical_(w, "tanh", q_star=0.25), lambda w: critical_(w, "tanh", q_star=0.25, weights="gaussian")])
def test_one_dimensional_tensor(call):
    with pytest.raises(ValueError, match=r"2 dimensions") as err:
        call(torch.zeros(7))
    # names the shape and says what to do with biases and other 1-D parameters
    assert "(7,)" in str(err.value) and "zeros_" in str(err.value)


@pytest.mark.parametrize("shape, layout, groups", [((4, 8, 3, 3), "conv", 1), ((8, 4, 3), "conv_transpose", 1),
                                                   ((8, 8, 3, 3), "conv", 2)])
def test_delta_orthogonal_needs_c_out_at_least_c_in(shape, layout, groups):
    w = torch.zeros(shape)
    with pytest.raises(ValueError, match="c_out >= c_in") as err:
        delta_orthogonal_(w, layout=layout, groups=groups)
    assert "orthogonal_" in str(err.value)  # names what to use instead
    with pytest.raises(ValueError, match="weights='gaussian'"):  # critical_ adds its own way out
        critical_(w, "tanh", q_star=0.25, layout=layout, groups=groups)
    assert torch.count_nonzero(w) == 0


@pytest.mark.parametrize("call, match", [
    (lambda w: variance_scaling_(w, 1.0, "fan_sum"), "valid choices: fan_in, fan_out, fan_avg"),
    (lambda w: variance_scaling_(w, 1.0, "fan_in", "cauchy"),
     "valid choices: normal, truncated_normal, uniform, rademacher"),
    (lambda w: variance_scaling_(w, -1.0), "scale=-1.0"),
    (lambda w: he_normal_(w, layout="dense"), "valid choices: auto, linear, conv, conv_transpose"),
    (lambda w: he_normal_(w, groups=3), "groups=3"),
    (lambda w: orthogonal_(w, float("nan")), "gain=nan"),
    (lambda w: critical_(w, "tanh", q_star=0.1, weights="uniform"), "valid choices: orthogonal, gaussian"),
    (lambda w: critical_(w, "relu", sigma_b=0.1), "no critical point"),
    (lambda w: random_walk_(w, "relu", exact="yes"), "exact='yes'"),
    (lambda w: fractional_moment_(w, 1.0, "relu", exact="no"), "exact='no'"),
])
def test_other_bad_arguments(call, match):
    w = torch.zeros(8, 8)
    with pytest.raises(ValueError, match=match):
        call(w)
    assert torch.count_nonzero(w) == 0


def test_bad_scheme_text_lists_valid_names_and_arguments():
    with pytest.raises(ValueError, match="valid names: critical, delta-orthogonal, fractional-moment, glorot, he"):
        parse_scheme("kaiming-laplace")  # kaiming-uniform is an alias since issue 13
    with pytest.raises(ValueError, match="valid: distribution"):
        parse_scheme("he(scale=2)")
    with pytest.raises(ValueError, match="cannot parse"):
        parse_scheme("he((")
    with pytest.raises(TypeError, match="scheme text"):
        parse_scheme(3)
