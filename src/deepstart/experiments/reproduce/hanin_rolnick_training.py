"""Training parts of the Hanin & Rolnick 2018 reproduction: epochs to 20% test accuracy against depth (FM1) and
against β = Σ 1/n_j (FM2), and early training of scaled residual nets (§5, Fig. 2-4 of the paper).

Every claim compares seeds run for run (the same seed gives the same data order to every init): paired differences,
their standard error over seeds, and a one-sided z criterion fixed here before any run (``claims`` rule
``"exceeds"``; the worst of m comparisons against :func:`~deepstart.experiments.reproduce.claims.bonferroni_z`).
The judging functions (``judge_*``) are pure functions of the per-seed numbers, so tests feed them contradicting
numbers. All training goes through the sweep store (:meth:`ReportBuilder.train`), so a rerun resumes.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.experiments.reproduce._common import ReportBuilder, dataset_label, legend_outside, log_ticks, \
    new_axes, paired
from deepstart.experiments.reproduce.claims import Claim, bonferroni_z

FM1_TRAIN_CLAIMS = (
    ("Training: c = 2 starts fastest", "§5, Fig. 2 (epochs to 20% against depth): \"the best initialization is "
     "c = 2\": nets with weight variance 2/fan-in reach 20% test accuracy first. Judged as superiority: every other "
     "init (c = 1, 3, Glorot, PyTorch default) is significantly slower than c = 2 at every depth."),
    ("Training: c = 2 trains at every depth", "§5, Fig. 2: with c = 2 training starts (20% test accuracy within the "
     "budget) at every depth tried, width = depth."),
    ("Training: far from c = 2 starts later with depth", "§5, Fig. 2: away from c = 2 the epochs to 20% grow with "
     "depth or training never starts: at the deepest depth every other init is significantly slower than c = 2."))
FM2_TRAIN_CLAIMS = (
    ("Training: larger β starts slower", "§5, Fig. 3 (FM2): a larger β = Σ 1/n_j delays the start of training. "
     "Judged at a fixed width (no narrow bottleneck: β grows with depth at width n, c = 2): epochs to 20% at the "
     "largest β exceed those at the smallest."),
    ("Training: equal β trains alike", "§5 (FM2 is avoided by keeping β constant): two nets of equal β = depth/width "
     "(depth d, width n and depth 2d, width 2n, c = 2) reach 20% test accuracy at the same epoch (difference within "
     "the Bonferroni z of 0; a difference of one epoch at the gallery's noise fails)."))
POPULAR_CLAIMS = (("Many popular initializations fail", "§1 and §5: \"many popular initializations\" (LeCun, "
                   "Glorot, the PyTorch default) fall into FM1 in deep ReLU nets: at the deepest depth each starts "
                   "training significantly later than c = 2 (or never)."),)
RES_TRAIN_CLAIMS = (("ResNets: Σ η_l² < ∞ trains early", "§4-5, Fig. 4: residual nets with η_l = 1/l or geometric "
                     "η_l = r^l start training (beat chance) and beat η_l = 1 (E[M_L] = 2^L M_0) early in training."),)
TARGET = 0.2  # Hanin & Rolnick's threshold: 20% test accuracy
CHANCE = 0.1  # ten classes
ALPHA = 0.01  # family-wise false-alarm rate of every worst-of-m criterion here
# the branch's last layer gets variance 1/fan_in (He 2/fan_in times 1/2): a length-preserving ReLU branch with a
# symmetric last layer, so E[M_L] = M_0 ∏(1 + η_l²) (THEORY.md §4); plain init="he" would give ∏(1 + 2η_l²)
RES_INIT = f"residual-scaled(base=he, eta={1 / math.sqrt(2)!r})"


def _trial(s: dict, seed: int, **fields):
    from deepstart.experiments.trial import Trial

    base = dict(dataset=s["dataset"], arch="mlp", activation="relu", epochs=s["epochs"], limit=s["limit"],
                test_limit=s["test_limit"], lr=s["lr"], batch_size=128, seed=seed, eval_every=s["eval_every"])
    base.update(fields)
    return Trial(**base)


def _epochs(results, trials, budget: float) -> list[float]:
    """Epochs to 20% per run; a run that never reaches it counts as ``budget`` (one epoch past the end)."""
    eps = [results[t.id].epochs_to(TARGET) for t in trials]
    return [budget if e is None else float(e) for e in eps]


def judge_c2_fastest(eps: dict, depths, resolution: float, alpha: float = ALPHA) -> Claim:
    """``eps[(label, depth)]`` = per-seed epochs to 20%. Superiority: every other init slower than c = 2 at every depth,
    worst z of (other − c = 2) ≥ z_c (Bonferroni over all comparisons) holds, ≥ 1 partially."""
    others = sorted({k for k, _ in eps if k != "c = 2"})
    comps = [(k, d, *paired(eps[(k, d)], eps[("c = 2", d)], resolution)) for k in others for d in depths]
    zc = bonferroni_z(len(comps), alpha)
    k, d, m, se = min(comps, key=lambda r: r[2] / r[3])
    return Claim(*FM1_TRAIN_CLAIMS[0], "epochs(other) − epochs(c = 2), paired over seeds: " + "; ".join(
        f"{r[0]} d={r[1]}: {r[2]:+.2f} ± {r[3]:.2f}" for r in comps) + f"; worst {k} at depth {d} (z = {m / se:+.2f}); "
        f"judged: worst z ≥ {zc:.2f} (superiority, Bonferroni, {len(comps)} comparisons)", rule="exceeds", value=m,
        target=0.0, error=se, holds=zc, partial=1.0)


def judge_c2_trains(eps: dict, depths, budget: float) -> Claim:
    """Fraction of c = 2 runs (all depths, all seeds) that reach 20% within the budget: all of them holds."""
    runs = [e for d in depths for e in eps[("c = 2", d)]]
    frac = float(np.mean([e < budget for e in runs]))
    return Claim(*FM1_TRAIN_CLAIMS[1], f"{sum(e < budget for e in runs)}/{len(runs)} runs of c = 2 reached 20% "
                 f"within the budget ({budget:g} epochs); "
                 "epochs by depth: " + ", ".join(f"d={d}: {np.mean(eps[('c = 2', d)]):.2f}" for d in depths),
                 rule="at_least", value=frac, target=1.0, partial=0.8)


def judge_far_slower(eps: dict, depth: int, resolution: float, alpha: float = ALPHA) -> Claim:
    """At the deepest depth, every other init slower than c = 2: worst z of (other − c = 2) ≥ z_c holds."""
    others = sorted({k for k, _ in eps if k != "c = 2"})
    comps = [(k, *paired(eps[(k, depth)], eps[("c = 2", depth)], resolution)) for k in others]
    zc = bonferroni_z(len(comps), alpha)
    k, m, se = min(comps, key=lambda r: r[1] / r[2])
    return Claim(*FM1_TRAIN_CLAIMS[2], f"depth {depth}, epochs(other) − epochs(c = 2): " + "; ".join(
        f"{r[0]}: {r[1]:+.2f} ± {r[2]:.2f}" for r in comps) + f"; worst {k}; judged: worst z ≥ {zc:.2f}",
        rule="exceeds", value=m, target=0.0, error=se, holds=zc, partial=1.0)


POPULAR_LABELS = {"c = 1": "LeCun (c = 1)", "glorot": "Glorot", "pytorch-default": "PyTorch default"}


def judge_popular_fail(eps: dict, depth: int, resolution: float, alpha: float = ALPHA) -> Claim:
    """At the deepest depth each popular init (LeCun = c = 1 on square layers, Glorot, PyTorch default) is slower
    than c = 2: worst z of (popular − c = 2) ≥ z_c (Bonferroni over the three) holds, ≥ 1 partially."""
    comps = [(POPULAR_LABELS[k], *paired(eps[(k, depth)], eps[("c = 2", depth)], resolution))
             for k in POPULAR_LABELS if (k, depth) in eps]
    zc = bonferroni_z(len(comps), alpha)
    k, m, se = min(comps, key=lambda r: r[1] / r[2])
    return Claim(*POPULAR_CLAIMS[0], f"depth {depth}, epochs(popular) − epochs(c = 2): " + "; ".join(
        f"{r[0]}: {r[1]:+.2f} ± {r[2]:.2f}" for r in comps) + f"; worst {k}; judged: worst z ≥ {zc:.2f}",
        rule="exceeds", value=m, target=0.0, error=se, holds=zc, partial=1.0)


def fm1_training(b: ReportBuilder, s: dict, seed: int) -> None:
    """Epochs to 20% against depth, width = depth, for c/fan-in inits and popular inits (paper Fig. 2)."""
    inits = {f"c = {c:g}": f"variance-scaling(scale={c:g})" for c in s["train_cs"]}
    inits.update({"glorot": "glorot", "pytorch-default": "pytorch-default"})
    trials = {(label, d): [_trial(s, seed + r, depth=d, width=d, init=init) for r in range(s["runs"])]
              for label, init in inits.items() for d in s["train_depths"]}
    results = b.train("fm1-training", [t for ts in trials.values() for t in ts])
    budget = s["epochs"] + 1
    eps = {key: _epochs(results, ts, budget) for key, ts in trials.items()}
    fig, (ax,) = new_axes()
    for label in inits:
        ys = [eps[(label, d)] for d in s["train_depths"]]
        ax.errorbar(s["train_depths"], [np.mean(y) for y in ys], yerr=[2 * np.std(y) / math.sqrt(len(y)) for y in ys],
                    fmt="o-", label=label, capsize=2)
    ax.axhline(budget, color="gray", ls=":", lw=1)
    ax.set(xlabel="depth (width = depth)", ylabel="epochs to 20% test acc.",
           title=f"{dataset_label(s['dataset'])}, mean ± 2 SE of {s['runs']} run(s)")
    legend_outside(ax)
    b.figure(fig, "fm1_training", f"Epochs to 20% test accuracy on {dataset_label(s['dataset'])} against depth; "
             f"{budget} (dotted) = not reached within {s['epochs']} epoch(s).")
    res = _resolution(s, s["limit"])
    b.claims.append(judge_c2_fastest(eps, s["train_depths"], res))
    b.claims.append(judge_c2_trains(eps, s["train_depths"], budget))
    b.claims.append(judge_far_slower(eps, max(s["train_depths"]), res))
    b.claims.append(judge_popular_fail(eps, max(s["train_depths"]), res))


def _resolution(s: dict, limit) -> float:
    """One evaluation interval in epochs (the granularity of 'epochs to 20%')."""
    n_train = limit or 60000
    return min(1.0, s["eval_every"] / max(1, math.ceil(n_train / 128)))


def judge_beta_slower(narrow, wide, betas: tuple, resolution: float, alpha: float = ALPHA) -> Claim:
    """Per-seed epochs to 20% at the largest β (``narrow``) minus the smallest (``wide``), at one width: superiority,
    z ≥ z_c holds, ≥ 1 partially."""
    m, se = paired(narrow, wide, resolution)
    zc = bonferroni_z(1, alpha)
    return Claim(*FM2_TRAIN_CLAIMS[0], f"epochs(β = {betas[0]:.2f}) − epochs(β = {betas[1]:.2f}) = {m:+.2f} ± {se:.2f}"
                 f" over {len(narrow)} seeds (z = {m / se:+.2f}; judged: z ≥ {zc:.2f})", rule="exceeds", value=m,
                 target=0.0, error=se, holds=zc, partial=1.0)


def judge_equal_beta_training(a, b, names: tuple, resolution: float, alpha: float = ALPHA) -> Claim:
    """Two nets of equal β: per-seed epochs to 20% differ by 0 within z_c SE (two-sided; no partial band)."""
    m, se = paired(a, b, resolution)
    zc = bonferroni_z(1, alpha)
    return Claim(*FM2_TRAIN_CLAIMS[1], f"epochs({names[0]}) − epochs({names[1]}) = {m:+.2f} ± {se:.2f} over {len(a)} "
                 f"seeds (z = {m / se:+.2f}; judged: |z| ≤ {zc:.2f})", rule="zscore", value=m, target=0.0, error=se,
                 holds=zc, partial=zc)


def fm2_training(b: ReportBuilder, s: dict, seed: int) -> None:
    """Epochs to 20% against β = depth/width (c = 2): depths ``fm2_depths`` at the fixed width ``fm2_width`` (no
    bottleneck: β grows with depth), and the equal-β pair ``fm2_equal`` (depth, width) × 2."""
    n, budget = s["fm2_width"], s["epochs"] + 1
    shapes = sorted({(d, n) for d in s["fm2_depths"]} | {tuple(x) for x in s["fm2_equal"]})
    trials = {(d, w): [_trial(s, seed + r, depth=d, width=w, init="he") for r in range(s["runs"])] for d, w in shapes}
    results = b.train("fm2-training", [t for ts in trials.values() for t in ts])
    eps = {k: _epochs(results, ts, budget) for k, ts in trials.items()}
    fig, (ax,) = new_axes()
    for d, w in shapes:
        y = eps[(d, w)]
        ax.errorbar([d / w], [np.mean(y)], yerr=[2 * np.std(y) / math.sqrt(len(y))], fmt="o" if w == n else "s",
                    capsize=2, label=f"depth {d}, width {w}")
    ax.axhline(budget, color="gray", ls=":", lw=1)
    betas = sorted({d / w for d, w in shapes})
    ax.set(xscale="log", xlabel="β = depth / width", ylabel="epochs to 20% test acc.",
           title=f"FM2 training: He init, width {n} (circles)")
    log_ticks(ax, betas)
    legend_outside(ax)
    b.figure(fig, "fm2_training", f"Epochs to 20% test accuracy on {dataset_label(s['dataset'])} against β "
             f"(constant widths; mean ± 2 SE of {s['runs']} runs; {budget} = not reached). Circles: width {n}, depth "
             "varied; squares: the equal-β partner.")
    res = _resolution(s, s["limit"])
    lo, hi = min(s["fm2_depths"]), max(s["fm2_depths"])
    b.claims.append(judge_beta_slower(eps[(hi, n)], eps[(lo, n)], (hi / n, lo / n), res))
    (d1, w1), (d2, w2) = s["fm2_equal"]
    b.claims.append(judge_equal_beta_training(eps[(d1, w1)], eps[(d2, w2)], (f"depth {d1}, width {w1}",
                                                                           f"depth {d2}, width {w2}"), res))


def judge_resnet(accs: dict, n_test: int, chance: float = CHANCE, alpha: float = ALPHA) -> Claim:
    """``accs[schedule]`` = per-seed final test accuracy (``"1.0"`` the η = 1 baseline). Every other schedule must
    beat chance and η = 1 (paired over seeds) by z_c (Bonferroni over all those comparisons); SE floor: the binomial
    SE of an accuracy near chance on ``n_test`` images."""
    floor = math.sqrt(chance * (1 - chance) / n_test)
    comps = []
    for k, a in accs.items():
        if k == "1.0":
            continue
        comps.append((f"η = {k} vs chance", *paired(a, [chance] * len(a), floor)))
        comps.append((f"η = {k} vs η = 1", *paired(a, accs["1.0"], floor)))
    zc = bonferroni_z(len(comps), alpha)
    name, m, se = min(comps, key=lambda r: r[1] / r[2])
    return Claim(*RES_TRAIN_CLAIMS[0], "final test accuracy: " + ", ".join(
        f"η = {k}: {np.mean(v):.3f}" for k, v in accs.items()) + "; margins: " + "; ".join(
        f"{r[0]}: {r[1]:+.3f} ± {r[2]:.3f}" for r in comps) + f"; worst {name}; judged: worst z ≥ {zc:.2f}",
        rule="exceeds", value=m, target=0.0, error=se, holds=zc, partial=1.0)


def resnet_training(b: ReportBuilder, s: dict, seed: int) -> None:
    """Early training of scaled residual nets (η_l = 1, 1/l, geometric) on CIFAR-10 (paper §5, Fig. 4)."""
    ds, D, W = s["res_dataset"], s["res_train_depth"], s["res_train_width"]
    scheds = (1.0, "1/l", "geometric(0.5)", "geometric(0.9)")
    trials = {e: [_trial(s, seed + r, dataset=ds, arch="resnet", depth=D, width=W, init=RES_INIT, eta=e, epochs=1,
                         limit=s["res_limit"], lr=s["res_lr"]) for r in range(s["res_runs"])] for e in scheds}
    results = b.train("resnet-training", [t for ts in trials.values() for t in ts])
    fig, (ax,) = new_axes()
    accs = {}
    for e in scheds:
        for r, t in enumerate(trials[e]):
            pts = [(h["step"], h["test_acc"]) for h in results[t.id].history if h.get("test_acc") is not None]
            if pts:  # one colour and one legend entry per schedule
                ax.plot(*zip(*pts), color=f"C{scheds.index(e)}", lw=0.8, label=f"η = {e}" if r == 0 else "_nolegend_")
        accs[str(e)] = [results[t.id].final.get("test_acc") or 0.0 for t in trials[e]]
    ax.set(title=f"{dataset_label(ds)}: ResNet depth {D}, width {W}, one epoch", xlabel="step",
           ylabel="test accuracy")
    legend_outside(ax)
    b.figure(fig, "resnet_training", f"Test accuracy in the first epoch of scaled residual nets on {dataset_label(ds)}"
             f" (MLP residual blocks on flattened inputs, branch = He Linear → ReLU → Linear with variance 1/fan-in; "
             f"{s['res_runs']} seeds each).")
    n_test = s["test_limit"] or 10000
    b.claims.append(judge_resnet(accs, n_test))
    if ds == "cifar10":
        b.notes.append("CIFAR-10 results come from the JPEG copy of CIFAR-10 (read from $DEEPSTART_DATA), not the "
                       "original pickled arrays.")
