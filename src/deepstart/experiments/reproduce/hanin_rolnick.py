"""Reproduction of Hanin & Rolnick 2018, "How to Start Training: The Effect of Initialization and Architecture".

Sections (THEORY.md §4): (1) FM1 — mean output length against depth for weight variance c/fan-in, c below/at/above 2
and popular inits, with the theory ``E[M_d]/M_0 = (c/2)^d`` from :func:`deepstart.theory.length_moments`, and epochs
to 20% test accuracy against depth (width = depth); (2) FM2 — ``Var log M_d`` against ``5β`` for width profiles of
equal depth, and training speed against β; (3) ResNets with η_l schedules — output length against ``∏(1 + η_l²)``.
"""
from __future__ import annotations

import numpy as np

from typing import NamedTuple

from deepstart.experiments.reproduce._common import ReportBuilder, check_mode, conv_lengths, dataset_label, \
    legend_outside, mean_se, mlp_lengths, new_axes, resnet_lengths, var_se
from deepstart.experiments.reproduce.claims import Claim, bonferroni_z

PAPER = "hanin-rolnick"
TITLE = "Hanin & Rolnick 2018: How to Start Training (FM1, FM2, ResNets)"
CITATION = "B. Hanin, D. Rolnick. How to Start Training: The Effect of Initialization and Architecture. NeurIPS 2018."

# --full on 2 CPU cores with one worker: an estimate, not a measurement (printed in the gallery header)
FULL_ESTIMATE = "10–20 h (mostly FM1 training at width = depth up to 100)"
SIZES = {
    # tiny: seconds, toy data, 1-3 seeds (structure only; the claims' numbers are not meant to be read at tiny)
    "tiny": dict(depths=[3, 6], n_nets=300, cs=[1.5, 2.0, 2.5], fm2_depth=6, fm2_nets=1000,
                 profiles={"16x6": [16] * 6, "alt 10,40": [10, 40] * 3, "80x6": [80] * 6,
                           "alt 60,120": [60, 120] * 3},
                 res_width=16, res_depths=[2, 4, 8], res_nets=200, dataset="toy", train_depths=[4, 8], runs=2,
                 epochs=3, lr=0.1, limit=1024, test_limit=256, eval_every=4, train_cs=[1.0, 2.0],
                 fm2_width=8, fm2_depths=[2, 8], fm2_equal=[[2, 8], [4, 16]], conv_channels=4, conv_size=6,
                 conv_depths=[2, 4], conv_nets=100, res_dataset="toy", res_train_depth=8,
                 res_train_width=16, res_runs=3, res_limit=1024, res_lr=0.1),
    # quick: FM1 1000 nets per (c, depth); FM2 4000 nets per profile; ResNet lengths 400 nets; training 5 seeds per
    # setting (FM1 training 5 inits × 3 depths × 5 seeds on 10k MNIST images, 2 epochs; ResNet training 4 η × 5 seeds,
    # one epoch on 10k CIFAR-10 images)
    "quick": dict(depths=[5, 10, 20, 30], n_nets=1000, cs=[1.5, 2.0, 2.5], fm2_depth=10, fm2_nets=4000,
                  profiles={"16x10": [16] * 10, "alt 10,40": [10, 40] * 5, "40x10": [40] * 10,
                            "alt 30,60": [30, 60] * 5, "80x10": [80] * 10, "alt 60,120": [60, 120] * 5},
                  res_width=32, res_depths=[5, 10, 20, 40], res_nets=400, dataset="mnist",
                  train_depths=[5, 10, 20], runs=5, epochs=2, lr=0.01, limit=10000, test_limit=2000, eval_every=20,
                  train_cs=[1.0, 2.0, 3.0],
                  fm2_width=20, fm2_depths=[5, 40], fm2_equal=[[10, 20], [20, 40]], conv_channels=16, conv_size=8,
                  conv_depths=[5, 10, 20], conv_nets=300, res_dataset="cifar10", res_train_depth=20,
                  res_train_width=64, res_runs=5, res_limit=10000, res_lr=0.01),
    # full: the paper's sizes (width = depth up to 100, 5 runs, MNIST to 20%); estimated 10-20 h on 2 cores, mostly
    # FM1 training (7 inits × 6 depths × 5 runs × 10 epochs of MNIST)
    "full": dict(depths=[10, 20, 40, 60, 80, 100], n_nets=2000, cs=[1.5, 1.9, 2.0, 2.1, 2.5], fm2_depth=20,
                 fm2_nets=10000, profiles={"20x20": [20] * 20, "alt 12,60": [12, 60] * 10, "40x20": [40] * 20,
                                           "alt 30,60": [30, 60] * 10, "160x20": [160] * 20,
                                           "alt 120,240": [120, 240] * 10,
                                           "ramp 10..100": list(np.linspace(10, 100, 20).astype(int))},
                 res_width=64, res_depths=[10, 20, 50, 100], res_nets=400, dataset="mnist",
                 train_depths=[10, 20, 40, 60, 80, 100], runs=5, epochs=10, lr=0.01, limit=None, test_limit=None,
                 eval_every=100,
                 train_cs=[1.0, 1.5, 2.0, 2.5, 3.0], fm2_width=40, fm2_depths=[10, 80], fm2_equal=[[20, 40], [40, 80]],
                 conv_channels=32, conv_size=16, conv_depths=[10, 20, 50], conv_nets=500,
                 res_dataset="cifar10", res_train_depth=50, res_train_width=128, res_runs=5, res_limit=None,
                 res_lr=0.01),
}
# Popular inits as weight variance c/fan-in on square layers: LeCun c = 1, Glorot c = 2·n/(n+n) = 1, PyTorch's
# default nn.Linear init is U(±1/√fan_in), variance 1/(3·fan_in), c = 1/3 (torch.nn.Linear.reset_parameters).
POPULAR = {"lecun": (1.0, "normal"), "glorot": (1.0, "normal"), "pytorch-default": (1.0 / 3.0, "uniform")}
FM1_CLAIMS = (("FM1: c = 2 preserves the mean length", "E[M_d] = M_0 at every depth when Var W = 2/fan-in."),
              ("FM1: c ≠ 2 changes the mean length exponentially", "E[M_d] = (c/2)^d M_0."),
              ("FM1: any symmetric weight law", "§3, Theorem 5 (FM1) assumes only symmetric weights of variance "
               "2/fan-in: E[M_d] = M_0 also for uniform and truncated-normal weights (judged: worst |z| over laws "
               "and depths against the Bonferroni threshold)."))
CONV_CLAIMS = (("FM1 in convolutional nets", "§3 (the results extend to convolutional nets with fan-in = kernel "
                "size × channels): E[M_d] = (c/2)^d M_0 for a ReLU conv net with weight variance c/fan-in (c = 1.5, "
                "2, 2.5; circular padding, so every unit has the full fan-in)."),)
FM2_CLAIMS = (
    ("FM2: Var log M ≈ 5β for wide layers", "Abstract and FM2 theorem: the variance of the output length is "
     "exponential in β = Σ 1/n_j ('avoided by keeping constant the sum of the reciprocals of layer widths'); for "
     "Gaussian weights E[M_d²]/M_0² = ∏(1 + 5/n_j) ≈ exp(5β), so Var log M_d ≈ 5β when every n_j is large "
     "(THEORY.md §4)."),
    ("FM2: equal β behave alike (wide layers)", "Width profiles of different shapes with the same β have the same "
     "fluctuations, where the 5β approximation holds (every width ≥ WIDE)."),
    ("FM2: exact finite-width law of Var log M", "[derived, THEORY.md §4] Var log M_d = Σ_j Var log ξ_j with "
     "ξ_j = (2/n_j) χ²_{K_j}, K_j ~ Bin(n_j, ½): the paper's β law with its finite-width corrections, for every "
     "profile."),
    ("FM2: narrow equal-β profiles differ as the exact law says", "[derived] At narrow widths β alone does not fix "
     "the fluctuations: profiles of equal β differ in Var log M_d by the exact per-layer law's difference."))
WIDE = 60  # min width of a "wide" profile: exact Var log ξ exceeds 5/n by ≤ 7% (n = 60: 0.0889 vs 0.0833)
ALPHA = 0.01  # family-wise false-alarm rate of every worst-of-m z criterion here (claims.bonferroni_z)
RES_CLAIMS = (("ResNet: E[M_L] = ∏(1 + η_l²)", "Scaled residual nets avoid FM1 iff Σ η_l² < ∞."),
              ("ResNet: no FM2 once FM1 is avoided", "§4, Theorem 2 and abstract: \"for ResNets FM2 never occurs\" "
               "once FM1 is avoided (Σ η_l² < ∞): Var log M_L stays bounded in depth. Judged at the deepest L for "
               "η_l = 1/l and geometric(0.9): Var log M_L is below a fifth of a plain He net's 5L/n at the same depth "
               "and width (one-sided z against the Bonferroni threshold)."))
RES_FM2_FRACTION = 0.2  # "no FM2": Var log M_L below this fraction of the plain net's 5β = 5L/n


def _theory(widths, c: float, n_in: int):
    """``deepstart.theory.length_moments`` for He-type variance c/fan-in on the hidden widths."""
    from deepstart.theory import length_moments

    fans = [n_in, *widths[:-1]]
    return length_moments(list(widths), weight_var=[c / f for f in fans])


def _theory_resnet(width: int, etas):
    """``length_moments`` with ``residual_eta`` (η scales the branch output): E[M_L]/M_0 = ∏(1 + η_l²)."""
    from deepstart.theory import length_moments

    return length_moments([width] * len(etas), residual_eta=list(etas))


def _fm1(b: ReportBuilder, s: dict, generator) -> None:
    fig, (ax,) = new_axes()
    worst = {}
    for c in s["cs"]:
        rows = []
        for d in s["depths"]:
            ratio = mlp_lengths(d, [d] * d, [c / d] * d, s["n_nets"], generator=generator)[:, -1].numpy()
            m, se = mean_se(ratio)
            target = float(_theory([d] * d, c, d).mean_ratio[-1])
            rows.append((d, m, se, target))
        ds, ms, ses, ts = map(np.array, zip(*rows))
        line = ax.errorbar(ds, ms, yerr=2 * ses, fmt="o", label=f"c = {c:g}")
        ax.plot(ds, ts, "-", color=line[0].get_color())
        z = np.abs(ms - ts) / np.maximum(ses, 1e-300)
        worst[c] = rows[int(np.argmax(z))]
    for name, (c, law) in POPULAR.items():
        ratios = [mean_se(mlp_lengths(d, [d] * d, [c / d] * d, s["n_nets"], law=law, generator=generator)[:, -1]
                          .numpy())[0] for d in s["depths"]]
        ax.plot(s["depths"], ratios, "x--", label=f"{name} (c = {c:.3g})")
    laws = []
    for law in ("uniform", "truncated"):
        for d in s["depths"]:
            m, se = mean_se(mlp_lengths(d, [d] * d, [2.0 / d] * d, s["n_nets"], law=law, generator=generator)[:, -1]
                            .numpy())
            laws.append((law, d, m, se))
        ax.errorbar(s["depths"], [r[2] for r in laws[-len(s["depths"]):]], fmt="s", mfc="none", ms=5,
                    label=f"c = 2, {law} weights")
    ax.set(yscale="log", xlabel="depth d (width = depth)", ylabel="E[M_d]/M_0", title="FM1: mean length")
    legend_outside(ax)
    b.figure(fig, "fm1_length", "Mean normalized squared output length against depth (width = depth, ReLU); points "
             "± 2 SE from independent random nets, lines: theory (c/2)^d. Dashed: popular inits; open squares: c = 2 "
             "with uniform and truncated-normal (±2σ) weights.")
    b.claims.append(judge_fm1_critical(*worst[2.0], s["n_nets"]))
    b.claims.append(judge_fm1_off_critical([(c, *worst[c]) for c in s["cs"] if c != 2.0]))
    b.claims.append(judge_fm1_laws(laws))


def judge_fm1_laws(rows, alpha: float = ALPHA) -> Claim:
    """``rows`` = [(law, depth, E[M_d]/M_0, SE)] at c = 2: worst |z| against 1 ≤ the Bonferroni threshold holds (no
    partial band)."""
    zc = bonferroni_z(len(rows), alpha)
    law, d, m, se = max(rows, key=lambda r: abs(r[2] - 1) / r[3])
    return Claim(*FM1_CLAIMS[2], "E[M_d]/M_0 at c = 2: " + "; ".join(f"{r[0]} d={r[1]}: {r[2]:.3f} ± {r[3]:.3f}"
                                                                     for r in rows) +
                 f"; worst {law} at depth {d} (z = {(m - 1) / se:+.2f}); judged: |z| ≤ {zc:.2f}", rule="zscore",
                 value=m, target=1.0, error=se, holds=zc, partial=zc)


def _conv(b: ReportBuilder, s: dict, generator) -> None:
    """FM1 in ReLU conv nets (3×3 kernels, circular padding): E[M_d]/M_0 against (c/2)^d."""
    fig, (ax,) = new_axes()
    rows = []
    for k, c in enumerate(s["cs"]):
        ratio = conv_lengths(s["conv_channels"], s["conv_size"], max(s["conv_depths"]), c, s["conv_nets"],
                             generator=generator).numpy()
        pts = [(d, *mean_se(ratio[:, d]), (c / 2) ** d) for d in s["conv_depths"]]
        rows += [(c, *p) for p in pts]
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[2 * p[2] for p in pts], fmt="o", color=f"C{k}",
                    label=f"c = {c:g}")
        ax.plot([p[0] for p in pts], [p[3] for p in pts], "-", color=f"C{k}", lw=1)
    ax.set(yscale="log", xlabel="conv layers d", ylabel="E[M_d]/M_0",
           title=f"conv nets: {s['conv_channels']} channels, {s['conv_size']}×{s['conv_size']}")
    legend_outside(ax)
    b.figure(fig, "conv_length", "Mean normalized squared output length of ReLU conv nets (3×3 kernels, circular "
             f"padding, weight variance c/(9·channels)); points ± 2 SE over {s['conv_nets']} nets, lines (c/2)^d.")
    b.claims.append(judge_conv(rows))


def judge_conv(rows, alpha: float = ALPHA) -> Claim:
    """``rows`` = [(c, depth, mean, SE, (c/2)^d)]: worst |mean/(c/2)^d − 1|/(SE/(c/2)^d) ≤ Bonferroni z holds."""
    zc = bonferroni_z(len(rows), alpha)
    c, d, m, se, t = max(rows, key=lambda r: abs(r[2] - r[4]) / r[3])
    return Claim(*CONV_CLAIMS[0], "E[M_d]/M_0 vs (c/2)^d: " + "; ".join(
        f"c = {r[0]:g} d={r[1]}: {r[2]:.3g} ± {r[3]:.2g} vs {r[4]:.3g}" for r in rows) +
        f"; worst c = {c:g}, d = {d} (z = {(m - t) / se:+.2f}); judged: |z| ≤ {zc:.2f}", rule="zscore",
        value=m / t, target=1.0, error=se / t, holds=zc, partial=zc)


def judge_fm1_critical(d: int, m: float, se: float, t: float, n_nets: int) -> Claim:
    """E[M_d]/M_0 at c = 2 (its worst depth) against the theory's 1: |z| ≤ 4 (the default zscore rule)."""
    return Claim(*FM1_CLAIMS[0], f"depth {d}: E[M_d]/M_0 = {m:.3f} ± {se:.3f} (theory {t:.3f}); {n_nets} nets",
                 rule="zscore", value=m, target=t, error=se)


def judge_fm1_off_critical(off) -> Claim:
    """``off`` = [(c, d, mean, SE, (c/2)^d)] at each c ≠ 2's worst depth; the worst ratio to theory: |z| ≤ 4."""
    c, d, m, se, t = max(off, key=lambda r: abs(r[2] - r[4]) / r[3])
    return Claim(*FM1_CLAIMS[1], "E[M_d]/M_0 measured vs (c/2)^d at each c's worst depth: " +
                 "; ".join(f"c = {r[0]:g}, d = {r[1]}: {r[2]:.3g} ± {r[3]:.2g} vs {r[4]:.3g}" for r in off) +
                 " (heavy tails: the SE is itself noisy at small sample sizes)", rule="zscore", value=m / t,
                 target=1.0, error=se / t)


class ProfileStats(NamedTuple):
    """Var log M_d over simulated nets of one width profile, its SE and the exact finite-width prediction."""

    name: str
    min_width: int
    beta: float
    var: float
    se: float
    exact: float


def _profile_stats(name: str, widths, n_nets: int, generator) -> tuple[ProfileStats, int]:
    widths = [int(w) for w in widths]
    m = mlp_lengths(widths[0], widths, [2.0 / n for n in [widths[0], *widths[:-1]]], n_nets,
                    generator=generator)[:, -1].numpy()
    logm = np.log(m[m > 0])  # all units of a layer off (probability ~ Σ 2^-n_j): log M = -inf, left out
    var, se = var_se(logm)
    exact = float(_theory(widths, 2.0, widths[0]).log_var[-1])
    return ProfileStats(name, min(widths), float(sum(1.0 / n for n in widths)), var, se, exact), int(np.sum(m <= 0))


def judge_five_beta(wide, alpha: float = ALPHA) -> Claim:
    """FM2's 5β law on the wide profiles: worst |Var log M − 5β|/SE against the Bonferroni threshold."""
    zc = bonferroni_z(len(wide), alpha)
    w = max(wide, key=lambda r: abs(r.var - 5 * r.beta) / r.se)
    return Claim(*FM2_CLAIMS[0], "Var log M_d vs 5β (min width ≥ " + f"{WIDE}): " + "; ".join(
        f"{r.name}: {r.var:.3f} ± {r.se:.3f} vs {5 * r.beta:.3f} (z = {(r.var - 5 * r.beta) / r.se:+.1f}; "
        f"exact {r.exact:.3f})" for r in wide) + f"; judged: worst |z| ≤ {zc:.2f} (Bonferroni, α = {alpha:g}, "
        f"{len(wide)} profiles)", rule="zscore", value=w.var, target=5 * w.beta, error=w.se, holds=zc, partial=2 * zc)


def judge_equal_beta(a: ProfileStats, b: ProfileStats, alpha: float = ALPHA) -> Claim:
    """Two wide profiles of equal β but different shapes: Var log M equal within SE (z of the difference)."""
    zc, d, se = bonferroni_z(1, alpha), a.var - b.var, float(np.hypot(a.se, b.se))
    return Claim(*FM2_CLAIMS[1], f"β = {a.beta:.3f}: {a.name} {a.var:.3f} ± {a.se:.3f}, {b.name} {b.var:.3f} ± "
                 f"{b.se:.3f}; difference {d:+.3f} ± {se:.3f} ({d / b.var:+.1%}; exact law {a.exact - b.exact:+.3f})",
                 rule="zscore", value=d, target=0.0, error=se, holds=zc, partial=2 * zc)


def judge_exact_law(rows, alpha: float = ALPHA) -> Claim:
    """Every profile's Var log M_d against its exact finite-width law: worst |z| against the Bonferroni threshold."""
    zc = bonferroni_z(len(rows), alpha)
    w = max(rows, key=lambda r: abs(r.var - r.exact) / r.se)
    return Claim(*FM2_CLAIMS[2], "; ".join(f"{r.name} (β = {r.beta:.3f}): {r.var:.3f} ± {r.se:.3f} vs {r.exact:.3f}"
                                           f" (z = {(r.var - r.exact) / r.se:+.1f})" for r in rows) +
                 f"; judged: worst |z| ≤ {zc:.2f} (Bonferroni, α = {alpha:g})", rule="zscore", value=w.var,
                 target=w.exact, error=w.se, holds=zc, partial=2 * zc)


def judge_narrow_pair(a: ProfileStats, b: ProfileStats, alpha: float = ALPHA) -> Claim:
    """Two narrow profiles of equal β: their measured difference in Var log M against the exact law's difference."""
    zc, d, se = bonferroni_z(1, alpha), a.var - b.var, float(np.hypot(a.se, b.se))
    return Claim(*FM2_CLAIMS[3], f"β = {a.beta:.3f}: {a.name} {a.var:.3f} ± {a.se:.3f}, {b.name} {b.var:.3f} ± "
                 f"{b.se:.3f} (5β = {5 * a.beta:.3f}); difference {d:+.3f} ± {se:.3f} ({d / b.var:+.0%}) vs exact "
                 f"{a.exact - b.exact:+.3f}; judged: |z| ≤ {zc:.2f}, no partial band", rule="zscore", value=d,
                 target=a.exact - b.exact, error=se, holds=zc, partial=zc)


def _equal_beta_pair(rows, wide: bool):
    pick = [r for r in rows if (r.min_width >= WIDE) == wide]
    pairs = [(a, b) for i, a in enumerate(pick) for b in pick[i + 1:] if abs(a.beta - b.beta) < 1e-9]
    return pairs[0] if pairs else None


def _fm2(b: ReportBuilder, s: dict, generator) -> None:
    rows, dead = [], 0
    for name, widths in s["profiles"].items():
        row, n_dead = _profile_stats(name, widths, s["fm2_nets"], generator)
        rows.append(row)
        dead += n_dead
    fig, (ax,) = new_axes()
    for r in rows:
        ax.errorbar([5 * r.beta], [r.var], yerr=[2 * r.se], fmt="o", label=r.name)
        ax.plot([5 * r.beta], [r.exact], "k_", ms=14)
    xs = np.linspace(0, 5 * max(r.beta for r in rows) * 1.05, 50)
    ax.plot(xs, xs, "k:", lw=1, label="Var log M = 5β")
    ax.set(xlabel="5β = 5 Σ 1/n_j", ylabel="Var log M_d", title=f"FM2: depth {s['fm2_depth']}")
    legend_outside(ax)
    b.figure(fig, "fm2_varlog", f"Var log M_d against 5β for width profiles of equal depth (He init, ReLU, "
             f"{s['fm2_nets']} nets each); bars ± 2 SE, black ticks: exact finite-width law (length_moments), dotted: "
             "the 5β approximation. Equal-β profiles share an x position.")
    if dead:
        b.notes.append(f"FM2: {dead} simulated nets had a layer with all units off (M_d = 0) and were left out")
    wide = [r for r in rows if r.min_width >= WIDE]
    if wide:
        b.claims.append(judge_five_beta(wide))
    pair = _equal_beta_pair(rows, wide=True)
    if pair:
        b.claims.append(judge_equal_beta(*pair))
    b.claims.append(judge_exact_law(rows))
    pair = _equal_beta_pair(rows, wide=False)
    if pair:
        b.claims.append(judge_narrow_pair(*pair))


def _resnet(b: ReportBuilder, s: dict, generator) -> None:
    from deepstart.experiments.models import eta_schedule

    fig, (ax,) = new_axes()
    worst = None
    for sched in (1.0, "1/l", "geometric(0.9)"):
        pts = []
        for L in s["res_depths"]:
            etas = eta_schedule(sched, L)
            m, se = mean_se(resnet_lengths(s["res_width"], etas, s["res_nets"], generator=generator)[:, -1].numpy())
            t = float(_theory_resnet(s["res_width"], etas).mean_ratio[-1])
            pts.append((L, m, se, t))
            if worst is None or abs(np.log(m / t)) * m / se > abs(np.log(worst[2] / worst[4])) * worst[2] / worst[3]:
                worst = (str(sched), L, m, se, t)
        Ls, ms, ses, ts = map(np.array, zip(*pts))
        line = ax.errorbar(Ls, ms, yerr=2 * ses, fmt="o", label=f"η = {sched}")
        ax.plot(Ls, ts, "-", color=line[0].get_color())
    ax.set(yscale="log", xlabel="residual blocks L", ylabel="E[M_L]/M_0", title="ResNets: length vs ∏(1+η²)")
    legend_outside(ax)
    b.figure(fig, "resnet_length", "Mean output length of scaled residual nets x_l = x_{l-1} + η_l N_l(x_{l-1}) "
             "(η scales the branch output); points ± 2 SE, lines ∏(1 + η_l²).")
    b.claims.append(judge_resnet_length(*worst))
    L, n = max(s["res_depths"]), s["res_width"]
    rows = []
    for sched in ("1/l", "geometric(0.9)"):
        m = resnet_lengths(n, eta_schedule(sched, L), s["res_nets"], generator=generator)[:, -1].numpy()
        rows.append((sched, *var_se(np.log(m))))
    b.claims.append(judge_resnet_fm2(rows, L, n))


def judge_resnet_fm2(rows, L: int, n: int, alpha: float = ALPHA) -> Claim:
    """``rows`` = [(schedule, Var log M_L, SE)]: each below ``RES_FM2_FRACTION`` of the plain net's 5L/n; value =
    fraction − worst Var/(5L/n), one-sided z ≥ Bonferroni z holds (no partial band)."""
    plain, zc = 5 * L / n, bonferroni_z(len(rows), alpha)
    sched, v, se = max(rows, key=lambda r: (r[1] / plain - RES_FM2_FRACTION) / (r[2] / plain))
    return Claim(*RES_CLAIMS[1], f"L = {L}, width {n}: Var log M_L " + "; ".join(
        f"η = {r[0]}: {r[1]:.3f} ± {r[2]:.3f} ({r[1] / plain:.1%} of 5L/n = {plain:.2f})" for r in rows) +
        f"; worst η = {sched}; judged: ({RES_FM2_FRACTION:g} − Var/(5L/n))/SE ≥ {zc:.2f}", rule="exceeds",
        value=RES_FM2_FRACTION - v / plain, target=0.0, error=se / plain, holds=zc, partial=zc)


def judge_resnet_length(sched: str, L: int, m: float, se: float, t: float) -> Claim:
    """The worst (schedule, depth) of E[M_L]/M_0 against ∏(1 + η_l²) on a log scale (the claim is exponential
    growth or not): |ln m − ln t| ≤ 4 relative SEs (se/m) holds, ≤ 8 partially."""
    return Claim(*RES_CLAIMS[0], f"worst case η = {sched}, L = {L}: {m:.3g} ± {se:.2g} vs ∏(1+η²) = {t:.3g}; judged "
                 "on ln E[M_L]: |ln(measured/theory)| ≤ 4 SE/mean", rule="zscore", value=float(np.log(m)),
                 target=float(np.log(t)), error=se / m)


def run(mode: str = "quick", *, store=None, backend: str = "local", seed: int = 0, progress: bool = False,
        workers: int = 1, device=None, reuse_stale: bool = False,
        sections=("fm1", "fm2", "resnet", "conv", "training", "fm2-training", "resnet-training")):
    """Run the reproduction at ``mode`` sizes (:data:`SIZES`) and return a :class:`PaperReport`."""
    import torch

    s = SIZES[check_mode(mode)]
    settings = dict(s)
    settings.update(seed=seed, dataset=dataset_label(s["dataset"]), res_dataset=dataset_label(s["res_dataset"]),
                    activation="relu", biases="zero",
                    weights="Gaussian c/fan-in (simulations)", optimizer=f"SGD lr {s['lr']} batch 128")
    b = ReportBuilder(PAPER, TITLE, CITATION, mode, settings, store=store, backend=backend, workers=workers,
                      progress=progress, device=device, reuse_stale=reuse_stale)
    g = torch.Generator().manual_seed(seed)
    from deepstart.experiments.reproduce import hanin_rolnick_training as tr

    table = {"fm1": (lambda b: _fm1(b, s, g), FM1_CLAIMS), "fm2": (lambda b: _fm2(b, s, g), FM2_CLAIMS),
             "resnet": (lambda b: _resnet(b, s, g), RES_CLAIMS), "conv": (lambda b: _conv(b, s, g), CONV_CLAIMS),
             "training": (lambda b: tr.fm1_training(b, s, seed), tr.FM1_TRAIN_CLAIMS + tr.POPULAR_CLAIMS),
             "fm2-training": (lambda b: tr.fm2_training(b, s, seed), tr.FM2_TRAIN_CLAIMS),
             "resnet-training": (lambda b: tr.resnet_training(b, s, seed), tr.RES_TRAIN_CLAIMS)}
    for name in sections:
        fn, claims = table[name]
        b.section(name, fn, claims)
    return b.build()
