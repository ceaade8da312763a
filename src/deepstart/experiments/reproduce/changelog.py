"""The criteria changelog of the reproductions: every claim whose statement, criterion or method changed since it was
first run, with the old and the new criterion, the old result and why it changed.

Reconstructed on 2026-12-07 from ``git log -p`` of ``src/deepstart/experiments/reproduce`` and of the committed
gallery ``docs/reproductions/*.json`` (the "old result" is what the gallery said at that commit), then kept by hand.
Each claim's last entry carries the :func:`~deepstart.experiments.reproduce.registry.claim_registry` fingerprint of
its statement and judge; ``tests/experiments/test_claims_changelog.py`` fails when a claim's current fingerprint is
not its last entry's, so a criterion cannot change again without an entry here. :func:`changelog_markdown` renders
it as ``docs/reproductions/changelog.md`` (the gallery links it; a test keeps the committed file equal to it).

To record a change: add an entry (old and new criterion, the result under the old criterion, why) whose
``fingerprint`` is the value ``python -m deepstart.experiments.reproduce.changelog`` prints for that claim, then
``python -m deepstart.experiments.reproduce.changelog --write docs/reproductions/changelog.md``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

__all__ = ["Change", "CHANGES", "changelog_markdown", "unrecorded", "FIRST_GALLERY", "FLIPPED"]

FIRST_GALLERY = "89006bc (2026-12-01)"  # the first committed gallery whose claims are compared below
# claims that went from "does not hold"/"partially" to "holds" by a rewritten claim or method (the audit's three)
FLIPPED = (("sussillo-abbott", "Tanh: a gain makes the walk unbiased"),
           ("sussillo-abbott", "Deep nets train with the gain"),
           ("pennington", "Theory densities match measured spectra"))
TODAY = "2026-12-07 (issue 19)"


@dataclass(frozen=True)
class Change:
    """One recorded change of a claim (``claim``: its name after the change; ``old_claim`` its name before)."""

    paper: str
    claim: str
    date: str
    change: str            # "first run", "criterion", "statement", "method", "new", "renamed", "split"
    new_criterion: str
    old_criterion: str = ""
    old_result: str = ""
    why: str = ""
    old_claim: str = ""
    fingerprint: str = ""  # the registry fingerprint of the claim after this change ("" for superseded entries)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


HR, SA, GH, PS = "hanin-rolnick", "sussillo-abbott", "gurbuzbalaban-hu", "pennington"
C = Change
CHANGES = (
    # ---------------- Hanin & Rolnick ----------------
    C(HR, "FM1: c = 2 preserves the mean length", "2026-12-01", "first run",
      "zscore |E[M_d]/M_0 − 1| ≤ 4 SE at the worst depth (unchanged since the first run)",
      fingerprint="3173d2c98cca"),
    C(HR, "FM1: c ≠ 2 changes the mean length exponentially", "2026-12-01", "first run",
      "zscore of E[M_d]/M_0 against (c/2)^d ≤ 4 SE at each c's worst depth (unchanged since the first run)",
      fingerprint="84a41ed9f579"),
    C(HR, "FM2: Var log M ≈ 5β for wide layers", "2026-12-05", "split", old_claim="FM2: Var log M is set by β",
      old_criterion="relative: worst profile's |Var log M / exact law − 1| ≤ 0.15 (partially ≤ 0.30)",
      old_result="holds: worst profile 10x10 Var log M = 9.112 ± 0.327 vs 8.667",
      new_criterion="the paper's 5β law judged only where it applies (every width ≥ 60): worst |z| against 5β ≤ the "
                    "Bonferroni z (α = 0.01), partially ≤ 2×; the finite-width law became its own claim",
      why="the relative 15% band judged the exact finite-width law, not the paper's 5β, and at narrow widths could not "
          "tell β from the per-layer corrections; the split claims judge each with its SE",
      fingerprint="f73b7017e1dc"),
    C(HR, "FM2: equal β behave alike (wide layers)", "2026-12-05", "criterion",
      old_claim="FM2: equal β behave alike",
      old_criterion="zscore |Var(alt 10,40) − Var(alt 40,10)| ≤ 4 SE (narrow widths)",
      old_result="holds: 5.231 ± 0.244 vs 4.944 ± 0.235 (β = 0.625)",
      new_criterion="two wide profiles (every width ≥ 60) of equal β: difference within the Bonferroni z (α = 0.01), "
                    "partially 2×",
      why="at narrow widths equal-β profiles differ by the exact law (see the narrow-pair claim); the paper's "
          "statement is the wide-layer one",
      fingerprint="62f348c3cba5"),
    C(HR, "FM2: exact finite-width law of Var log M", "2026-12-05", "new",
      "[derived] worst |z| of Var log M_d against the exact law ≤ Bonferroni z over all profiles",
      fingerprint="6fd5f8572f91"),
    C(HR, "FM2: narrow equal-β profiles differ as the exact law says", "2026-12-05", "new",
      "[derived] measured difference of two narrow equal-β profiles against the exact law's difference, |z| ≤ "
      "Bonferroni z, partially ≤ 2×"),
    C(HR, "FM2: narrow equal-β profiles differ as the exact law says", TODAY, "criterion",
      old_criterion="|z| ≤ 2.58 holds, ≤ 5.15 partially",
      old_result="holds: difference −0.789 ± 0.162 vs exact −0.828",
      new_criterion="|z| ≤ 2.58 holds, no partial band",
      why="power at the gallery's noise: \"β alone decides\" (difference 0 against the exact −0.83 at SE 0.16, "
          "z = 5.1) was only 'partially'", fingerprint="3fc51a265752"),
    C(HR, "ResNet: E[M_L] = ∏(1 + η_l²)", "2026-12-01", "first run",
      "zscore ≤ 4 SE at the worst (schedule, depth)"),
    C(HR, "ResNet: E[M_L] = ∏(1 + η_l²)", TODAY, "criterion",
      old_criterion="zscore |E[M_L] − ∏(1 + η²)| ≤ 4 SE at the worst (schedule, depth)",
      old_result="holds: η = 1, L = 40: 1.51e12 ± 2.8e11 vs 1.10e12",
      new_criterion="the same on a log scale: |ln(E[M_L]/∏(1 + η²))| ≤ 4 relative SEs (SE/mean), worst cell chosen "
                    "on that scale",
      why="power at the gallery's noise: at a 19% relative SE an η = 1 net that did not explode at all (E[M_L] = 1) "
          "was within 4 SE of 1.1e12 on a linear scale; the claim is exponential growth or not",
      fingerprint="6f7f09147674"),
    C(HR, "Training: c = 2 starts fastest", "2026-12-05", "criterion",
      old_criterion="at_least: c = 2 no later than the other init in ≥ 80% of (init, depth) pairs (partially ≥ 50%)",
      old_result="holds: 13/16 pairs (0.8125)",
      new_criterion="non-inferiority: no other init faster than c = 2 by more than the Bonferroni z (worst paired z ≥ "
                    "−3.34 over 12 comparisons)",
      why="a count of pairs has no SE; replaced by paired differences over seeds"),
    C(HR, "Training: c = 2 starts fastest", TODAY, "criterion",
      old_criterion="non-inferiority: worst paired z of epochs(other) − epochs(c = 2) ≥ −3.34",
      old_result="holds: worst c = 3 at depth 10, −0.25 ± 0.20 epochs (c = 3 faster on average; c = 1 at depth 5 "
                 "−0.45 ± 0.53)",
      new_criterion="superiority as the paper says it (c = 2 is fastest): every other init slower than c = 2 at "
                    "every depth, worst paired z ≥ +Bonferroni z (3.34 at 12 comparisons), partially ≥ 1",
      why="issue 19: \"starts fastest\" was judged as \"not significantly slower\", which cannot fail when c = 2 is "
          "not fastest by mean (as at depths 5 and 10)",
      fingerprint="e3bcf407d3c6"),
    C(HR, "Training: c = 2 trains at every depth", "2026-12-05", "new",
      "at_least: all c = 2 runs reach 20% within the budget (partially ≥ 80%)", fingerprint="023e1bbfe8e9"),
    C(HR, "Training: far from c = 2 starts later with depth", "2026-12-05", "split",
      old_claim="Training: c = 2 starts fastest",
      old_criterion="(part of the 13/16 pair count above)", old_result="holds (as part of the pair count)",
      new_criterion="at the deepest depth every other init slower than c = 2: worst paired z ≥ Bonferroni z, "
                    "partially ≥ 1", why="the paper's second statement, judged on its own",
      fingerprint="91f66d7ebea2"),
    C(HR, "Training: larger β starts slower", "2026-12-05", "criterion",
      old_criterion="at_least: Spearman ρ(β, epochs to 20%) over constant widths 5–40 ≥ 0.5",
      old_result="holds: ρ = 0.95 (β = 2.00: 2.12 epochs … β = 0.25: 0.21)",
      new_criterion="paired over seeds, epochs(width 5) − epochs(width 40) at depth 10 ≥ 2.58 SE",
      why="a rank correlation over four means has no SE"),
    C(HR, "Training: larger β starts slower", TODAY, "method",
      old_criterion="paired epochs(β = 2, width 5) − epochs(β = 0.25, width 40) at depth 10, z ≥ 2.58",
      old_result="holds: +1.95 ± 0.29 epochs",
      new_criterion="the same one-sided z ≥ 2.58 at a fixed width 20 (β = depth/20 from depth 5 to depth 40)",
      why="issue 19: width 5 against width 40 is a bottleneck confound (5 units lose information whatever β); at a "
          "fixed width β moves without a bottleneck",
      fingerprint="22dc072130eb"),
    C(HR, "ResNets: Σ η_l² < ∞ trains early", "2026-12-05", "criterion",
      old_criterion="at_least: smallest margin of final accuracy over η = 1 ≥ 0 (partially ≥ −0.02)",
      old_result="holds: margin +0.002 with geometric(0.9) at chance (0.100)",
      new_criterion="every schedule beats chance and η = 1 paired over seeds, worst z ≥ Bonferroni z",
      why="a margin of 0.002 at chance held; the criterion had no SE", fingerprint="86a5e2b77ea5"),
    C(HR, "FM1: any symmetric weight law", TODAY, "new",
      "worst |z| of E[M_d]/M_0 − 1 at c = 2 over uniform and truncated-normal weights and depths ≤ Bonferroni z",
      why="issue 19: a headline result of the paper (FM1 depends only on the variance) was not tested",
      fingerprint="e02d49ea3c27"),
    C(HR, "FM1 in convolutional nets", TODAY, "new",
      "worst |z| of E[M_d]/M_0 against (c/2)^d in ReLU conv nets (c = 1.5, 2, 2.5) ≤ Bonferroni z",
      why="issue 19: missing headline result", fingerprint="de4d35f96eb7"),
    C(HR, "ResNet: no FM2 once FM1 is avoided", TODAY, "new",
      "Var log M_L of η = 1/l and geometric(0.9) below 1/5 of a plain net's 5L/n, one-sided z ≥ Bonferroni z",
      why="issue 19: missing headline result", fingerprint="484f4449dbe4"),
    C(HR, "Many popular initializations fail", TODAY, "new",
      "LeCun (c = 1), Glorot and the PyTorch default each slower than c = 2 at the deepest depth, worst paired z ≥ "
      "Bonferroni z", why="issue 19: the paper's headline claim was not judged as a claim",
      fingerprint="f2fb4ed279fe"),
    C(HR, "Training: equal β trains alike", TODAY, "new",
      "depth d, width n against depth 2d, width 2n (equal β): |paired z| ≤ 2.58, no partial band",
      why="issue 19: equal-β training was missing (trials have one width per net, so equal β is reached by scaling "
          "depth and width together)", fingerprint="1abb5a2152a1"),
    # ---------------- Sussillo & Abbott ----------------
    C(SA, "Unbiased walk at the exact gain", "2026-12-05", "statement",
      old_criterion="zscore ≤ 4 SE", new_criterion="zscore ≤ 4 SE (unchanged); the statement now cites eq. 8-11",
      old_result="holds: linear 0.008 ± 0.046, relu 0.065 ± 0.072", why="quote the paper's section and equations",
      fingerprint="4d3972af7d6d"),
    C(SA, "Variance linear in depth", "2026-12-05", "criterion",
      old_criterion="relative: |Var/(D·Var ln z) − 1| ≤ 2√2/√n_nets·… (≈ 0.28), partially ≤ 0.57",
      old_result="holds: relu N = 50: 3.866 vs 4.327 (relative error 0.106)",
      new_criterion="zscore: worst |Var − D·Var(ln z)| ≤ 4 SE (SE of a sample variance) over 12 cells",
      why="the relative band was set from a rough SE; the z rule uses the measured SE", fingerprint="beba9c1e99e6"),
    C(SA, "Variance inverse in width", "2026-12-05", "criterion",
      old_criterion="relative: |ratio/theory − 1| ≤ 0.2, partially ≤ 0.4",
      old_result="holds: ReLU Var(N = 25)/Var(N = 100) = 4.794 vs 4.559",
      new_criterion="zscore: worst |ratio − theory| ≤ 4 SE over activations, partially ≤ 8",
      why="the relative band had no SE"),
    C(SA, "Variance inverse in width", TODAY, "criterion",
      old_criterion="zscore ≤ 4 SE holds, ≤ 8 partially",
      old_result="holds: relu 5.211 ± 0.510 vs 4.559 (z = 1.28)",
      new_criterion="zscore ≤ 4 SE holds, no partial band",
      why="power at the gallery's noise: no width dependence at all (ratio 1 against 4.56 at SE 0.51, z = 7) was "
          "only 'partially'", fingerprint="e4e5583f297a"),
    C(SA, "Tanh: a gain makes the walk unbiased", "2026-12-01", "method",
      old_claim="Tanh: the simulated gain is unbiased",
      old_criterion="zscore: drift over all 40 layers at the stationary gain g = 1.1035 (N = 100) within 4 SE of 0",
      old_result="does not hold: drift −1.978 ± 0.062 (z = 32)",
      new_criterion="zscore: drift over the top 20 layers only (where the forward q has settled at q*(g)) within 4 SE",
      why="the stationary gain assumes q = q*(g), false in the first layers (transient from q⁰ = 1). NOTE: this moved "
          "the claim from 'does not hold' to 'holds' by changing the layers judged, after seeing the failure"),
    C(SA, "Tanh: a gain makes the walk unbiased", "2026-12-05", "method",
      old_claim="Tanh: the numerical gain is unbiased",
      old_criterion="zscore: drift over the top half of the net at the stationary gain within 4 SE of 0",
      old_result="holds: top 20 layers 0.033 ± 0.042 (all 40 layers −1.978 ± 0.062)",
      new_criterion="zscore: drift over all D layers from x_0 ~ N(0, I) at the finite-depth gain "
                    "(random_walk_gain_at_depth) within 4 SE of 0; the stationary gain reported, not judged",
      why="judge the whole walk the paper simulates, with the gain defined for that walk. The stationary gain still "
          "fails over all layers (−2.039 ± 0.100 at D = 100): the paper's own procedure finds the finite-depth gain",
      fingerprint="26f50a38b2e4"),
    C(SA, "Deep nets train with the gain", "2026-12-05", "criterion",
      old_criterion="at_least: final test accuracy of random-walk init minus the best of He/LeCun ≥ −0.02 (ReLU, "
                    "partially ≥ −0.10)",
      old_result="does not hold: ReLU random walk 0.382, He 0.507, LeCun 0.117 (mean final test accuracy)",
      new_criterion="at_least: tanh, depth 30 at a fixed parameter budget, mean + 2 SE of the final training error ≤ "
                    "0.05, no baseline",
      why="rewritten to the paper's training experiment (fixed budget, tanh the focus, training error). NOTE: this "
          "moved the claim from 'does not hold' to 'holds' and dropped the comparison that had failed; issue 19 "
          "restores the comparison as 'Deep nets: random-walk gain beats g = 1'",
      fingerprint="d11c3e33edfa"),
    C(SA, "relu: the best-training g is the predicted g", "2026-12-05", "new",
      "zscore: |ln(g_best/g_pred)| ≤ 3 SE (bootstrap over seeds), partially ≤ 5"),
    C(SA, "relu: the best-training g is the predicted g", TODAY, "method",
      old_criterion="zscore: |ln(g_best/g_pred)| ≤ 3 SE (inside _judge_g_scan)",
      old_result="holds: best g = 1.4346 ± 1.2% vs predicted 1.4738 (z = 2.24); He's √2 = 1.4142 is closer",
      new_criterion="the same criterion, moved into its own judge (_judge_near); the question it could not answer "
                    "(predicted g or He's?) is the new claim below",
      why="issue 19: the criterion cannot tell the predicted g from He's (3% apart)", fingerprint="ea5a49d9f0f2"),
    C(SA, "tanh: the best-training g is the predicted g", TODAY, "method",
      old_criterion="zscore: |ln(g_best/g_pred)| ≤ 3 SE (inside _judge_g_scan)",
      old_result="holds: best g = 1.3955 vs predicted 1.3966 (z = 0.08)",
      new_criterion="the same criterion in its own judge (_judge_near)", why="as for ReLU",
      fingerprint="3ade5cdf7ccf"),
    C(SA, "relu: the scan tells the predicted g from He's √2", TODAY, "new",
      "best g closer to the predicted g than to He's √2: one-sided z of the distance from the midpoint in ln g ≥ "
      "2.58, partially ≥ 1", why="issue 19: \"the criterion cannot tell the two apart\"",
      fingerprint="025f2bc55406"),
    C(SA, "tanh: the scan tells the predicted g from g = 1", TODAY, "new",
      "best g closer to the predicted g than to g = 1, one-sided z ≥ 2.58", why="as for ReLU",
      fingerprint="ebb4670a2f3a"),
    C(SA, "Predicted g trains better than the usual gain", TODAY, "new",
      "final training loss at the usual gain (He √2 / g = 1) minus at the predicted g, same depth, width, steps "
      "and seeds: worst paired z ≥ Bonferroni z", why="issue 19: the random-walk gain had no baseline",
      fingerprint="161b6bf12f43"),
    C(SA, "Deep nets: random-walk gain beats g = 1", TODAY, "new",
      "final training error at g = 1 (LeCun) minus at the random-walk gain, same depth, budget, steps and seeds: "
      "paired z ≥ Bonferroni z", why="issue 19: restores the comparison the 2026-12-05 rewrite dropped",
      fingerprint="8dd7460c32a7"),
    # ---------------- Gurbuzbalaban & Hu ----------------
    C(GH, "log||x_L|| is Gaussian in the limit", "2026-12-01", "first run",
      "at_least: worst KS p-value ≥ 1e-3 (unchanged since the first run)", fingerprint="e5d0e737ccd6"),
    C(GH, "The s-th moment is preserved", "2026-12-01", "first run",
      "zscore ≤ 4 SE at the worst s ≤ 1 (unchanged since the first run)", fingerprint="38404ef69b36"),
    C(GH, "At width 64 the fractional init is no worse", "2026-12-01", "criterion",
      old_claim="Fractional init trains at least as well",
      old_criterion="(first run: not evaluated, the section crashed on negative error bars)",
      old_result="not evaluated", new_criterion="at_least: within 0.02 of the best baseline in every setting",
      why="first evaluated run"),
    C(GH, "At width 64 the fractional init is no worse", "2026-12-05", "criterion",
      old_claim="Fractional init trains at least as well",
      old_criterion="at_least: within 0.02 of the best baseline by mean in every setting",
      old_result="holds: 6/6 settings",
      new_criterion="non-inferiority without margin: worst paired z of fractional − best baseline ≥ −3.14",
      why="the count had no SE"),
    C(GH, "At width 64 the fractional init is no worse", TODAY, "renamed",
      old_claim="Fractional init trains at least as well",
      old_criterion="non-inferiority without margin: worst paired z ≥ −3.14 (so a 6-point CIFAR-10 deficit at SE "
                    "0.022 would hold)",
      old_result="holds: worst mnist/leaky_relu −0.008 ± 0.005; 4 of 6 settings slightly worse",
      new_criterion="[derived] non-inferiority with a 0.02 margin: (difference + 0.02)/SE ≥ Bonferroni z holds, ≥ 0 "
                    "partially; the statement says it is He against He at width 64 (σ_s² within 2.4% of He's)",
      why="issue 19: the paper claims an improvement, which this setting cannot show; it is kept only as a "
          "non-inferiority check with a margin, and the improvement is judged where the scheme differs",
      fingerprint="ddcbe6b2d48a"),
    C(GH, "Fractional init improves training (where it differs from He)", TODAY, "new",
      "superiority: fractional (s = 0.5) − He final test accuracy, narrow ReLU nets (widths 8 and 16, depth 20), "
      "worst paired z ≥ Bonferroni z", why="issue 19: the paper's claim of improvement was never tested",
      fingerprint="665ef115096c"),
    # ---------------- Pennington, Schoenholz & Ganguli ----------------
    C(PS, "Theory densities match measured spectra", "2026-12-05", "method",
      old_criterion="relative: worst |measured/predicted variance − 1| ≤ 0.2 at width N = 200, partially ≤ 0.5",
      old_result="partially: tanh orth q*=1 L=8 variance 5.63 vs 4.67 (+21%)",
      new_criterion="zscore: variance extrapolated to N → ∞ from N and 2N (Richardson), worst |z| ≤ Bonferroni z",
      why="the law is an N → ∞ statement. NOTE: this moved the claim from 'partially' to 'holds' after seeing the "
          "data, and the extrapolation widened the SEs until 1.5× the theory would pass (tanh orth q*=1 L=32: "
          "24.1 ± 4.6 vs 18.7)"),
    C(PS, "Theory densities match measured spectra", TODAY, "criterion",
      old_criterion="zscore on the N → ∞ extrapolated variance, worst |z| ≤ 3.26",
      old_result="holds: worst z = +1.3 (tanh orth q*=1/64 L=2); tanh orth q*=1 L=32 24.1 ± 4.6 vs 18.7",
      new_criterion="the whole distribution: Kolmogorov–Smirnov distance between the eigenvalues at width 2N and the "
                    "theory's integrated density ≤ 0.03 at every config and depth",
      why="issue 19: the variance of 3 configs is not the density, and its criterion passed 1.5× the theory"),
    C(PS, "Theory densities match measured spectra", TODAY, "method",
      old_criterion="KS distance ≤ 0.03, the eigenvalues taken as computed",
      old_result="does not hold: hard-tanh orth q*=1 KS 0.3173 at every depth (the other configs ≤ 0.032)",
      new_criterion="KS distance ≤ 0.03 (unchanged); eigenvalues within 1e-9·λ_max of an atom of the theory "
                    "counted at it, both CDFs compared at and just below each value",
      why="a measurement bug found in the first run: hard-tanh's atoms (λ = 0, mass 0.317: saturated units; "
          "λ = σ_w^{2L}: all units linear) come out of the eigensolver as ±1e-17 and σ_w^{2L}(1 ± 1e-15), and those "
          "just below an atom missed it, so the KS distance was an atom's mass whatever the density. Changed after "
          "seeing the result; the old result is kept here",
      fingerprint="a251e011c8de"),
    C(PS, "ReLU and Gaussian weights cannot reach isometry", "2026-12-05", "criterion",
      old_criterion="relative: worst |Var(L_max)/Var(L_min) / (L_max/L_min) − 1| ≤ 0.3",
      old_result="holds: ratios 11.2–27.2 for a depth ratio 16",
      new_criterion="every ReLU/Gaussian config's variance grows: worst slope/SE ≥ Bonferroni z",
      why="the statement is growth, not exact proportionality (judged separately below)",
      fingerprint="5c9cab8c0394"),
    C(PS, "Spread grows at the free-probability rate", "2026-12-05", "new",
      "zscore: worst |slope − predicted| ≤ Bonferroni z, partially ≤ 2×"),
    C(PS, "Spread grows at the free-probability rate", TODAY, "criterion",
      old_criterion="zscore ≤ 3.02 SE, partially ≤ 6.05, slopes from 32 nets per depth",
      old_result="holds: relu gauss 3.55 ± 0.73 vs 2 (1.78×, z = 2.1); 2× the rate would also hold",
      new_criterion="zscore ≤ 3.02 SE with no partial band, slopes from n_growth = 128 nets per depth (SE ≈ 1/2 of "
                    "before), so that twice the rate fails",
      why="issue 19: the criterion could not fail at the noise of the runs", fingerprint="c82633769786"),
    C(PS, "Orthogonal tanh at small q* is nearly isometric", "2026-12-05", "criterion",
      old_criterion="at_least: variance ratio ≥ 10 (partially ≥ 2)", old_result="holds: ratio 401",
      new_criterion="log₁₀ ratio − 1 ≥ 2.58 SE", why="the ratio had no SE", fingerprint="5639697787bf"),
    C(PS, "Learning speed follows the spectrum", "2026-12-05", "criterion",
      old_criterion="at_least: Spearman ρ(predicted variance, steps) over the 4 setup means ≥ 0.5",
      old_result="holds: ρ = 0.80 on MNIST and CIFAR-10",
      new_criterion="per-seed ρ, worst dataset's mean ρ/SE ≥ Bonferroni z",
      why="ρ over four means has no SE. The paper's statement (orders of magnitude) is judged today by the two "
          "ratio claims", fingerprint="1e05f6ed7890"),
    C(PS, "Orthogonal tanh learns faster than ReLU", TODAY, "new",
      "steps to 60% MNIST, ReLU He / orthogonal tanh q* = 1/64 per seed: mean log₁₀ ratio/SE ≥ 2.81",
      why="issue 19: learning speed as a ratio of steps with an SE", fingerprint="e87c3ec3fc9d"),
    C(PS, "Orthogonal tanh learns orders of magnitude faster", TODAY, "new",
      "the same ratio ≥ 10: (mean log₁₀ ratio − 1)/SE ≥ 2.81", why="issue 19: the paper says orders of magnitude",
      fingerprint="f8459ee14db8"),
)


def unrecorded(registry=None) -> list[str]:
    """Claims whose current fingerprint is not their last changelog entry's (each with the fingerprint to record)."""
    from deepstart.experiments.reproduce.registry import claim_registry

    registry = claim_registry() if registry is None else registry
    last = {}
    for c in CHANGES:
        last[(c.paper, c.claim)] = c.fingerprint
    return [f"{p}: {claim!r} is {r.fingerprint}, its last changelog entry says {last.get((p, claim)) or 'nothing'}"
            for (p, claim), r in registry.items() if last.get((p, claim)) != r.fingerprint]


def changelog_markdown() -> str:
    """The changelog as Markdown (``docs/reproductions/changelog.md``)."""
    cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ") or "—"  # noqa: E731
    lines = ["# Criteria changelog of the reproductions", "",
             "Every claim whose statement, criterion or method changed since it was first run "
             f"(first committed gallery: {FIRST_GALLERY}), with the old and new criterion, the result under the old "
             "criterion and why it changed; reconstructed from `git log -p` of the reproduction code and the committed "
             "gallery JSON, then kept with every change (a test fails when a claim's statement or judge changes "
             "without an entry here).", "",
             "Three claims went from *does not hold* or *partially* to *holds* by a rewritten claim or method after "
             "their failure was seen: " + "; ".join(f"{p}: {c}" for p, c in FLIPPED) + ". Their entries say so "
             "(NOTE); issue 19 restored or tightened each.", ""]
    for paper in (HR, SA, GH, PS):
        lines += [f"## {paper}", "", "| claim | date | change | old criterion | old result | new criterion | why |",
                  "|---|---|---|---|---|---|---|"]
        for c in CHANGES:
            if c.paper == paper:
                name = c.claim if not c.old_claim or c.old_claim == c.claim else f"{c.claim} (was: {c.old_claim})"
                lines.append(f"| {cell(name)} | {c.date} | {c.change} | {cell(c.old_criterion)} | "
                             f"{cell(c.old_result)} | {cell(c.new_criterion)} | {cell(c.why)} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--write"] and len(argv) == 2:
        from pathlib import Path

        Path(argv[1]).write_text(changelog_markdown(), encoding="utf-8")
        return 0
    missing = unrecorded()
    print("\n".join(missing) if missing else "every claim's fingerprint is recorded")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
