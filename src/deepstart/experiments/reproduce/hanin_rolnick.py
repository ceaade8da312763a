"""Reproduction of Hanin & Rolnick 2018, "How to Start Training: The Effect of Initialization and Architecture".

Sections (THEORY.md §4): (1) FM1 — mean output length against depth for weight variance c/fan-in, c below/at/above 2
and popular inits, with the theory ``E[M_d]/M_0 = (c/2)^d`` from :func:`deepstart.theory.length_moments`, and epochs
to 20% test accuracy against depth (width = depth); (2) FM2 — ``Var log M_d`` against ``5β`` for width profiles of
equal depth, and training speed against β; (3) ResNets with η_l schedules — output length against ``∏(1 + η_l²)``.
"""
from __future__ import annotations

import numpy as np

from deepstart.experiments.reproduce._common import ReportBuilder, check_mode, dataset_label, mean_se, mlp_lengths, \
    new_axes, resnet_lengths

PAPER = "hanin-rolnick"
TITLE = "Hanin & Rolnick 2018: How to Start Training (FM1, FM2, ResNets)"
CITATION = "B. Hanin, D. Rolnick. How to Start Training: The Effect of Initialization and Architecture. NeurIPS 2018."

SIZES = {
    "tiny": dict(depths=[3, 6], n_nets=300, cs=[1.5, 2.0, 2.5], fm2_depth=6, fm2_nets=400,
                 profiles={"16x6": [16] * 6, "32x6": [32] * 6, "alt 16,64": [16, 64] * 3,
                           "alt 64,16": [64, 16] * 3},
                 res_width=16, res_depths=[2, 4, 8], res_nets=200, dataset="toy", train_depths=[4, 8], runs=1,
                 epochs=3, lr=0.1, limit=1024, test_limit=256, eval_every=4, train_cs=[1.0, 2.0],
                 fm2_train_depth=4, fm2_train_widths=[4, 8, 32], res_dataset="toy", res_train_depth=8,
                 res_train_width=16),
    "quick": dict(depths=[5, 10, 20, 30], n_nets=1000, cs=[1.5, 2.0, 2.5], fm2_depth=10, fm2_nets=2000,
                  profiles={"10x10": [10] * 10, "20x10": [20] * 10, "40x10": [40] * 10, "alt 10,40": [10, 40] * 5,
                            "alt 40,10": [40, 10] * 5, "80x10": [80] * 10},
                  res_width=32, res_depths=[5, 10, 20, 40], res_nets=400, dataset="mnist",
                  train_depths=[5, 10, 20, 30], runs=3, epochs=3, lr=0.01, limit=None, test_limit=2000, eval_every=100,
                  train_cs=[1.0, 2.0, 3.0],
                  fm2_train_depth=10, fm2_train_widths=[5, 10, 20, 40], res_dataset="cifar10", res_train_depth=20,
                  res_train_width=64),
    "full": dict(depths=[10, 20, 40, 60, 80, 100], n_nets=2000, cs=[1.5, 1.9, 2.0, 2.1, 2.5], fm2_depth=20,
                 fm2_nets=4000, profiles={"20x20": [20] * 20, "40x20": [40] * 20, "80x20": [80] * 20,
                                          "alt 20,80": [20, 80] * 10, "alt 80,20": [80, 20] * 10,
                                          "ramp 10..100": list(np.linspace(10, 100, 20).astype(int)),
                                          "ramp 100..10": list(np.linspace(100, 10, 20).astype(int))},
                 res_width=64, res_depths=[10, 20, 50, 100], res_nets=400, dataset="mnist",
                 train_depths=[10, 20, 40, 60, 80, 100], runs=5, epochs=10, lr=0.01, limit=None, test_limit=None,
                 eval_every=100,
                 train_cs=[1.0, 1.5, 2.0, 2.5, 3.0], fm2_train_depth=20, fm2_train_widths=[10, 20, 40, 80, 160],
                 res_dataset="cifar10", res_train_depth=50, res_train_width=128),
}
# Popular inits as weight variance c/fan-in on square layers: LeCun c = 1, Glorot c = 2·n/(n+n) = 1, PyTorch's
# default nn.Linear init is U(±1/√fan_in), variance 1/(3·fan_in), c = 1/3 (torch.nn.Linear.reset_parameters).
POPULAR = {"lecun": (1.0, "normal"), "glorot": (1.0, "normal"), "pytorch-default": (1.0 / 3.0, "uniform")}
FM1_CLAIMS = (("FM1: c = 2 preserves the mean length", "E[M_d] = M_0 at every depth when Var W = 2/fan-in."),
              ("FM1: c ≠ 2 changes the mean length exponentially", "E[M_d] = (c/2)^d M_0."))
FM2_CLAIMS = (("FM2: Var log M is set by β", "The variance of log M_d is governed by β = Σ 1/n_j (≈ 5β for wide "
               "layers; bounded above and below by exponentials of β)."),
              ("FM2: equal β behave alike", "Width profiles with the same β have the same fluctuations."))
RES_CLAIMS = (("ResNet: E[M_L] = ∏(1 + η_l²)", "Scaled residual nets avoid FM1 iff Σ η_l² < ∞."),)


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
    ax.set(yscale="log", xlabel="depth d (width = depth)", ylabel="E[M_d]/M_0", title="FM1: mean length")
    ax.legend(fontsize=7)
    b.figure(fig, "fm1_length", "Mean normalized squared output length against depth (width = depth, ReLU); points "
             "± 2 SE from independent random nets, lines: theory (c/2)^d. Dashed: popular inits.")
    d, m, se, t = worst[2.0]
    b.claim(*FM1_CLAIMS[0], f"depth {d}: E[M_d]/M_0 = {m:.3f} ± {se:.3f} (theory {t:.3f}); "
            f"{s['n_nets']} nets", rule="zscore", value=m, target=t, error=se)
    off = [(c, *worst[c]) for c in s["cs"] if c != 2.0]
    c, d, m, se, t = max(off, key=lambda r: abs(r[2] - r[4]) / r[3])
    b.claim(*FM1_CLAIMS[1], "E[M_d]/M_0 measured vs (c/2)^d at each c's worst depth: " +
            "; ".join(f"c = {r[0]:g}, d = {r[1]}: {r[2]:.3g} ± {r[3]:.2g} vs {r[4]:.3g}" for r in off) +
            " (heavy tails: the SE is itself noisy at small sample sizes)", rule="zscore", value=m / t, target=1.0,
            error=se / t)


def _fm2(b: ReportBuilder, s: dict, generator) -> None:
    rows, dead = [], 0
    for name, widths in s["profiles"].items():
        widths = [int(w) for w in widths]
        m = mlp_lengths(widths[0], widths, [2.0 / n for n in [widths[0], *widths[:-1]]], s["fm2_nets"],
                        generator=generator)[:, -1].numpy()
        dead += int(np.sum(m <= 0))  # all units of a layer off (probability ~ Σ 2^-n_j): log M = -inf, left out
        logm = np.log(m[m > 0])
        var = float(np.var(logm, ddof=1))
        # SE of a sample variance: sqrt((m4 - var²)/n), m4 the 4th central moment of the sample
        se = float(np.sqrt(max(np.mean((logm - logm.mean()) ** 4) - var**2, 0) / len(logm)))
        beta = float(sum(1.0 / n for n in widths))
        rows.append((name, beta, var, se, float(_theory(widths, 2.0, widths[0]).log_var[-1])))
    fig, (ax,) = new_axes()
    for name, beta, var, se, th in rows:
        ax.errorbar([5 * beta], [var], yerr=[2 * se], fmt="o", label=name)
        ax.plot([5 * beta], [th], "k_", ms=14)
    xs = np.linspace(0, 5 * max(r[1] for r in rows) * 1.05, 50)
    ax.plot(xs, xs, "k:", lw=1, label="Var log M = 5β")
    ax.set(xlabel="5β = 5 Σ 1/n_j", ylabel="Var log M_d", title=f"FM2: depth {s['fm2_depth']}")
    ax.legend(fontsize=7)
    b.figure(fig, "fm2_varlog", "Var log M_d against 5β for width profiles of equal depth (He init, ReLU); "
             "bars ± 2 SE, black ticks: exact theory (length_moments), dotted: the 5β approximation.")
    if dead:
        b.notes.append(f"FM2: {dead} simulated nets had a layer with all units off (M_d = 0) and were left out")
    betas, vars_ = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    slope = float(np.sum(5 * betas * vars_) / np.sum((5 * betas) ** 2))
    name, beta, var, se, th = max(rows, key=lambda r: abs(r[2] / r[4] - 1))
    b.claim(*FM2_CLAIMS[0], f"worst profile {name}: Var log M = {var:.3f} ± {se:.3f} vs theory {th:.3f} "
            f"(β = {beta:.3f}); least-squares slope on 5β through 0: {slope:.2f} (> 1 at narrow widths, where the "
            f"exact per-layer variance exceeds 5/n); {len(rows)} profiles, {s['fm2_nets']} nets each",
            rule="relative", value=var, target=th, holds=max(0.1, 4 * se / th), partial=max(0.3, 8 * se / th))
    pairs = [(r1, r2) for i, r1 in enumerate(rows) for r2 in rows[i + 1:] if abs(r1[1] - r2[1]) < 1e-9]
    if pairs:
        r1, r2 = pairs[0]
        b.claim(*FM2_CLAIMS[1], f"{r1[0]}: {r1[2]:.3f} ± {r1[3]:.3f}; {r2[0]}: {r2[2]:.3f} ± {r2[3]:.3f} "
                f"(β = {r1[1]:.3f})", rule="zscore", value=r1[2], target=r2[2], error=float(np.hypot(r1[3], r2[3])))


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
            if worst is None or abs(m - t) / se > abs(worst[2] - worst[4]) / worst[3]:
                worst = (str(sched), L, m, se, t)
        Ls, ms, ses, ts = map(np.array, zip(*pts))
        line = ax.errorbar(Ls, ms, yerr=2 * ses, fmt="o", label=f"η = {sched}")
        ax.plot(Ls, ts, "-", color=line[0].get_color())
    ax.set(yscale="log", xlabel="residual blocks L", ylabel="E[M_L]/M_0", title="ResNets: length vs ∏(1+η²)")
    ax.legend(fontsize=7)
    b.figure(fig, "resnet_length", "Mean output length of scaled residual nets x_l = x_{l-1} + η_l N_l(x_{l-1}) "
             "(η scales the branch output); points ± 2 SE, lines ∏(1 + η_l²).")
    sched, L, m, se, t = worst
    b.claim(*RES_CLAIMS[0], f"worst case η = {sched}, L = {L}: {m:.3g} ± {se:.2g} vs ∏(1+η²) = {t:.3g}",
            rule="zscore", value=m, target=t, error=se)


def run(mode: str = "quick", *, store=None, backend: str = "local", seed: int = 0, progress: bool = False,
        workers: int = 1, sections=("fm1", "fm2", "resnet", "training", "fm2-training",
                                                       "resnet-training")):
    """Run the reproduction at ``mode`` sizes (:data:`SIZES`) and return a :class:`PaperReport`."""
    import torch

    s = SIZES[check_mode(mode)]
    settings = dict(s)
    settings.update(seed=seed, dataset=dataset_label(s["dataset"]), res_dataset=dataset_label(s["res_dataset"]),
                    activation="relu", biases="zero",
                    weights="Gaussian c/fan-in (simulations)", optimizer=f"SGD lr {s['lr']} batch 128")
    b = ReportBuilder(PAPER, TITLE, CITATION, mode, settings, store=store, backend=backend, workers=workers,
                      progress=progress)
    g = torch.Generator().manual_seed(seed)
    from deepstart.experiments.reproduce import hanin_rolnick_training as tr

    table = {"fm1": (lambda b: _fm1(b, s, g), FM1_CLAIMS), "fm2": (lambda b: _fm2(b, s, g), FM2_CLAIMS),
             "resnet": (lambda b: _resnet(b, s, g), RES_CLAIMS),
             "training": (lambda b: tr.fm1_training(b, s, seed), tr.FM1_TRAIN_CLAIMS),
             "fm2-training": (lambda b: tr.fm2_training(b, s, seed), tr.FM2_TRAIN_CLAIMS),
             "resnet-training": (lambda b: tr.resnet_training(b, s, seed), tr.RES_TRAIN_CLAIMS)}
    for name in sections:
        fn, claims = table[name]
        b.section(name, fn, claims)
    return b.build()
