"""Training parts of the Hanin & Rolnick 2018 reproduction: epochs to 20% test accuracy against depth (FM1) and
against β = Σ 1/n_j (FM2), and early training of scaled residual nets (§5, Fig. 2-4 of the paper).

All training goes through the sweep store (:meth:`ReportBuilder.train`), so a rerun resumes.
"""
from __future__ import annotations

import numpy as np

from deepstart.experiments.reproduce._common import ReportBuilder, dataset_label, new_axes

FM1_TRAIN_CLAIMS = (("Training: c = 2 starts fastest", "Nets initialized at c = 2/fan-in reach 20% first; far from "
                     "2 the number of epochs grows with depth or training never starts."),)
FM2_TRAIN_CLAIMS = (("Training: larger β starts slower", "At equal depth, epochs to 20% grow with β = Σ 1/n_j "
                     "(FM2: narrow layers delay the start of training)."),)
RES_TRAIN_CLAIMS = (("ResNets: Σ η_l² < ∞ trains early", "Residual nets with η_l = 1/l or geometric η_l = r^l start "
                     "training, while η_l = 1 (E[M_L] exponential in L: 2^L for length-preserving branches, 3^L for the "
                     "He-initialized branches of models.resnet trained here) starts later or not at all."),)
TARGET = 0.2  # Hanin & Rolnick's threshold: 20% test accuracy


def _trial(s: dict, seed: int, **fields):
    from deepstart.experiments.trial import Trial

    base = dict(dataset=s["dataset"], arch="mlp", activation="relu", epochs=s["epochs"], limit=s["limit"],
                test_limit=s["test_limit"], lr=s["lr"], batch_size=128, seed=seed, eval_every=s["eval_every"])
    base.update(fields)
    return Trial(**base)


def _epochs(results, trials, budget: float) -> float:
    """Mean epochs to 20% over runs; a run that never reaches it counts as ``budget`` (one epoch past the end)."""
    eps = [results[t.id].epochs_to(TARGET) for t in trials]
    return float(np.mean([budget if e is None else e for e in eps]))


def fm1_training(b: ReportBuilder, s: dict, seed: int) -> None:
    """Epochs to 20% against depth, width = depth, for c/fan-in inits and popular inits (paper Fig. 2)."""
    inits = {f"c = {c:g}": f"variance-scaling(scale={c:g})" for c in s["train_cs"]}
    inits.update({"glorot": "glorot", "pytorch-default": "pytorch-default"})
    trials = {(label, d): [_trial(s, seed + r, depth=d, width=d, init=init) for r in range(s["runs"])]
              for label, init in inits.items() for d in s["train_depths"]}
    results = b.train("fm1-training", [t for ts in trials.values() for t in ts])
    budget = s["epochs"] + 1
    means = {label: [_epochs(results, trials[(label, d)], budget) for d in s["train_depths"]] for label in inits}
    fig, (ax,) = new_axes()
    for label, ys in means.items():
        ax.plot(s["train_depths"], ys, "o-", label=label)
    ax.axhline(budget, color="gray", ls=":", lw=1)
    ax.set(xlabel="depth (width = depth)", ylabel="epochs to 20% test acc.",
           title=f"{dataset_label(s['dataset'])}, mean of {s['runs']} run(s)")
    ax.legend(fontsize=7)
    b.figure(fig, "fm1_training", f"Epochs to 20% test accuracy on {dataset_label(s['dataset'])} against depth; "
             f"{budget} (dotted) = not reached within {s['epochs']} epoch(s).")
    he = means["c = 2"]
    pairs = [(he[i], means[k][i]) for k in means if k != "c = 2" for i in range(len(he))]
    informative = [(a, o) for a, o in pairs if min(a, o) < budget]  # neither reached 20%: says nothing
    wins = sum(a <= o for a, o in informative)
    b.claim(*FM1_TRAIN_CLAIMS[0], f"c = 2 reaches 20% no later than the other init in {wins}/{len(informative)} "
            f"(init, depth) pairs where one of them reached it; epochs for c = 2 by depth {s['train_depths']}: "
            f"{[round(v, 2) for v in he]}", rule="at_least", value=wins / len(informative) if informative else None,
            target=0.8, partial=0.5)


def _spearman(x, y):
    from scipy import stats

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None  # undefined for constant input
    return float(stats.spearmanr(x, y).statistic)


def fm2_training(b: ReportBuilder, s: dict, seed: int) -> None:
    """Epochs to 20% against β at fixed depth (He init). Constant widths only: trials have one width per net."""
    D, budget = s["fm2_train_depth"], s["epochs"] + 1
    trials = {n: [_trial(s, seed + r, depth=D, width=n, init="he") for r in range(s["runs"])]
              for n in s["fm2_train_widths"]}
    results = b.train("fm2-training", [t for ts in trials.values() for t in ts])
    betas = [D / n for n in s["fm2_train_widths"]]
    eps = [_epochs(results, trials[n], budget) for n in s["fm2_train_widths"]]
    fig, (ax,) = new_axes()
    ax.plot(betas, eps, "o-")
    for n, x, y in zip(s["fm2_train_widths"], betas, eps):
        ax.annotate(f"n = {n}", (x, y), fontsize=7)
    ax.axhline(budget, color="gray", ls=":", lw=1)
    ax.set(xscale="log", xlabel="β = depth / width", ylabel="epochs to 20% test acc.",
           title=f"FM2 training: depth {D}, He init")
    b.figure(fig, "fm2_training", f"Epochs to 20% test accuracy on {dataset_label(s['dataset'])} against β at depth "
             f"{D} (constant widths; {budget} = not reached).")
    rho = _spearman(betas, eps)
    b.claim(*FM2_TRAIN_CLAIMS[0], f"Spearman ρ(β, epochs) = {rho if rho is None else round(rho, 2)} over "
            + ", ".join(f"β = {x:.2f}: {y:.2f}" for x, y in zip(betas, eps)) +
            " (equal-β profiles of different shapes need per-layer widths, which trials do not offer yet)",
            rule="at_least", value=rho, target=0.5, partial=0.0)


def resnet_training(b: ReportBuilder, s: dict, seed: int) -> None:
    """Early training of scaled residual nets (η_l = 1, 1/l, geometric(0.9)) on CIFAR-10 (paper §5, Fig. 4)."""
    ds, D, W = s["res_dataset"], s["res_train_depth"], s["res_train_width"]
    scheds = (1.0, "1/l", "geometric(0.5)", "geometric(0.9)")
    trials = {e: [_trial(s, seed + r, dataset=ds, arch="resnet", depth=D, width=W, init="he", eta=e, epochs=1)
                  for r in range(s["runs"])] for e in scheds}
    results = b.train("resnet-training", [t for ts in trials.values() for t in ts])
    fig, (ax,) = new_axes()
    finals = {}
    for k, e in enumerate(scheds):
        accs = []
        for r, t in enumerate(trials[e]):
            res = results[t.id]
            res.plot(ax=ax, x="step", label=f"η = {e}" if r == 0 else None)
            accs.append(res.final.get("test_acc") or 0.0)
        finals[str(e)] = float(np.mean(accs))
    ax.set(title=f"{dataset_label(ds)}: ResNet depth {D}, width {W}, one epoch")
    ax.legend(fontsize=7)
    b.figure(fig, "resnet_training", f"Test accuracy in the first epoch of scaled residual nets on {dataset_label(ds)}"
             f" (MLP residual blocks on flattened inputs; {s['runs']} run(s) each).")
    gain = min(v for k, v in finals.items() if k != "1.0") - finals["1.0"]  # every schedule with Σ η² < ∞
    b.claim(*RES_TRAIN_CLAIMS[0], "final test accuracy after one epoch: " +
            ", ".join(f"η = {k}: {v:.3f}" for k, v in finals.items()) + f" (smallest margin over η = 1: {gain:+.3f})",
            rule="at_least", value=gain, target=0.0, partial=-0.02)
    if ds == "cifar10":
        b.notes.append("CIFAR-10 results come from the JPEG copy of CIFAR-10 (read from $DEEPSTART_DATA), not the "
                       "original pickled arrays.")
