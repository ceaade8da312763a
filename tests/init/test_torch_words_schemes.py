"""Scheme strings in ``torch.nn.init``'s words, and ``he`` reading the leaky ReLU / PReLU slope from the model.

Laws: He et al. 2015, eq. 15: a layer followed by a rectifier of negative slope a gets variance 2/((1 + a²)·fan_in);
the recorded std is that law exactly (1e-15), the sample variance within 5 standard errors of it.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.init import (
    Glorot, He, LeCun, ResidualScaled, apply_, following_activations, he_normal_, parse_scheme, rectifier_slopes)
from deepstart.nn import ScaledResidual

SEED = 20181128  # tests/conftest.py's seed


def _gen(seed=SEED):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("text, expected", [
    ("kaiming(mode=fan_out, nonlinearity=leaky_relu, a=0.2)", He(mode="fan_out", a=0.2)),
    ("he(mode=fan_out)", He(mode="fan_out")),
    ("kaiming(mode=fan_out)", He(mode="fan_out")),
    ("kaiming_normal", He()), ("kaiming_normal(nonlinearity=relu)", He(nonlinearity="relu")),
    ("kaiming_uniform", He("uniform")), ("kaiming_uniform(mode=fan_out, a=0.1)", He("uniform", "fan_out", a=0.1)),
    ("he_uniform", He("uniform")), ("lecun_uniform", LeCun("uniform")),
    ("xavier_normal", Glorot()), ("xavier_uniform", Glorot("uniform")), ("glorot_uniform", Glorot("uniform")),
    ("xavier_uniform(gain=5/3)", Glorot("uniform", gain=5 / 3)), ("xavier(gain=2)", Glorot(gain=2.0)),
    ("he(nonlinearity=tanh)", He(nonlinearity="tanh")), ("he(a=none)", He()),
])
def test_torch_words_parse(text, expected):
    assert parse_scheme(text) == expected


@pytest.mark.parametrize("scheme", [
    He(mode="fan_out"), He("uniform", "fan_out", "leaky_relu", 0.2), He(a=0.0), He(nonlinearity="selu"),
    He("truncated_normal", nonlinearity="relu"), Glorot(gain=2.0), Glorot("uniform", 1.5)], ids=str)
def test_new_fields_round_trip(scheme):
    assert parse_scheme(scheme.id) == scheme and parse_scheme(scheme.id).id == scheme.id


def test_existing_ids_and_draws_unchanged():
    # the new fields default to the old law: same ids, and He()/Glorot() draw the same tensors as before
    assert (He().id, He("uniform").id, Glorot().id, Glorot("rademacher").id) == (
        "he", "he(distribution=uniform)", "glorot", "glorot(distribution=rademacher)")
    w = torch.empty(64, 48)
    He().init_weight_(w, generator=_gen())
    assert torch.equal(w, he_normal_(torch.empty(64, 48), generator=_gen()))
    He(a=0.0).init_weight_(w, generator=_gen())  # a = 0 and a unset are the same law on a bare tensor
    assert torch.equal(w, he_normal_(torch.empty(64, 48), generator=_gen()))


@pytest.mark.parametrize("text, fan", [("kaiming(mode=fan_out, nonlinearity=relu)", "out"),
                                       ("kaiming(a=0.5)", "in"), ("xavier(gain=2)", "avg"),
                                       ("he(nonlinearity=tanh, mode=fan_out)", "out")])
def test_recorded_std_is_torchs_formula(text, fan):
    net = nn.Sequential(nn.Linear(30, 50), nn.Tanh(), nn.Linear(50, 20))
    rec = apply_(net, text, generator=_gen())
    gain = {"kaiming(mode=fan_out, nonlinearity=relu)": math.sqrt(2), "kaiming(a=0.5)": math.sqrt(2 / 1.25),
            "xavier(gain=2)": 2.0, "he(nonlinearity=tanh, mode=fan_out)": 5 / 3}[text]  # torch's calculate_gain
    for name, (n_in, n_out) in (("0.weight", (30, 50)), ("2.weight", (50, 20))):
        expected = (gain * math.sqrt(2 / (n_in + n_out)) if fan == "avg"
                    else gain / math.sqrt(n_in if fan == "in" else n_out))  # torch.nn.init's std formulas
        assert rec[name].std == pytest.approx(expected, rel=1e-15)


def _check_law(weight, std):
    w2 = weight.detach().double().flatten() ** 2
    assert abs(float(w2.mean()) - std**2) < 5 * float(w2.std()) / math.sqrt(w2.numel())  # 5 SE from the sample


def test_he_reads_leaky_relu_and_prelu_slopes():
    net = nn.Sequential(nn.Linear(200, 300), nn.LeakyReLU(negative_slope=0.2), nn.Linear(300, 300), nn.Dropout(0.1),
                        nn.PReLU(init=0.3), nn.Linear(300, 250), nn.ReLU(), nn.Linear(250, 10))
    rec = apply_(net, "he", generator=_gen())
    expected = {"0.weight": (0.2, 200, "he(a=0.2)"), "2.weight": (0.3, 300, "he(a=0.3)"),  # PReLU: its init value
                "5.weight": (0.0, 300, "he"), "7.weight": (0.0, 250, "he")}
    for name, (a, fan_in, scheme) in expected.items():
        std = math.sqrt(2 / ((1 + a**2) * fan_in))  # He et al. 2015, eq. 15
        assert rec[name].std == pytest.approx(std, rel=1e-15) and rec[name].scheme == scheme
        _check_law(dict(net.named_parameters())[name], std)
    assert rec.scheme == "he"


def test_conv_batchnorm_leaky_and_nested_containers():
    block = nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.LeakyReLU(0.3))
    net = nn.Sequential(nn.Sequential(block, nn.MaxPool2d(2)), nn.Flatten(), nn.Linear(16, 16), nn.Linear(16, 4),
                        nn.PReLU(4, init=0.1))
    assert rectifier_slopes(net) == pytest.approx({id(block[0]): 0.3, id(net[3]): 0.1})
    assert id(net[2]) not in following_activations(net)  # Linear → Linear: no activation follows the first
    rec = apply_(net, "kaiming_uniform", generator=_gen())
    assert rec["0.0.0.weight"].scheme == "he(distribution=uniform, a=0.3)"
    assert rec["0.0.0.weight"].std == pytest.approx(math.sqrt(2 / (1.09 * 72)), rel=1e-15)
    assert rec["2.weight"].scheme == "he(distribution=uniform)"


def test_explicit_a_or_nonlinearity_overrides_the_model():
    net = nn.Sequential(nn.Linear(40, 60), nn.LeakyReLU(0.2), nn.Linear(60, 5))
    rec = apply_(net, "he(a=0)", generator=_gen())
    assert rec["0.weight"].std == pytest.approx(math.sqrt(2 / 40), rel=1e-15)
    rec = apply_(net, "kaiming(a=0.5)", generator=_gen())
    for name, fan_in in (("0.weight", 40), ("2.weight", 60)):  # a = 0.5 for every layer, whatever follows it
        assert rec[name].std == pytest.approx(math.sqrt(2 / (1.25 * fan_in)), rel=1e-15)
    rec = apply_(net, "he(nonlinearity=relu)", generator=_gen())
    assert rec["0.weight"].std == pytest.approx(math.sqrt(2 / 40), rel=1e-15)



def test_residual_scaled_he_reads_the_slope_too():
    branch = nn.Sequential(nn.Linear(16, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16))
    net = nn.Sequential(nn.Linear(16, 16), ScaledResidual(branch, 1.0))
    rec = apply_(net, ResidualScaled(He(), 0.5), generator=_gen())
    assert rec["1.branch.0.weight"].std == pytest.approx(math.sqrt(2 / (1.04 * 16)), rel=1e-15)
    assert rec["1.branch.2.weight"].std == pytest.approx(0.5 * math.sqrt(2 / 16), rel=1e-15)  # η = 0.5, slope 0


def test_relu_nets_draw_exactly_as_before():
    # no leaky/PReLU in the net: every layer gets He() itself, so the same tensors as plain 2/fan_in (he(a=0))
    a, b = (nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4), nn.Tanh()) for _ in "ab")
    rec = apply_(a, "he", generator=_gen())
    apply_(b, "he(a=0)", generator=_gen())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert {e.scheme for e in rec.entries} == {"he"}


@pytest.mark.parametrize("text, match", [
    ("he(mode=fan_avg)", "unknown mode 'fan_avg'; valid choices: fan_in, fan_out"),
    ("kaiming(nonlinearity=swish)", "unknown nonlinearity 'swish'; valid choices: linear, conv1d, .*, selu"),
    ("kaiming(nonlinearity=relu, a=0.2)", "used only with nonlinearity=leaky_relu"),
    ("kaiming(a=inf)", "a=inf must be a finite number"),
    ("kaiming_uniform(distribution=normal)", r"kaiming-uniform fixes distribution=uniform; write he\(distribution"),
    ("xavier_uniform(normal)", "xavier-uniform fixes distribution=uniform"),
    ("xavier(gain=-1)", "gain=-1.0 must be >= 0"),
    ("kaiming-laplace", "valid names: critical, .*\\(aliases: .*kaiming-uniform"),
])
def test_bad_scheme_words(text, match):
    with pytest.raises(ValueError, match=match):
        parse_scheme(text)
