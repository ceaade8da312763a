"""The sixth held-out zoo's hand-written models (tools/calibration/zoo6*.py) do what their papers say at init, without
``check``: the language models are causal, the init rules hold (NF-ResNet's β, SELU's fixed point, weight
normalization's data-dependent init, scaled weight standardization, ReZero's identity, gMLP's identity gate), and
the hook truth reads the layers of an ``nn.LSTM`` with projections. (Builds, reproducibility and stored labels are
tested for every later zoo in test_calibration_zoo2.py.)"""
from __future__ import annotations

import pytest
import torch

from test_calibration_zoo import _assert_causal, _build

from tools.calibration import truth as hook_truth
from tools.calibration import zoo6_mlp_models as mm
from tools.calibration import zoo6_models as vm
from tools.calibration.zoo6 import CASES6

LMS = sorted(name for name, case in CASES6.items() if case.task == "lm")


@pytest.mark.parametrize("name", LMS)
def test_language_models_are_causal(name):
    """The logits at step t do not change when tokens after t change, and do change when the token at t does."""
    _assert_causal(_build(CASES6[name], 0))


def test_projected_lstm_layers_compose_to_the_stacked_module():
    """The one-layer LSTMs the truth runs (sharing weight_ih/hh/hr of a stacked nn.LSTM with proj_size) chain to the
    stacked module's output, each layer's output of the projected width."""
    rnn = _build(CASES6["lstmp-lm-3x128p64"], 0).rnn
    x = torch.randn(2, 7, rnn.input_size, generator=torch.Generator().manual_seed(1))
    layers, h = hook_truth._single_layers(rnn), x
    for layer in layers:
        h = layer(h)[0]
        assert h.shape[-1] == rnn.proj_size
    assert len(layers) == rnn.num_layers
    torch.testing.assert_close(h, rnn(x)[0], rtol=0, atol=1e-6)


def test_nf_resnet_beta_predicts_the_block_input_variance():
    """Brock et al. 2021a, §4: β_i = √Var(h_i) predicted analytically (1 after the stem, + α² per block, 1 + α² after
    a transition). Measured on 16 N(0, 1) images, each block's input mean square is within 15% of β_i²."""
    model = _build(CASES6["nf-resnet-3x4"], 0)
    h = model[0](torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    ratios = []
    with torch.no_grad():
        for block in (m for m in model if isinstance(m, vm.NFBlock)):
            ratios.append(h.pow(2).mean().item() / block.beta ** 2)
            h = block(h)
    assert len(ratios) == 12 and all(0.85 < r < 1.15 for r in ratios), ratios
    assert [b.beta for b in model if isinstance(b, vm.NFBlock)][:3] == pytest.approx([1.0, 1.04 ** 0.5, 1.08 ** 0.5])


def test_scaled_weight_standardization():
    """Ŵ = gain·(W − mean)/(std·√fan_in): each output channel's weights have mean 0 and squared norm 1 (gain 1; the
    1e-4 eps shrinks it by less than 1e-3 for these weights)."""
    conv = vm.WSConv2d(8, 4, 3)
    torch.nn.init.normal_(conv.weight, 0.3, 2.0, generator=torch.Generator().manual_seed(0))
    x = torch.eye(72).view(72, 8, 3, 3)  # one input per weight: the conv's output is the standardized weight
    with torch.no_grad():
        w = (conv(x).flatten(1) - conv.bias).T
    assert w.mean(1).abs().max() < 1e-6
    assert w.pow(2).sum(1).tolist() == pytest.approx([1.0] * 4, rel=1e-3)


def test_weightnorm_data_init_gives_unit_preactivations():
    """Salimans & Kingma 2016, §3: after the data-dependent init every layer's pre-activations on the init batch have
    mean 0 and std 1 per channel; without it (g = 1) every filter has norm 1."""
    model = mm.weightnorm_cnn()
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for m in model:
            x = m(x)
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                dims = (0, 2, 3) if x.dim() == 4 else (0,)
                assert x.mean(dims).abs().max() < 1e-4 and (x.std(dims) - 1).abs().max() < 1e-4
    plain = mm.weightnorm_cnn(data_init=False)
    for m in plain.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.weight.detach().flatten(1).norm(dim=1).tolist() == pytest.approx([1.0] * m.out_channels, rel=1e-5)


def test_selu_lecun_init_reaches_the_fixed_point():
    """Klambauer et al. 2017, Thm. 1: with LeCun normal weights SELU keeps activations at mean 0, variance 1 through
    16 layers (256 N(0, 1) inputs; both within 0.05); PyTorch's default init (σ_w² = 1/3) lets the variance
    collapse below 0.05."""
    x = torch.randn(256, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lecun = _build(CASES6["selu-mlp-16x256"], 0)[:-1](x)
        default = _build(CASES6["selu-mlp-16x256-default"], 0)[:-1](x)
    assert abs(lecun.mean().item()) < 0.05 and abs(lecun.var().item() - 1) < 0.05
    assert default.var().item() < 0.05


def test_rezero_is_the_identity_and_the_gmlp_gate_passes_u_at_init():
    """ReZero (α = 0): every layer returns its input exactly. gMLP's spatial gating unit (W ~ N(0, 1e-12), b = 1)
    returns the first half u of its input to within 1e-4 relative."""
    rezero = _build(CASES6["rezero-lm-6x64"], 0)
    x = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(rezero.layers(x), x)
        sgu = _build(CASES6["gmlp-6x64"], 0).blocks[0].sgu
        y = torch.randn(2, 64, 256, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(sgu(y), y[..., :128], rtol=1e-4, atol=1e-4)


def test_channel_shuffle_interleaves_the_two_halves():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert vm.channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_tfixup_scales_the_value_output_and_ffn_weights():
    """Huang et al. 2020, §3.4 (decoder, M = 12 layers): v, o and both FFN weights are Xavier × (9M)^-1/4, q and k
    plain Xavier; the unscaled variant's v is Xavier (std √(2/(fan_in + fan_out)), within 5%)."""
    scaled, plain = _build(CASES6["tfixup-lm-12x64"], 0), _build(CASES6["tfixup-lm-12x64-unscaled"], 0)
    xavier, factor = (2 / 128) ** 0.5, (9 * 12) ** -0.25
    layer = scaled.layers[3]
    assert layer.attn.q.weight.std().item() == pytest.approx(xavier, rel=0.05)
    assert layer.attn.v.weight.std().item() == pytest.approx(xavier * factor, rel=0.05)
    assert layer.fc2.weight.std().item() == pytest.approx((2 / 320) ** 0.5 * factor, rel=0.05)
    assert plain.layers[3].attn.v.weight.std().item() == pytest.approx(xavier, rel=0.05)
