"""Gradients across plain stages separated by pooling (issue 18): a default-initialized VGG-19 layout at CIFAR size
loses e^-23 of its squared gradient, but every stage between two pools is shorter than ``min_links`` links, so no
segment law alone judges it. The run law (:func:`deepstart.diagnose.laws.segment.run_findings`) sums the per-layer
gradient ratios over the stages; He on the same layout (variance 2/fan_in, χ₁ = 1 per layer) must stay healthy."""
from __future__ import annotations

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
    report = _check("default")
    runs = plain_runs(read_parts(report))
    assert len(runs) == 1 and len(runs[0]) == 5, runs  # five stages between the pools, one run
    assert all(len(seg.links) < report.thresholds["min_links"] for seg in runs[0])
    errors = _gradient_errors(report)
    assert len(errors) == 1 and errors[0].measured < -10, report.findings
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
