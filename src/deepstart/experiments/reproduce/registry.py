"""The claim registry: every claim a reproduction can report, with the pure function that judges it.

:func:`claim_registry` lists ``(paper, claim) -> Registered(statement, judge, fingerprint)``. The ``fingerprint``
(12 hex digits of SHA-256) covers the claim's statement and the judge's source code, which holds its criterion (rule,
thresholds, the comparison made); :mod:`deepstart.experiments.reproduce.changelog` records, for every claim, the
fingerprint of its current version, and ``tests/experiments/test_claims_changelog.py`` fails when a statement or a
criterion changes without a changelog entry saying what the old criterion and result were and why it changed.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
from typing import NamedTuple

__all__ = ["Registered", "claim_registry", "JUDGES", "CLAIM_TABLES"]

_PKG = "deepstart.experiments.reproduce."

# paper -> the module attributes holding its (claim, statement) pairs
CLAIM_TABLES = {
    "hanin-rolnick": ("hanin_rolnick.FM1_CLAIMS", "hanin_rolnick.FM2_CLAIMS", "hanin_rolnick.RES_CLAIMS",
                      "hanin_rolnick.CONV_CLAIMS", "hanin_rolnick_training.FM1_TRAIN_CLAIMS",
                      "hanin_rolnick_training.POPULAR_CLAIMS", "hanin_rolnick_training.FM2_TRAIN_CLAIMS",
                      "hanin_rolnick_training.RES_TRAIN_CLAIMS"),
    "sussillo-abbott": ("sussillo_abbott.WALK_CLAIMS", "sussillo_abbott.TANH_CLAIM", "sussillo_abbott.SCAN_CLAIMS",
                        "sussillo_abbott.SCAN_ALT_CLAIMS",
                        "sussillo_abbott.BASELINE_CLAIMS", "sussillo_abbott.TRAIN_CLAIMS"),
    "gurbuzbalaban-hu": ("gurbuzbalaban_hu.LAW_CLAIMS", "gurbuzbalaban_hu.TRAIN_CLAIMS"),
    "pennington": ("pennington.SPEC_CLAIMS", "pennington.TRAIN_CLAIMS"),
}

# (paper, claim) -> "module.function" that judges it; "+"-joined: also the measurement functions whose changes are
# criterion changes (the fingerprint covers all their sources)
JUDGES = {
    ("hanin-rolnick", "FM1: c = 2 preserves the mean length"): "hanin_rolnick.judge_fm1_critical",
    ("hanin-rolnick", "FM1: c ≠ 2 changes the mean length exponentially"): "hanin_rolnick.judge_fm1_off_critical",
    ("hanin-rolnick", "FM1: any symmetric weight law"): "hanin_rolnick.judge_fm1_laws",
    ("hanin-rolnick", "FM2: Var log M ≈ 5β for wide layers"): "hanin_rolnick.judge_five_beta",
    ("hanin-rolnick", "FM2: equal β behave alike (wide layers)"): "hanin_rolnick.judge_equal_beta",
    ("hanin-rolnick", "FM2: exact finite-width law of Var log M"): "hanin_rolnick.judge_exact_law",
    ("hanin-rolnick", "FM2: narrow equal-β profiles differ as the exact law says"): "hanin_rolnick.judge_narrow_pair",
    ("hanin-rolnick", "ResNet: E[M_L] = ∏(1 + η_l²)"): "hanin_rolnick.judge_resnet_length",
    ("hanin-rolnick", "ResNet: no FM2 once FM1 is avoided"): "hanin_rolnick.judge_resnet_fm2",
    ("hanin-rolnick", "FM1 in convolutional nets"): "hanin_rolnick.judge_conv",
    ("hanin-rolnick", "Training: c = 2 starts fastest"): "hanin_rolnick_training.judge_c2_fastest",
    ("hanin-rolnick", "Training: c = 2 trains at every depth"): "hanin_rolnick_training.judge_c2_trains",
    ("hanin-rolnick", "Training: far from c = 2 starts later with depth"): "hanin_rolnick_training.judge_far_slower",
    ("hanin-rolnick", "Many popular initializations fail"): "hanin_rolnick_training.judge_popular_fail",
    ("hanin-rolnick", "Training: larger β starts slower"): "hanin_rolnick_training.judge_beta_slower",
    ("hanin-rolnick", "Training: equal β trains alike"): "hanin_rolnick_training.judge_equal_beta_training",
    ("hanin-rolnick", "ResNets: Σ η_l² < ∞ trains early"): "hanin_rolnick_training.judge_resnet",
    ("sussillo-abbott", "Unbiased walk at the exact gain"): "sussillo_abbott._judge_unbiased",
    ("sussillo-abbott", "Variance linear in depth"): "sussillo_abbott._judge_var_depth",
    ("sussillo-abbott", "Variance inverse in width"): "sussillo_abbott._judge_var_width",
    ("sussillo-abbott", "Tanh: a gain makes the walk unbiased"): "sussillo_abbott._judge_tanh",
    ("sussillo-abbott", "relu: the best-training g is the predicted g"): "sussillo_abbott._judge_near",
    ("sussillo-abbott", "tanh: the best-training g is the predicted g"): "sussillo_abbott._judge_near",
    ("sussillo-abbott", "relu: the scan tells the predicted g from He's √2"): "sussillo_abbott._judge_best_g",
    ("sussillo-abbott", "tanh: the scan tells the predicted g from g = 1"): "sussillo_abbott._judge_best_g",
    ("sussillo-abbott", "Predicted g trains better than the usual gain"): "sussillo_abbott._judge_baseline",
    ("sussillo-abbott", "Deep nets: random-walk gain beats g = 1"): "sussillo_abbott._judge_baseline",
    ("sussillo-abbott", "Deep nets train with the gain"): "sussillo_abbott._judge_deep",
    ("gurbuzbalaban-hu", "log||x_L|| is Gaussian in the limit"): "gurbuzbalaban_hu.judge_gaussian_law",
    ("gurbuzbalaban-hu", "The s-th moment is preserved"): "gurbuzbalaban_hu.judge_moment_preserved",
    ("gurbuzbalaban-hu", "Fractional init improves training (where it differs from He)"):
        "gurbuzbalaban_hu.judge_improves",
    ("gurbuzbalaban-hu", "At width 64 the fractional init is no worse"): "gurbuzbalaban_hu.judge_training",
    ("pennington", "Theory densities match measured spectra"):
        "pennington.judge_density+pennington.ks_distance+pennington.theory_cdf",
    ("pennington", "ReLU and Gaussian weights cannot reach isometry"): "pennington.judge_no_isometry",
    ("pennington", "Orthogonal tanh at small q* is nearly isometric"): "pennington.judge_isometric",
    ("pennington", "Spread grows at the free-probability rate"): "pennington.judge_linear_growth",
    ("pennington", "Orthogonal tanh learns faster than ReLU"): "pennington.judge_speed_ratio",
    ("pennington", "Orthogonal tanh learns orders of magnitude faster"): "pennington.judge_speed_ratio",
    ("pennington", "Learning speed follows the spectrum"): "pennington.judge_learning_speed",
}


class Registered(NamedTuple):
    statement: str
    judge: str        # "module.function" ("+"-joined when measurement functions are part of the criterion)
    fingerprint: str  # SHA-256 (12 hex digits) of the statement and the judge's source


def _resolve(dotted: str):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(_PKG + module), name)


def fingerprint(statement: str, judge_source: str) -> str:
    """12 hex digits of SHA-256 over the statement and the judge's source (line endings normalised)."""
    text = statement + "\n\0\n" + judge_source.replace("\r\n", "\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def claim_registry() -> dict:
    """``{(paper, claim): Registered}`` for every claim of every reproduction. ValueError when a claim has no judge in
    :data:`JUDGES` (register it there) or a judge is listed for a claim no table holds."""
    out = {}
    for paper, tables in CLAIM_TABLES.items():
        for dotted in tables:
            table = _resolve(dotted)
            pairs = (table,) if isinstance(table[0], str) else table
            for claim, statement in pairs:
                key = (paper, claim)
                if key not in JUDGES:
                    raise ValueError(f"claim {claim!r} of {paper} has no judge: add it to registry.JUDGES")
                judge = JUDGES[key]
                source = "\n".join(inspect.getsource(_resolve(part)) for part in judge.split("+"))
                out[key] = Registered(statement, judge, fingerprint(statement, source))
    stray = sorted(set(JUDGES) - set(out))
    if stray:
        raise ValueError(f"registry.JUDGES lists claims no reproduction reports: {stray}")
    return out


def paper_fingerprint(paper: str) -> str:
    """One hash over a paper's claim fingerprints: a report whose stored value differs was made by other criteria."""
    reg = claim_registry()
    text = "\n".join(f"{c}={r.fingerprint}" for (p, c), r in sorted(reg.items()) if p == paper)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
