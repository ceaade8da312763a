"""Schemes and their text form, apply_ and its record, residual scaling and deepstart.nn.ScaledResidual."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from deepstart.init import (
    SCHEMES, Critical, DeltaOrthogonal, FractionalMoment, Glorot, He, InitRecord, LeCun, Orthogonal, PyTorchDefault,
    RandomWalk, ResidualScaled, Scheme, VarianceScaling, apply_, parse_scheme)
from deepstart.nn import ScaledResidual

# at least one instance of every registered scheme, with non-default fields so the id carries them
INSTANCES = [
    He(), He("uniform"), LeCun(), LeCun("truncated_normal"), Glorot(), Glorot("rademacher"),
    VarianceScaling(), VarianceScaling(1.5), VarianceScaling(0.5, "fan_out", "uniform"),
    Orthogonal(), Orthogonal(1.4142135623730951), DeltaOrthogonal(), DeltaOrthogonal(2.0),
    RandomWalk(), RandomWalk("tanh"), RandomWalk("linear", exact=False),
    FractionalMoment(0.8), FractionalMoment(1.0, "leaky_relu", negative_slope=0.2), FractionalMoment(1.5, exact=False),
    Critical("tanh", q_star=1 / 64), Critical("tanh", sigma_b=0.1, weights="gaussian"), Critical("relu"),
    ResidualScaled(He(), "1/l"), ResidualScaled(Orthogonal(1.0), "geometric(0.9)"), ResidualScaled(He(), (1.0, 0.5)),
    ResidualScaled(FractionalMoment(0.8), 0.3, branches=r"blocks\.\d+"), PyTorchDefault(),
]


def test_every_registered_scheme_is_covered():
    assert {type(s).name for s in INSTANCES} == set(SCHEMES)


@pytest.mark.parametrize("scheme", INSTANCES, ids=lambda s: s.id)
def test_id_round_trip(scheme):
    again = parse_scheme(scheme.id)
    assert again == scheme and type(again) is type(scheme) and again.id == scheme.id
    assert parse_scheme(scheme) is scheme
    assert Scheme.from_dict(scheme.to_dict()) == scheme
    assert hash(again) == hash(scheme)  # frozen dataclasses


@pytest.mark.parametrize("text, expected", [
    ("fractional-moment(s=0.8, activation=relu)", FractionalMoment(0.8, "relu")),
    ("fractional_moment(0.8)", FractionalMoment(0.8)),
    ("critical(activation=tanh, q_star=1/64)", Critical("tanh", q_star=0.015625)),
    ("variance-scaling(scale=1.5)", VarianceScaling(1.5)),
    ("kaiming", He()), ("xavier", Glorot()), ("default", PyTorchDefault()), ("He", He()),
    ("residual-scaled(base=orthogonal(gain=2), eta=[1, 0.5])", ResidualScaled(Orthogonal(2.0), (1.0, 0.5))),
])
def test_text_forms_from_the_interface(text, expected):
    assert parse_scheme(text) == expected


def _net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
                         nn.LayerNorm(10))


@pytest.mark.parametrize("scheme", [s for s in INSTANCES if not isinstance(s, ResidualScaled)], ids=lambda s: s.id)
def test_apply_returns_a_printable_serializable_record(scheme):
    net = _net()
    norm_before = net[4].weight.detach().clone()
    rec = apply_(net, scheme.id, generator=torch.Generator().manual_seed(0))
    assert isinstance(rec, InitRecord) and rec.scheme == scheme.id
    assert rec.names == ("0.weight", "0.bias", "3.weight", "3.bias")  # LayerNorm untouched
    assert torch.equal(net[4].weight, norm_before)
    text = str(rec)
    assert text.splitlines()[1].split() == ["parameter", "shape", "fan_in", "std", "scheme"]
    assert "0.weight" in text and "8×3×3×3" in text and "3.weight" in text
    data = json.loads(rec.to_json())
    assert data["entries"][0]["shape"] == [8, 3, 3, 3] and data["entries"][0]["fan_in"] == 27
    assert InitRecord.from_json(rec.to_json()) == rec and InitRecord.from_dict(rec.to_dict()) == rec
    # same generator seed → same model, whatever the global RNG did in between
    torch.manual_seed(99)
    other = _net()
    apply_(other, scheme, generator=torch.Generator().manual_seed(0))
    for a, b in zip(net.parameters(), other.parameters()):
        if a.shape != norm_before.shape:
            assert torch.equal(a, b)


def test_recorded_std_is_the_law_used():
    net = nn.Sequential(nn.Linear(400, 500), nn.ReLU(), nn.Linear(500, 300))
    rec = apply_(net, "he", generator=torch.Generator().manual_seed(1))
    for name, fan_in in (("0.weight", 400), ("2.weight", 500)):
        assert rec[name].std == pytest.approx(math.sqrt(2 / fan_in), rel=1e-15) and rec[name].fan_in == fan_in
        w2 = dict(net.named_parameters())[name].detach().double().flatten() ** 2
        assert abs(float(w2.mean()) - rec[name].std ** 2) < 5 * float(w2.std()) / math.sqrt(w2.numel())
    assert rec["0.bias"].std == 0.0 and torch.count_nonzero(net[0].bias) == 0
    with pytest.raises(KeyError, match="recorded"):
        rec["nope"]


def test_bias_policies_and_include():
    net = nn.Sequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 5))
    keep = net[0].bias.detach().clone()
    rec = apply_(net, "lecun", bias="keep", generator=torch.Generator().manual_seed(2))
    assert torch.equal(net[0].bias, keep) and rec.names == ("0.weight", "2.weight")
    rec = apply_(net, "lecun", bias=0.5, include=r"^2$", generator=torch.Generator().manual_seed(2))
    assert rec.names == ("2.weight", "2.bias") and rec["2.bias"].std == 0.5
    rec = apply_(net, "critical(activation=tanh, q_star=1)", include=nn.Linear)
    assert rec["0.bias"].std == pytest.approx(math.sqrt(0.1509646), rel=1e-6)  # THEORY.md §1, q* = 1
    with pytest.raises(ValueError, match="valid: zeros, keep"):
        apply_(net, "he", bias="ones")
    with pytest.raises(TypeError, match="nn.Module"):
        apply_(torch.empty(3, 3), "he")


def _resnet(depth=3, width=16, eta=1.0):
    return nn.Sequential(nn.Linear(width, width), *[
        ScaledResidual(nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)), eta)
        for _ in range(depth)])


def test_residual_scaled_multiplies_each_branch_last_layer():
    net, ref = _resnet(), _resnet()
    rec = apply_(net, "residual-scaled(base=he, eta=1/l)", generator=torch.Generator().manual_seed(3))
    apply_(ref, "he", generator=torch.Generator().manual_seed(3))
    for l in range(1, 4):
        last, first = f"{l}.branch.2.weight", f"{l}.branch.0.weight"
        params, base = dict(net.named_parameters()), dict(ref.named_parameters())
        assert torch.allclose(params[last], base[last] / l, rtol=1e-6, atol=0)
        assert torch.equal(params[first], base[first])
        assert rec[last].note == f"eta={1 / l:g}" and rec[last].std == pytest.approx(math.sqrt(2 / 16) / l)
    with pytest.raises(ValueError, match="no residual branches"):
        apply_(nn.Sequential(nn.Linear(3, 3)), "residual-scaled(base=he, eta=0.5)")
    with pytest.raises(ValueError, match="unknown eta schedule"):
        parse_scheme("residual-scaled(base=he, eta=1/k)")


@pytest.mark.parametrize("learnable", [False, True])
def test_scaled_residual_eta_zero_is_the_identity(learnable):
    # SkipInit (De & Smith 2020) / ReZero (Bachlechner et al. 2020): x + 0·branch(x) = x at initialization
    block = ScaledResidual(nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6)), eta=0.0, learnable=learnable)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(4))
    assert torch.equal(block(x), x)
    names = [n for n, _ in block.named_parameters()]
    assert ("eta" in names) is learnable
    assert f"learnable={learnable}" in repr(block)
    if learnable:  # η gets a gradient and can move away from 0
        block(x).pow(2).sum().backward()
        assert block.eta.grad is not None and float(block.eta.grad.abs()) > 0


def test_scaled_residual_forward_and_errors():
    branch = nn.Linear(3, 3)
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(5))
    block = ScaledResidual(branch, 0.5)
    with torch.no_grad():
        assert torch.allclose(block(x), x + 0.5 * branch(x), rtol=0, atol=0)
    assert ScaledResidual(branch, torch.tensor(0.25)).eta == 0.25
    with pytest.raises(ValueError, match="finite"):
        ScaledResidual(branch, float("inf"))
    with pytest.raises(TypeError, match="nn.Module"):
        ScaledResidual(lambda t: t, 1.0)
