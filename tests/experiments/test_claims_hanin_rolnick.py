"""Every Hanin & Rolnick claim can fail: its judging function, fed numbers that contradict the paper, says
"does not hold" (and numbers that agree give "holds"). Pure functions of fabricated numbers: no simulation."""
from __future__ import annotations

import math

from deepstart.experiments.reproduce import hanin_rolnick as hr
from deepstart.experiments.reproduce import hanin_rolnick_training as tr
from deepstart.experiments.reproduce.claims import FAILS, HOLDS

P = hr.ProfileStats  # name, min_width, beta, var, se, exact


def test_five_beta_law_fails_when_wide_profiles_miss_5beta():
    good = [P("80x10", 80, 0.125, 0.64, 0.02, 0.656), P("alt 60,120", 60, 0.125, 0.63, 0.02, 0.660)]
    assert hr.judge_five_beta(good).status == HOLDS
    bad = [good[0], P("alt 60,120", 60, 0.125, 0.95, 0.02, 0.660)]  # 5β = 0.625: z = 16
    assert hr.judge_five_beta(bad).status == FAILS


def test_equal_beta_fails_when_equal_beta_wide_profiles_differ():
    a = P("80x10", 80, 0.125, 0.65, 0.02, 0.656)
    assert hr.judge_equal_beta(a, P("alt 60,120", 60, 0.125, 0.66, 0.02, 0.660)).status == HOLDS
    # a 30% difference at equal β (the audit's 16x10 vs alt 10,40 case, but wide): β is not what matters
    assert hr.judge_equal_beta(a, P("alt 60,120", 60, 0.125, 0.85, 0.02, 0.660)).status == FAILS


def test_exact_law_fails_when_one_profile_is_off():
    rows = [P("16x10", 16, 0.625, 4.2, 0.1, 4.196), P("alt 10,40", 10, 0.625, 5.0, 0.12, 5.024)]
    assert hr.judge_exact_law(rows).status == HOLDS
    rows[1] = P("alt 10,40", 10, 0.625, 4.2, 0.12, 5.024)  # measured like the constant profile: z = -6.9
    assert hr.judge_exact_law(rows).status == FAILS


def test_narrow_pair_fails_when_equal_beta_profiles_agree_but_exact_law_says_they_differ():
    a, b = P("16x10", 16, 0.625, 4.2, 0.1, 4.196), P("alt 10,40", 10, 0.625, 5.0, 0.1, 5.024)
    assert hr.judge_narrow_pair(a, b).status == HOLDS
    same = P("alt 10,40", 10, 0.625, 4.2, 0.1, 5.024)  # β alone would predict this; the exact law says -0.83
    assert hr.judge_narrow_pair(a, same).status == FAILS


def _eps(c2, others, depths=(5, 10)):
    eps = {("c = 2", d): list(c2) for d in depths}
    for k, v in others.items():
        eps.update({(k, d): list(v) for d in depths})
    return eps


def test_c2_fastest_fails_when_another_init_is_clearly_faster():
    slow = [2.0, 2.1, 1.9, 2.0, 2.05]
    assert tr.judge_c2_fastest(_eps([0.5] * 5, {"c = 1": slow}), (5, 10), 0.25).status == HOLDS
    fast = [0.2, 0.25, 0.2, 0.3, 0.2]
    assert tr.judge_c2_fastest(_eps(slow, {"c = 1": fast}), (5, 10), 0.25).status == FAILS


def test_c2_trains_fails_when_c2_never_reaches_20_percent():
    assert tr.judge_c2_trains(_eps([0.5] * 5, {}), (5, 10), budget=3.0).status == HOLDS
    assert tr.judge_c2_trains(_eps([3.0] * 5, {}), (5, 10), budget=3.0).status == FAILS  # the audit's "at chance"


def test_far_from_2_slower_fails_when_other_inits_are_as_fast():
    assert tr.judge_far_slower(_eps([0.5] * 5, {"c = 1": [3.0] * 5, "c = 3": [2.5, 3, 3, 2.8, 3]}), 10, 0.25).status \
        == HOLDS
    assert tr.judge_far_slower(_eps([0.5] * 5, {"c = 1": [3.0] * 5, "c = 3": [0.5] * 5}), 10, 0.25).status == FAILS


def test_beta_slower_fails_when_narrow_nets_are_not_slower():
    assert tr.judge_beta_slower([3.0] * 5, [0.5, 0.75, 0.5, 0.5, 0.75], (2.0, 0.25), 0.25).status == HOLDS
    assert tr.judge_beta_slower([0.5] * 5, [0.5, 0.75, 0.5, 0.5, 0.75], (2.0, 0.25), 0.25).status == FAILS


def test_resnet_claim_fails_when_a_schedule_sits_at_chance():
    good = {"1.0": [0.10, 0.11, 0.10, 0.09, 0.10], "1/l": [0.30, 0.31, 0.29, 0.30, 0.32],
            "geometric(0.9)": [0.28, 0.27, 0.29, 0.30, 0.28]}
    assert tr.judge_resnet(good, n_test=2000).status == HOLDS
    # the audit's case: geometric(0.9) at chance, +0.002 over η = 1
    bad = dict(good, **{"geometric(0.9)": [0.100, 0.101, 0.100, 0.100, 0.101]})
    claim = tr.judge_resnet(bad, n_test=2000)
    assert claim.status == FAILS and "geometric(0.9)" in claim.measurement
    assert math.isfinite(claim.z)


def test_resnet_init_makes_the_branch_length_preserving():
    """RES_INIT puts variance 1/fan_in on each branch's last layer: E[M_L] = ∏(1 + η_l²) (2^L at η = 1)."""
    import torch

    from deepstart.experiments.models import resnet

    n = 64  # 4096 weights: the sample variance has relative SE √(2/4096) = 2.2%; tolerances ≈ 4.5 SE
    net = resnet(32, 10, depth=3, width=n, eta=1.0, init=tr.RES_INIT, generator=torch.Generator().manual_seed(0))
    block = net[1].branch
    assert abs(float(block[0].weight.detach().var()) * n - 2.0) < 0.2  # He on the first layer
    assert abs(float(block[2].weight.detach().var()) * n - 1.0) < 0.1  # 1/fan_in on the last


def test_fm1_critical_fails_when_c2_halves_the_length():
    # 1000 nets: E[M_20]/M_0 = 0.5 ± 0.05 at c = 2 is 10 SE below the theory's 1
    assert hr.judge_fm1_critical(20, 0.97, 0.05, 1.0, 1000).status == HOLDS
    assert hr.judge_fm1_critical(20, 0.5, 0.05, 1.0, 1000).status == FAILS


def test_fm1_off_critical_fails_when_the_length_does_not_follow_the_power_law():
    # c = 2.5 at d = 20: (c/2)^d = 86.7; a net that stays at length 1 (no exponential change) contradicts it
    agree = [(1.5, 5, 0.24, 0.02, 0.237), (2.5, 20, 90.0, 10.0, 86.7)]
    contradict = [(1.5, 5, 0.24, 0.02, 0.237), (2.5, 20, 1.0, 0.1, 86.7)]
    assert hr.judge_fm1_off_critical(agree).status == HOLDS
    assert hr.judge_fm1_off_critical(contradict).status == FAILS


def test_resnet_length_fails_when_the_length_grows_like_3_to_the_L():
    # the 3^L law of He on the branch's last layer (not ∏(1 + η²) = 2^L at η = 1) must be caught
    L = 10
    assert hr.judge_resnet_length("1.0", L, 2.0 ** L * 1.02, 40.0, 2.0 ** L).status == HOLDS
    assert hr.judge_resnet_length("1.0", L, 3.0 ** L, 3.0 ** L / 20, 2.0 ** L).status == FAILS
