"""The eighth held-out zoo's hand-written builders (tools/calibration/zoo8_models.py), without ``check``: the LMs are
causal, the S4D convolution kernel is the zero-order-hold recurrence it stands for, FractalNet's block has the
paper's 2^C − 1 conv units and joins by the mean, SRU's init has the paper's variance."""
from __future__ import annotations

import math

import pytest
import torch

from test_calibration_zoo import _assert_causal, _build

from tools.calibration import zoo8_models as zm
from tools.calibration.zoo8 import CASES8


@pytest.mark.parametrize("case", [CASES8["s4d-lm-4x64"], CASES8["sru-lm-4x128"]], ids=lambda c: c.name)
def test_sequence_lms_are_causal(case):
    """Logits at step t do not change when tokens after t change (up to the FFT's rounding), and do change when the
    token at t does."""
    _assert_causal(_build(case, 0), atol=1e-5)


def test_s4d_kernel_is_the_discretized_recurrence():
    """K_l = 2·Re Σ_n C_n·B̄_n·Ā_n^l with Ā = e^{ΔA}, B̄ = (Ā − 1)/A (zero-order hold, Gu et al. 2022 Eq. 4 with
    B = 1): stepping the diagonal state x_k = Ā x_{k−1} + B̄ u_k on an impulse reproduces the kernel."""
    torch.manual_seed(0)
    kernel = zm.S4DKernel(3, n=8).double()
    with torch.no_grad():
        k = kernel(12)
        a = (-torch.exp(kernel.log_a_real) + 1j * kernel.a_imag).to(torch.cdouble)
        dt = torch.exp(kernel.log_dt)[:, None]
        a_bar, c = torch.exp(dt * a), torch.view_as_complex(kernel.c)
        x, steps = (a_bar - 1) / a, []  # the impulse enters at step 0
        for _ in range(12):
            steps.append(2 * (c * x).sum(-1).real)
            x = a_bar * x
    assert torch.allclose(k, torch.stack(steps, -1), atol=1e-12)
    assert (kernel.log_dt.exp() >= 1e-3).all() and (kernel.log_dt.exp() <= 0.1).all()


def test_fractal_block_joins_its_columns_by_the_mean():
    """C columns hold 2^C − 1 conv units; with every conv the identity map (bias 0, no BN, inputs ≥ 0) each column
    returns its input, so their mean does too."""
    block = zm.FractalBlock(4, 4, 3, bn=False)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 ** 3 - 1
    with torch.no_grad():
        for m in convs:
            m.weight.zero_()
            m.weight[:, :, 1, 1] = torch.eye(4)
            m.bias.zero_()
        x = torch.rand(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(block(x), x, atol=1e-6)


def test_sru_weights_have_variance_one_over_d():
    """Lei et al. 2018 §3.4: weights with zero mean and variance 1/d (here U(±√(3/d))), v and b zero."""
    torch.manual_seed(0)
    layer = zm.SRULayer(128, None)
    w = layer.w.weight
    assert w.abs().max() <= math.sqrt(3 / 128)
    assert w.var().item() == pytest.approx(1 / 128, rel=0.05)  # 49152 draws: SE of the variance ≈ 0.6 %
    assert not layer.v.any() and not layer.b.any()
