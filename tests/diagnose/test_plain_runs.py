"""Gradients across plain stages separated by pooling (issue 18): a default-initialized VGG-19 layout at CIFAR size
loses e^-23 of its squared gradient. When the run law was written every stage between two pools was shorter than
``min_links`` links (the first conv of a stage, reading a pooled map, was not read), so no segment law alone judged
it, and the run law (:func:`deepstart.diagnose.laws.segment.run_findings`) sums the per-layer gradient ratios over the
stages; since pooling sites (docs/laws.md) the three 4-conv stages are long enough to be judged alone. He on the same
layout (variance 2/fan_in, χ₁ = 1 per layer) must stay healthy."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import check
from deepstart.diagnose.laws.segment import plain_runs
from deepstart.diagnose.parts import Norm, read_parts

VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def vgg(width: float = 0.25, init: str = "default", norm: bool = False) -> nn.Sequential:
    layers, c = [], 3
    for v in VGG19:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        out = max(4, int(v * width))
        layers += [nn.Conv2d(c, out, 3, padding=1), *([nn.BatchNorm2d(out)] if norm else []), nn.ReLU()]
        c = out
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c, 10))
    if init == "he":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return model


def _check(init, norm=False):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    return check(vgg(init=init, norm=norm), input_shape=(3, 32, 32), n_inits=4, generator=g, jacobian=False)


def _gradient_errors(report):
    return [f for f in report.findings if f.category == "gradients" and f.severity == "error"]


@pytest.mark.slow
def test_default_vgg19_gradients_vanish_across_its_pooled_stages():
    """Each stage's first conv is read from the pooled map it reads (a pooling site; docs/laws.md, "Open: plain
    nets with a pool after every layer"), so the stages have 2, 2, 4, 4, 4 links: the three deep ones are judged
    alone, each losing ≈ e^-7 of its gradient (PyTorch's default init: σ_w² · fan_in = 1/3, ×1/6 per ReLU layer)."""
    report = _check("default")
    runs = plain_runs(read_parts(report))
    assert len(runs) == 1 and len(runs[0]) == 5, runs  # five stages between the pools, one run
    assert [len(seg.links) for seg in runs[0]] == [2, 2, 4, 4, 4]
    errors = _gradient_errors(report)
    assert len(errors) == 3 and all(e.measured < -math.log(10) for e in errors), report.findings
    assert sum(e.measured for e in errors) < -15
    assert report.verdict == "FAILING"


@pytest.mark.slow
def test_he_vgg19_is_healthy_by_the_same_law():
    report = _check("he")
    assert not _gradient_errors(report), report.findings
    assert len(plain_runs(read_parts(report))) == 1


def test_a_norm_ends_a_run():
    """BatchNorm after every convolution resets the length and rescales the backward signal: no two stages are
    joined, and the stock VGG-19-BN layout gets no gradient error from the run law."""
    report = _check("default", norm=True)
    parts = read_parts(report)
    assert sum(isinstance(p, Norm) for p in parts) == 16
    assert plain_runs(parts) == []
    assert not [f for f in report.findings if "plain stages" in f.message], report.findings


@pytest.mark.parametrize("eta, failing", [("1/l", False), ("1/sqrt(L)", False), (0.5, True), (1.0, True)])
def test_eta_scaled_residual_stream_grows_additively_only_with_bounded_sum(eta, failing):
    """Hanin & Rolnick 2018 Thm 2: E[M_L] = M_0 ∏(1 + η_l² g_l), bounded iff Σ η_l² is. η_l = 1/l (Σ = 1.6) and
    1/√L (Σ = 1) are judged by the additive law (the head's ReLU halving the stream once is not a per-layer rate);
    η = 0.5 (Σ = 7.5) and η = 1 (Σ = 30) grow like 1.25^L and 2^L: FM1 exploding."""
    from deepstart.diagnose.zoo import zoo_model

    zm = zoo_model("resnet", depth=30, eta=eta)
    report = check(zm.model, input_shape=(64,), n_inits=4, generator=torch.Generator().manual_seed(0),
                   jacobian=False)
    segments = [p for p in read_parts(report) if type(p).__name__ == "Segment"]
    assert [s.growth for s in segments] == ["multiplicative" if failing else "additive"]
    fm1 = [f for f in report.findings if f.category == "fm1" and f.severity == "error"]
    assert bool(fm1) == failing, report.findings
    if failing:
        assert fm1[0].measured > 0
