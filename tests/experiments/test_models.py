"""Model factories: structure, width profiles, residual η schedules, activations, and generator determinism."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.experiments.models import cnn, eta_schedule, make_activation, mlp, resnet


def _linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def test_mlp_structure_and_width_profile(generator):
    net = mlp(784, 10, depth=3, widths=[50, 40, 30], activation="tanh", generator=generator)
    assert [(m.in_features, m.out_features) for m in _linears(net)] == [(784, 50), (50, 40), (40, 30), (30, 10)]
    assert sum(isinstance(m, nn.Tanh) for m in net) == 3  # one activation per hidden layer, none after the output
    assert net(torch.zeros(2, 784)).shape == (2, 10)


def test_mlp_depth_zero_is_linear(generator):
    net = mlp(5, 3, depth=0, generator=generator)
    assert len(net) == 1 and isinstance(net[0], nn.Linear)


def test_same_generator_seed_same_network_despite_global_rng():
    a = mlp(20, 5, depth=4, width=16, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(999)
    torch.rand(100)  # disturb the global RNG: the factory must not read it
    b = mlp(20, 5, depth=4, width=16, generator=torch.Generator().manual_seed(7))
    c = mlp(20, 5, depth=4, width=16, generator=torch.Generator().manual_seed(8))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(_linears(a)[1].weight, _linears(c)[1].weight)


def test_he_init_variance_matches_two_over_fan_in():
    # He init (the default scheme): Var W = 2 / fan_in. 64*256 samples: SE of the sample variance ≈ var*sqrt(2/n).
    net = mlp(256, 10, depth=1, width=64, init="he", generator=torch.Generator().manual_seed(0))
    w = _linears(net)[0].weight.detach()
    n, var = w.numel(), 2.0 / 256
    assert abs(float(w.var()) - var) < 5 * var * math.sqrt(2 / n)


def test_cnn_shapes(generator):
    net = cnn(3, 10, depth=4, channels=8, generator=generator)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and convs[0].in_channels == 3 and all(c.kernel_size == (3, 3) for c in convs)
    assert net(torch.zeros(2, 3, 12, 12)).shape == (2, 10)


@pytest.mark.parametrize("kind,shape", [("mlp", (2, 12)), ("conv", (2, 1, 8, 8))])
def test_resnet_blocks_and_eta(kind, shape, generator):
    from deepstart.nn import ScaledResidual

    net = resnet(shape[1], 4, depth=5, width=6, eta="1/l", kind=kind, generator=generator)
    blocks = [m for m in net if isinstance(m, ScaledResidual)]
    assert len(blocks) == 5
    assert [float(b.eta) for b in blocks] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert net(torch.zeros(*shape)).shape == (2, 4)


def test_resnet_eta_zero_is_plain_stem_and_head(generator):
    # With η = 0 the blocks are identities: output = head(stem(x)).
    net = resnet(7, 3, depth=3, width=5, eta=0.0, generator=generator)
    x = torch.randn(4, 7, generator=generator)
    expected = net[-1](net[-2](net[0](x)))
    assert torch.allclose(net(x), expected)


def test_eta_schedules():
    assert eta_schedule(0.5, 3) == [0.5, 0.5, 0.5]
    assert eta_schedule("1/L", 4) == [0.25] * 4
    assert eta_schedule("geometric(0.5)", 3) == [0.5, 0.25, 0.125]
    assert eta_schedule("1/sqrt(L)", 4) == [0.5] * 4
    assert eta_schedule([1, 2], 2) == [1.0, 2.0]
    with pytest.raises(ValueError, match="valid: a number, 1/l"):
        eta_schedule("1/x", 3)
    with pytest.raises(ValueError, match="one per residual branch"):
        eta_schedule([1.0], 3)


def test_activations():
    assert isinstance(make_activation("relu"), nn.ReLU)
    leaky = make_activation("leaky_relu(negative_slope=0.2)")
    assert leaky.negative_slope == pytest.approx(0.2)
    assert make_activation("leaky_relu(0.3)").negative_slope == pytest.approx(0.3)
    erf = make_activation("erf")
    assert torch.allclose(erf(torch.tensor([0.5])), torch.erf(torch.tensor([0.5])))
    assert isinstance(make_activation(nn.GELU), nn.GELU)
    with pytest.raises(ValueError, match="valid names: relu"):
        make_activation("relu6")
    with pytest.raises(ValueError, match="unknown parameter"):
        make_activation("relu(slope=1)")


def test_bad_arguments():
    with pytest.raises(ValueError, match="exactly one of width"):
        mlp(4, 2, depth=2)
    with pytest.raises(ValueError, match="one width per hidden layer"):
        mlp(4, 2, depth=3, widths=[4, 4])
    with pytest.raises(TypeError, match="depth must be an int"):
        mlp(4, 2, depth=2.5, width=3)
    with pytest.raises(ValueError, match="'mlp' or 'conv'"):
        resnet(4, 2, depth=2, width=3, kind="dense")


def test_conv_mlp_two_stride_two_convs_in_front_of_the_mlp():
    # Gurbuzbalaban & Hu's CIFAR-10 set-up: two conv layers, then the depth-d fully connected stack
    from deepstart.experiments.models import conv_mlp

    g = torch.Generator().manual_seed(0)
    net = conv_mlp((3, 32, 32), 10, depth=4, width=16, generator=g)
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [c.stride for c in convs] == [(2, 2), (2, 2)] and len(linears) == 5
    assert linears[0].in_features == 32 * 8 * 8
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # every layer gets the scheme: He on the conv, fan_in = c_in·k² = 27
    assert float(convs[0].weight.detach().var()) == pytest.approx(2 / 27, rel=5 * (2 / (16 * 27)) ** 0.5)
    with pytest.raises(ValueError, match="channels, height, width"):
        conv_mlp((784,), 10, depth=2, width=8)
