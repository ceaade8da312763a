"""``check`` against the labelled calibration zoo: stock models get no error, broken ones get an expected error, and
changing only the numbers of one model flips its verdict."""
from __future__ import annotations

import functools
import math

import pytest
import torch

from deepstart.diagnose import check
from tools.calibration.cases import CASES, _encoder, _FunctionalReluMLP, broken, stock
from deepstart.diagnose.families import branch_gain

N_INITS = 4
SEED = 0  # torch.manual_seed before building and the generator of check: each case's report is deterministic


def _check(build, inputs):
    """``check`` of ``build()`` (built after ``torch.manual_seed(SEED)``) with ``factory=build``, no Jacobian."""
    g = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    try:
        model = build()
    except ModuleNotFoundError as e:
        if e.name != "transformers":
            raise
        pytest.importorskip("transformers")
    return check(model, inputs(g), factory=build, n_inits=N_INITS, generator=g, jacobian=False)


def _errors(report) -> list:
    return [f for f in report.findings if f.severity == "error"]


def _describe(report) -> str:
    return f"seed {SEED}, family {report.family}: " + "; ".join(str(f) for f in report.findings)


@functools.lru_cache(maxsize=None)
def _case_report(name: str):
    case = CASES[name]
    return _check(case.build, case.inputs)


@pytest.mark.parametrize("name", [c.name for c in stock() if not c.slow])
def test_stock_case_has_no_error(name):
    report = _case_report(name)
    assert report.sites, "the zoo case must have measured sites"
    assert not _errors(report), _describe(report)


@pytest.mark.slow
def test_slow_stock_cases_have_no_error():
    """48-layer pre-/post-LN encoders and the CIFAR ResNet-56 (≈ 4 s together on one core)."""
    slow = [c for c in stock() if c.slow]
    assert {c.name for c in slow} == {"pre-ln-48x64", "post-ln-48x64", "resnet56-cifar"}
    for case in slow:
        report = _check(case.build, case.inputs)
        assert not _errors(report), f"{case.name}: {_describe(report)}"


@pytest.mark.parametrize("name", [c.name for c in broken()])
def test_broken_case_gets_an_expected_error(name):
    case = CASES[name]
    report = _case_report(name)
    hits = [f for f in _errors(report) if f.category in case.expect]
    assert hits, f"{name} expects an error in {case.expect}; {_describe(report)}"


def _seq(g):
    return torch.randn(4, 16, 64, generator=g)


def test_branch_output_projections_x10_flip_the_branches_verdict():
    """Same 12-block pre-LN encoder; only out_proj and linear2 weights ×10 (branch variance ×100)."""
    def categories(report):
        return {f.category for f in _errors(report)}

    stock_report = _check(lambda: _encoder(12, True), _seq)
    scaled_report = _check(lambda: _encoder(12, True, branch_scale=10.0), _seq)
    assert stock_report.family == scaled_report.family == "pre-ln"
    assert "branches" not in categories(stock_report), _describe(stock_report)
    assert "branches" in categories(scaled_report), _describe(scaled_report)
    # The first block's attention branch sees the same input in both models (same seeds, same factory seeds), and
    # out_proj ×10 multiplies its output by exactly 10: its branch gain is ×100 up to float32 rounding.
    first = next(s["name"] for s in stock_report.sites if s["kind"] == "block")
    g_stock, g_scaled = branch_gain(stock_report)[first][0], branch_gain(scaled_report)[first][0]
    assert g_scaled - g_stock == pytest.approx(math.log(100.0), abs=1e-4)


def test_functional_relu_mlp_weight_variance_flips_fm1_and_gradients():
    """F.relu MLP (30×256): σ_w² = 2 is He (critical), σ_w² = 0.5 shrinks M and G by 1/4 per layer."""
    def vectors(g):
        return torch.randn(8, 256, generator=g)

    he = _check(lambda: _FunctionalReluMLP(weight_var=2.0), vectors)
    small = _check(lambda: _FunctionalReluMLP(weight_var=0.5), vectors)
    assert he.healthy, _describe(he)
    assert not _errors(he), _describe(he)
    cats = {f.category for f in _errors(small)}
    assert {"fm1", "gradients"} <= cats, _describe(small)
    fm1 = next(f for f in _errors(small) if f.category == "fm1")
    assert fm1.measured < 0  # vanishing, not exploding
