"""Parallel branches joined by concatenation (an Inception module, Szegedy et al. 2015; docs/laws.md, the rule made
after the second held-out zoo was scored): each branch is a plain segment from the module's input, the module one
link of the stream, its gradient compared at the module's input and output. Before this rule the sites inside the
branches were read as the main path and a stock Inception net with BN was FAILING 'gradients 23.1'."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from deepstart.diagnose import check


class _Conv(nn.Module):
    def __init__(self, c_in, c_out, k, bn):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out) if bn else nn.Identity()

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class _Module(nn.Module):
    """1×1 | 1×1→3×3 | 1×1→3×3→3×3 | pool→1×1: branches of depth 1, 2, 3 and 2, concatenated along channels."""

    def __init__(self, c, bn, depths=(1, 2, 3)):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[_Conv(c if i == 0 else 8, 8, 1 if i == 0 else 3, bn) for i in range(d)]) for d in depths)
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), _Conv(c, 8, 1, bn))

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches] + [self.pool(x)], 1)


def inception_stack(bn=True, std=0.01, n=4):
    mods = [_Conv(3, 32, 3, bn)] + [_Module(32, bn) for _ in range(n)]
    model = nn.Sequential(*mods, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, std=std) if std else nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def _check(build):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return check(build(), torch.randn(8, 3, 12, 12, generator=g), factory=build, n_inits=3, generator=g,
                 jacobian=False)


def _errors(report):
    return [f for f in report.findings if f.severity == "error"]


def test_each_inception_module_is_one_link_of_the_stream():
    report = _check(lambda: inception_stack(bn=True))
    modules = [p for p in report.parts if p["part"] == "branches"]
    assert [p["site"] for p in modules] == ["1", "2", "3", "4"] and all(p["main"] and p["parallel"] == 4
                                                                       for p in modules), report.parts
    main = [s["name"] for s in report.sites if s["main"]]
    assert not any(".branches." in n or ".pool." in n for n in main), main  # branch sites are off the main path
    assert [p["stream"] for p in modules[1:]] == ["1", "2", "3"]


def test_a_stock_inception_stack_with_batchnorm_is_healthy():
    """BN after every conv (std 0.01: a pre-BN conv output is ~100× short, its gradient ~100× long — no pathology
    of the stream): no error, and every part on the main path assessed."""
    report = _check(lambda: inception_stack(bn=True))
    assert not _errors(report) and report.verdict == "healthy", [str(f) for f in report.findings]


@pytest.mark.parametrize("std", [0.01, 0.03])
def test_an_inception_stack_without_batchnorm_at_a_small_init_is_caught(std):
    """Without BN every conv at std 0.01 (0.03) shrinks the length ~(std²·fan_in)× per layer: the modules' gains
    multiply, and the law of parallel branches reads their sum of logs and the gradient across the modules."""
    report = _check(lambda: inception_stack(bn=False, std=std))
    laws = [f for f in _errors(report) if "parallel branches" in f.source]
    assert {f.category for f in laws} == {"fm1", "gradients"} and all(f.measured < 0 for f in laws), \
        [str(f) for f in report.findings]


def test_a_he_initialized_stack_without_batchnorm_has_no_branch_finding():
    """The same stack without BN at He's std √(2/fan_in) per conv keeps its length: the law finds nothing (it could)."""
    report = _check(lambda: inception_stack(bn=False, std=None))
    assert not [f for f in _errors(report) if "parallel branches" in f.source], [str(f) for f in report.findings]


class _LinearBranches(nn.Module):
    """Branches of depth 1, 2 and 3 and widths 4, 8 and 12 ending in a conv without activation, so each piece of
    the concatenation is a measured site."""

    def __init__(self, c=6):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[nn.Conv2d(c if i == 0 else w, w, 3, padding=1) for i in range(d)])
            for d, w in ((1, 4), (2, 8), (3, 12)))
        for b in self.branches:
            for conv in b:
                nn.init.normal_(conv.weight, std=0.5 if conv is b[-1] else 0.2)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


def test_the_concatenation_is_the_width_weighted_mean_of_its_branches():
    """M(y) = Σ c_i M(f_i(x)) / Σ c_i at every init and input (the law's premise, exact up to float rounding), and
    the module's input is its stream: the branches of different depths are read as one module."""
    def build():
        return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), _LinearBranches(), nn.Flatten(), nn.Linear(24 * 36, 4))

    g = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    report = check(build(), torch.randn(5, 3, 6, 6, generator=g), factory=build, n_inits=2, generator=g,
                   jacobian=False)
    (module,) = [p for p in report.parts if p["part"] == "branches"]
    assert module["stream"] == "0" and module["parallel"] == 3
    col = {s["name"]: j for j, s in enumerate(report.sites)}
    pieces = [(w, col[f"1.branches.{i}.{d - 1}"]) for i, (d, w) in enumerate(((1, 4), (2, 8), (3, 12)))]
    expected = sum(w * report.sq[..., j] for w, j in pieces) / 24
    assert report.sq[..., col[module["site"]]] == pytest.approx(expected, rel=1e-5)
    unweighted = sum(report.sq[..., j] for _, j in pieces) / 3  # the pieces' lengths differ: the widths matter
    assert not report.sq[..., col[module["site"]]] == pytest.approx(unweighted, rel=1e-2)
