"""Every Pennington et al. claim can fail: its judging function, fed numbers that contradict the paper, says
"does not hold" (and agreeing numbers give "holds"). Pure functions of fabricated numbers."""
from __future__ import annotations

from deepstart.experiments.reproduce import pennington as pn
from deepstart.experiments.reproduce.claims import FAILS, HOLDS, bonferroni_z

V, G = pn.VarStats, pn.Growth  # Growth: label, lo, hi, v_lo, se_lo, t_lo, v_hi, se_hi, t_hi


def test_density_fails_on_the_worst_config_with_per_net_se():
    rows = [V("tanh orth", 8, 0.0270, 0.0004, 0.0270), V("hard-tanh orth", 32, 14.9, 0.2, 14.87)]
    assert pn.judge_density(rows).status == HOLDS
    # the audit's "partial" case: 4.55 vs 4.67 predicted is fine within 20%, but not with an SE of 0.02
    rows.append(V("tanh orth q*=1", 32, 4.55, 0.02, 4.67))
    claim = pn.judge_density(rows)
    assert claim.status == FAILS and claim.value == 4.55


def test_no_isometry_fails_when_a_relu_or_gaussian_config_stays_flat():
    grow = [G("relu orth", 2, 32, 2.0, 0.1, 2.0, 32.5, 1.0, 32.0), G("relu gauss", 2, 32, 4.0, 0.2, 4.0, 63, 2, 64)]
    assert pn.judge_no_isometry(grow).status == HOLDS
    grow.append(G("hard-tanh gauss", 2, 32, 2.9, 0.2, 2.93, 3.0, 0.3, 46.9))  # isometric: no growth
    assert pn.judge_no_isometry(grow).status == FAILS


def test_linear_growth_reports_and_fails_a_config_growing_170_percent_of_the_law():
    grow = [G("relu orth", 2, 32, 2.0, 0.1, 2.0, 32.5, 1.0, 32.0)]
    assert pn.judge_linear_growth(grow).status == HOLDS
    # the audit's hard-tanh Gaussian: 1.70× the linear law
    grow.append(G("hard-tanh gauss", 2, 32, 2.93, 0.2, 2.93, 2.93 + 1.7 * 44.0, 2.0, 46.9))
    claim = pn.judge_linear_growth(grow)
    assert claim.status == FAILS and "hard-tanh gauss" in claim.measurement and "1.70×" in claim.measurement


def test_isometric_fails_when_orthogonal_tanh_is_as_wide_as_gaussian():
    iso = (0.027, 0.001, 0.027)
    assert pn.judge_isometric(32, iso, [("relu orth", (32.0, 1.0, 32.0))]).status == HOLDS
    assert pn.judge_isometric(32, (20.0, 1.0, 0.027), [("relu orth", (32.0, 1.0, 32.0))]).status == FAILS


def test_learning_speed_fails_when_order_is_reversed_or_nothing_reaches_the_target():
    assert pn.judge_learning_speed({"mnist": [0.8, 1.0, 0.8, 1.0, 0.8]}).status == HOLDS
    assert pn.judge_learning_speed({"mnist": [-0.8, -1.0, -0.8, -0.4, -0.8]}).status == FAILS
    assert pn.judge_learning_speed({"mnist": [float("nan")] * 5}).status == FAILS  # undefined ρ counts as 0


def test_bonferroni_threshold_grows_with_the_number_of_configs():
    assert abs(bonferroni_z(1) - 2.5758) < 1e-3
    assert bonferroni_z(9) > bonferroni_z(3) > bonferroni_z(1)
