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

from deepstart.experiments.reproduce._common import ReportBuilder, dataset_label, new_axes
from deepstart.experiments.reproduce.claims import Claim, bonferroni_z

FM1_TRAIN_CLAIMS = (
    ("Training: c = 2 starts fastest", "§5, Fig. 2: nets initialized with variance 2/fan-in (c = 2) reach 20% test "
     "accuracy first: no other init (c = 1, 3, Glorot, PyTorch default) reaches it significantly earlier, at any depth."),
    ("Training: c = 2 trains at every depth", "§5, Fig. 2: with c = 2 training starts (20% test accuracy within the "
     "budget) at every depth tried, width = depth."),
    ("Training: far from c = 2 starts later with depth", "§5, Fig. 2: away from c = 2 the epochs to 20% grow with "
     "depth or training never starts: at the deepest depth every other init is significantly slower than c = 2."))
FM2_TRAIN_CLAIMS = (("Training: larger β starts slower", "§5, Fig. 3 (FM2): at equal depth, narrower layers "
                     "(larger β = Σ 1/n_j) delay the start of training: epochs to 20% grow with β."),)
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


def paired(a, b, floor: float) -> tuple[float, float]:
    """Mean of the per-seed differences a_r − b_r and its SE over seeds, at least ``floor/√n`` (the measurement's
    resolution: an eval interval in epochs, or an accuracy's binomial SE), so identical runs do not give SE 0."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    return float(d.mean()), max(sd, floor) / math.sqrt(n)


def judge_c2_fastest(eps: dict, depths, resolution: float, alpha: float = ALPHA) -> Claim:
    """``eps[(label, depth)]`` = per-seed epochs to 20%. Fails if some init beats c = 2 by more than the Bonferroni
    threshold: worst z of (other − c = 2) ≥ −z_c holds."""
    others = sorted({k for k, _ in eps if k != "c = 2"})
    comps = [(k, d, *paired(eps[(k, d)], eps[("c = 2", d)], resolution)) for k in others for d in depths]
    zc = bonferroni_z(len(comps), alpha)
    k, d, m, se = min(comps, key=lambda r: r[2] / r[3])
    return Claim(*FM1_TRAIN_CLAIMS[0], "epochs(other) − epochs(c = 2), paired over seeds: " + "; ".join(
        f"{r[0]} d={r[1]}: {r[2]:+.2f} ± {r[3]:.2f}" for r in comps) + f"; worst {k} at depth {d}; judged: worst "
        f"z ≥ −{zc:.2f} (Bonferroni, {len(comps)} comparisons)", rule="exceeds", value=m, target=0.0, error=se,
        holds=-zc, partial=-2 * zc)


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
    ax.legend(fontsize=7)
    b.figure(fig, "fm1_training", f"Epochs to 20% test accuracy on {dataset_label(s['dataset'])} against depth; "
             f"{budget} (dotted) = not reached within {s['epochs']} epoch(s).")
    res = _resolution(s, s["limit"])
    b.claims.append(judge_c2_fastest(eps, s["train_depths"], res))
    b.claims.append(judge_c2_trains(eps, s["train_depths"], budget))
    b.claims.append(judge_far_slower(eps, max(s["train_depths"]), res))


def _resolution(s: dict, limit) -> float:
    """One evaluation interval in epochs (the granularity of 'epochs to 20%')."""
    n_train = limit or 60000
    return min(1.0, s["eval_every"] / max(1, math.ceil(n_train / 128)))


def judge_beta_slower(narrow, wide, betas: tuple, resolution: float, alpha: float = ALPHA) -> Claim:
    """Per-seed epochs to 20% at the largest β (``narrow``) minus the smallest (``wide``): z ≥ z_c holds."""
    m, se = paired(narrow, wide, resolution)
    zc = bonferroni_z(1, alpha)
    return Claim(*FM2_TRAIN_CLAIMS[0], f"epochs(β = {betas[0]:.2f}) − epochs(β = {betas[1]:.2f}) = {m:+.2f} ± {se:.2f}"
                 f" over {len(narrow)} seeds", rule="exceeds", value=m, target=0.0, error=se, holds=zc, partial=1.0)


def fm2_training(b: ReportBuilder, s: dict, seed: int) -> None:
    """Epochs to 20% against β at fixed depth (He init). Constant widths only: trials have one width per net."""
    D, budget = s["fm2_train_depth"], s["epochs"] + 1
    widths = sorted(s["fm2_train_widths"])
    trials = {n: [_trial(s, seed + r, depth=D, width=n, init="he") for r in range(s["runs"])] for n in widths}
    results = b.train("fm2-training", [t for ts in trials.values() for t in ts])
    eps = {n: _epochs(results, trials[n], budget) for n in widths}
    betas = [D / n for n in widths]
    fig, (ax,) = new_axes()
    ax.errorbar(betas, [np.mean(eps[n]) for n in widths],
                yerr=[2 * np.std(eps[n]) / math.sqrt(len(eps[n])) for n in widths], fmt="o-", capsize=2)
    for n, x in zip(widths, betas):
        ax.annotate(f"n = {n}", (x, np.mean(eps[n])), fontsize=7)
    ax.axhline(budget, color="gray", ls=":", lw=1)
    ax.set(xscale="log", xlabel="β = depth / width", ylabel="epochs to 20% test acc.",
           title=f"FM2 training: depth {D}, He init")
    b.figure(fig, "fm2_training", f"Epochs to 20% test accuracy on {dataset_label(s['dataset'])} against β at depth "
             f"{D} (constant widths; mean ± 2 SE of {s['runs']} runs; {budget} = not reached).")
    b.claims.append(judge_beta_slower(eps[widths[0]], eps[widths[-1]], (betas[0], betas[-1]),
                                      _resolution(s, s["limit"])))


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
            results[t.id].plot(ax=ax, x="step", label=f"η = {e}" if r == 0 else None)
        accs[str(e)] = [results[t.id].final.get("test_acc") or 0.0 for t in trials[e]]
    ax.set(title=f"{dataset_label(ds)}: ResNet depth {D}, width {W}, one epoch")
    ax.legend(fontsize=7)
    b.figure(fig, "resnet_training", f"Test accuracy in the first epoch of scaled residual nets on {dataset_label(ds)}"
             f" (MLP residual blocks on flattened inputs, branch = He Linear → ReLU → Linear with variance 1/fan-in; "
             f"{s['res_runs']} seeds each).")
    n_test = s["test_limit"] or 10000
    b.claims.append(judge_resnet(accs, n_test))
    if ds == "cifar10":
        b.notes.append("CIFAR-10 results come from the JPEG copy of CIFAR-10 (read from $DEEPSTART_DATA), not the "
                       "original pickled arrays.")
