"""The Gurbuzbalaban & Hu training claim can fail: fed per-seed accuracies where the fractional init is clearly
worse than a baseline, its judge says "does not hold". Pure function of fabricated numbers."""
from __future__ import annotations

from deepstart.experiments.reproduce import gurbuzbalaban_hu as gh
from deepstart.experiments.reproduce.claims import FAILS, HOLDS


def test_training_claim_holds_when_fractional_matches_the_best_baseline():
    settings = {"mnist/relu": {"fractional-moment": [0.90, 0.91, 0.89, 0.90, 0.92],
                               "he": [0.90, 0.90, 0.90, 0.91, 0.91], "glorot": [0.85] * 5}}
    assert gh.judge_training(settings, n_test=2000).status == HOLDS


def test_training_claim_fails_when_fractional_is_clearly_worse_in_one_setting():
    settings = {"mnist/relu": {"fractional-moment": [0.90, 0.91, 0.89, 0.90, 0.92],
                               "he": [0.90, 0.90, 0.90, 0.91, 0.91]},
                "mnist/linear": {"fractional-moment": [0.60, 0.62, 0.61, 0.60, 0.59],
                                 "lecun": [0.85, 0.86, 0.85, 0.84, 0.86]}}
    claim = gh.judge_training(settings, n_test=2000)
    assert claim.status == FAILS and "mnist/linear vs lecun" in claim.measurement


def test_gaussian_law_fails_when_one_s_is_far_from_gaussian():
    ks = [(0.5, 0.51, -0.3, 0.8, -0.3, 0.8), (1.0, 0.64, -0.2, 0.7, -0.2, 0.7)]
    assert gh.judge_gaussian_law(ks).status == HOLDS
    assert gh.judge_gaussian_law(ks + [(0.8, 1e-9, -0.3, 0.8, 0.4, 2.0)]).status == FAILS


def test_moment_fails_when_a_small_s_moment_drifts():
    # s ≤ 1 is judged; s = 2's heavy tail is reported, not judged
    agree = [(0.5, 0.98, 0.01), (1.0, 0.99, 0.025), (2.0, 3.0, 0.1)]
    assert gh.judge_moment_preserved(agree, 40).status == HOLDS
    assert gh.judge_moment_preserved([(0.5, 0.80, 0.01), (1.0, 0.99, 0.025)], 40).status == FAILS
