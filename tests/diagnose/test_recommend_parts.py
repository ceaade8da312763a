"""Recommendations follow the law of the part a finding is about (issue 21: no recommendation contradicts a finding's
own remedy): a recurrent layer's vanishing gradient is not answered with He's feed-forward init for ReLU."""
from __future__ import annotations

import pytest
import torch

import part_models as pm
from deepstart.diagnose import check
from deepstart.diagnose.recommend import suggest_width


def _check(build, inputs):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return check(build(), inputs(g), factory=build, n_inits=4, generator=g, jacobian=False)


def test_recurrent_findings_get_no_feed_forward_init():
    report = _check(lambda: pm.StackedRNN(scale=0.5), pm.sequences)
    recurrent = {s["name"] for s in report.sites if s.get("recurrent")}
    errors = [f for f in report.findings if f.severity == "error"]
    assert errors and all(f.layer in recurrent for f in errors), report.findings
    assert "orthogonal" in errors[0].remedy
    assert not [r for r in report.recommend() if r.kind == "init"], report.recommend()


def test_the_same_finding_on_a_feed_forward_layer_still_gets_its_init():
    """The filter is by part: a tanh MLP whose gradients vanish keeps its critical-init recommendation."""
    from deepstart.experiments.models import mlp

    report = check(mlp(16, 4, depth=30, width=32, activation="tanh", init="variance-scaling(scale=0.25)"), input_shape=(16,),
                   n_inits=4, generator=torch.Generator().manual_seed(0), jacobian=False)
    assert any(f.category in ("fm1", "gradients") and f.severity == "error" for f in report.findings), report.findings
    assert [r for r in report.recommend() if r.kind == "init"], report.recommend()


@pytest.mark.parametrize("target", [0.0, -1.0, float("nan")])
def test_suggest_width_refuses_a_target_no_width_reaches(target):
    with pytest.raises(ValueError, match="must be > 0"):
        suggest_width(10, target)


def test_suggest_width_is_the_smallest_width_meeting_the_exact_law():
    from deepstart.theory.finite_width import relu_log_xi_moments

    n = suggest_width(50, 1.0)
    assert 50 * relu_log_xi_moments(n)[1] <= 1.0 < 50 * relu_log_xi_moments(n - 1)[1]
