"""Hand-written models of the eighth held-out zoo (:mod:`tools.calibration.zoo8`): an S4D language model (diagonal
state-space convolutions), an SRU language model (simple recurrent units with highway connections), Xception
(depthwise-separable residual conv net) and FractalNet (columns joined by their mean), each with its paper's (or
reference code's) init and a knob for the broken variant. Every builder draws from torch's global RNG, so
``torch.manual_seed`` reproduces it.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from tools.calibration.zoo_models import LayerStackLM

VOCAB = 1000


def _scale_weights(model: nn.Module, kinds: tuple, factor: float) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, kinds):
                m.weight.mul_(factor)
    return model


def _norm(c: int, bn: bool) -> nn.Module:
    return nn.BatchNorm2d(c) if bn else nn.Identity()


# ------------------------------------------------------------------------------------------------------ S4D
class S4DKernel(nn.Module):
    """Diagonal SSM convolution kernel (Gu et al. 2022, S4D-Lin): A_n = −½ + iπn, B = 1, C ~ CN(0, 1), log Δ ~
    U(log 10⁻³, log 10⁻¹); zero-order hold, K_l = 2·Re Σ_n C_n (e^{ΔA_n} − 1)/A_n · e^{lΔA_n} (the reference
    ``s4d.py``; conjugate pairs folded into the factor 2)."""

    def __init__(self, d: int, n: int = 32):
        super().__init__()
        self.log_dt = nn.Parameter(torch.rand(d) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        self.c = nn.Parameter(torch.view_as_real(torch.randn(d, n // 2, dtype=torch.cfloat)))
        self.log_a_real = nn.Parameter(torch.log(0.5 * torch.ones(d, n // 2)))
        self.register_buffer("a_imag", math.pi * torch.arange(n // 2).float().expand(d, -1).clone())

    def forward(self, length: int) -> torch.Tensor:
        dt = torch.exp(self.log_dt)[:, None]
        a = -torch.exp(self.log_a_real) + 1j * self.a_imag
        dta = a * dt
        c = torch.view_as_complex(self.c) * (torch.exp(dta) - 1.0) / a
        k = torch.exp(dta.unsqueeze(-1) * torch.arange(length, device=a.device))  # [d, n/2, L]
        return 2 * torch.einsum("dn,dnl->dl", c, k).real


class S4DLayer(nn.Module):
    """The reference S4D block (post-norm): y = SSM(x) + D ⊙ x, GELU, a 1×1 conv to 2d and GLU, added to x, then
    LayerNorm; the convolution causal via an FFT of twice the length. [B, T, d] → [B, T, d]."""

    def __init__(self, d: int, norm: bool):
        super().__init__()
        self.kernel, self.skip = S4DKernel(d), nn.Parameter(torch.randn(d))
        self.out = nn.Conv1d(d, 2 * d, 1)
        self.norm = nn.LayerNorm(d) if norm else nn.Identity()

    def forward(self, x):
        u, length = x.transpose(1, 2), x.shape[1]
        k = self.kernel(length)
        y = torch.fft.irfft(torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(k, n=2 * length), n=2 * length)
        y = F.gelu(y[..., :length] + u * self.skip[:, None])
        return self.norm(x + F.glu(self.out(y), dim=1).transpose(1, 2))


def s4d_lm(norm: bool = True, out_scale: float = 1.0, d: int = 64, layers: int = 4) -> nn.Module:
    """S4D LM: embedding N(0, 1), ``layers`` S4D blocks (PyTorch's default init of the 1×1 convs, D ~ N(0, 1)), a
    linear head. ``norm=False``: the post-norms removed; ``out_scale`` multiplies every 1×1 conv weight."""
    return _scale_weights(LayerStackLM(d, lambda: S4DLayer(d, norm), layers, VOCAB), (nn.Conv1d,), out_scale)


# ------------------------------------------------------------------------------------------------------ SRU
class SRULayer(nn.Module):
    """SRU (Lei et al. 2018, Eqs. 3-7): x̃ = W x, f_t = σ(W_f x_t + v_f ⊙ c_{t−1} + b_f), c_t = f ⊙ c_{t−1} +
    (1 − f) ⊙ x̃_t, r_t = σ(W_r x_t + v_r ⊙ c_{t−1} + b_r), h_t = r ⊙ c_t + (1 − r) ⊙ x_t (highway); weights with zero
    mean and variance 1/d (§3.4), v and b zero. [B, T, d] → [B, T, d]."""

    def __init__(self, d: int, weight_std: float | None):
        super().__init__()
        self.w = nn.Linear(d, 3 * d, bias=False)
        self.v, self.b = nn.Parameter(torch.zeros(2, d)), nn.Parameter(torch.zeros(2, d))
        bound = math.sqrt(3.0 / d)
        with torch.no_grad():
            if weight_std is None:
                self.w.weight.uniform_(-bound, bound)
            else:
                self.w.weight.normal_(0.0, weight_std)

    def forward(self, x):
        xt, fx, rx = self.w(x).chunk(3, dim=-1)
        c, out = x.new_zeros(x.shape[0], x.shape[2]), []
        for t in range(x.shape[1]):
            f = torch.sigmoid(fx[:, t] + self.v[0] * c + self.b[0])
            r = torch.sigmoid(rx[:, t] + self.v[1] * c + self.b[1])
            c = f * c + (1 - f) * xt[:, t]
            out.append(r * c + (1 - r) * x[:, t])
        return torch.stack(out, 1)


def sru_lm(weight_std: float | None = None, d: int = 128, layers: int = 4) -> nn.Module:
    """Stacked SRU LM: embedding N(0, 1), ``layers`` SRU layers (the paper's init, or every W ~ N(0,
    ``weight_std``²)), a linear head."""
    return LayerStackLM(d, lambda: SRULayer(d, weight_std), layers, VOCAB)


# -------------------------------------------------------------------------------------------------- Xception
class SeparableConv(nn.Sequential):
    """Depthwise 3×3 then pointwise 1×1, no bias (Chollet 2017, §3)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False), nn.Conv2d(c_in, c_out, 1, bias=False))


class XceptionBlock(nn.Module):
    """Xception block (Fig. 5): ``reps`` × [ReLU → separable conv → BN]; an entry block (``down``) omits the first
    ReLU when ``first``, ends with a 3×3 max-pool of stride 2 and adds a strided 1×1 conv + BN shortcut; a middle
    block adds the identity."""

    def __init__(self, c_in: int, c_out: int, reps: int, down: bool, bn: bool, first: bool = False):
        super().__init__()
        layers, c = [], c_in
        for i in range(reps):
            layers += [*(() if first and i == 0 else (nn.ReLU(),)), SeparableConv(c, c_out), _norm(c_out, bn)]
            c = c_out
        if down:
            layers.append(nn.MaxPool2d(3, 2, 1))
        self.branch = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, 2, bias=False), _norm(c_out, bn)) if down else None

    def forward(self, x):
        return self.branch(x) + (x if self.shortcut is None else self.shortcut(x))


def xception(bn: bool = True, weight_scale: float = 1.0, width: int = 32, middle: int = 4) -> nn.Module:
    """A CIFAR Xception: stem 3×3 conv + BN + ReLU, entry flow 2 down blocks (width, 2·width), middle flow
    ``middle`` identity blocks of 3 separable convs, exit flow separable conv + BN + ReLU, global pool, linear;
    convs kaiming_normal_ fan_out (timm's ``xception``), BN weight 1. ``bn=False``: every BN an identity;
    ``weight_scale`` multiplies every conv weight."""
    w2 = 2 * width
    model = nn.Sequential(
        nn.Conv2d(3, width, 3, 1, 1, bias=False), _norm(width, bn), nn.ReLU(),
        XceptionBlock(width, width, 2, True, bn, first=True), XceptionBlock(width, w2, 2, True, bn),
        *(XceptionBlock(w2, w2, 3, False, bn) for _ in range(middle)),
        SeparableConv(w2, 2 * w2), _norm(2 * w2, bn), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2 * w2, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return _scale_weights(model, (nn.Conv2d,), weight_scale)


# ------------------------------------------------------------------------------------------------- FractalNet
class Fractal(nn.Module):
    """Fractal block (Larsson et al. 2017, Eq. 1): f_1(z) = conv(z), f_{C+1}(z) = join(f_C ∘ f_C(z), conv(z)),
    join the elementwise mean; each conv unit 3×3 conv → BN → ReLU. No drop-path at init (eval of the join is the
    mean of all columns)."""

    def __init__(self, c_in: int, c_out: int, columns: int, bn: bool):
        super().__init__()
        self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), _norm(c_out, bn), nn.ReLU())
        self.deep = (nn.Sequential(Fractal(c_in, c_out, columns - 1, bn), Fractal(c_out, c_out, columns - 1, bn))
                     if columns > 1 else None)

    def forward(self, z):
        return self.short(z) if self.deep is None else (self.deep(z) + self.short(z)) / 2


class FractalBlock(Fractal):
    """A top-level fractal block (the unit between pools; its columns are plain :class:`Fractal` modules)."""


def fractalnet(bn: bool = True, weight_scale: float = 1.0, columns: int = 3, widths=(16, 32, 64)) -> nn.Module:
    """FractalNet for CIFAR: ``len(widths)`` fractal blocks of ``columns`` columns, each followed by a 2×2 max-pool,
    global pool, linear; convs Xavier-uniform (the paper's Caffe init), biases 0. ``bn=False``: every BN an
    identity; ``weight_scale`` multiplies every conv weight."""
    layers, c = [], 3
    for w in widths:
        layers += [FractalBlock(c, w, columns, bn), nn.MaxPool2d(2)]
        c = w
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return _scale_weights(model, (nn.Conv2d,), weight_scale)


__all__ = ["s4d_lm", "S4DLayer", "sru_lm", "SRULayer", "xception", "XceptionBlock", "fractalnet", "Fractal",
           "FractalBlock"]
