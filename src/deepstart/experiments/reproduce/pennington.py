"""Reproduction of Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through dynamical
isometry: theory and practice".

Free-probability densities of the input-output Jacobian's squared singular values
(:func:`deepstart.theory.jacobian_spectrum`, THEORY.md §2) against spectra measured on random networks
(:func:`deepstart.diagnose.sample_jacobian_spectrum`) for ReLU, hard-tanh and tanh with orthogonal and Gaussian weights
on the critical line; the spectrum's variance against depth; and learning speed against the predicted variance.
"""
from __future__ import annotations

import numpy as np

from deepstart.experiments.reproduce._common import ReportBuilder, check_mode, dataset_label, new_axes

PAPER = "pennington"
TITLE = "Pennington, Schoenholz & Ganguli 2017: Dynamical Isometry"
CITATION = ("J. Pennington, S. S. Schoenholz, S. Ganguli. Resurrecting the sigmoid in deep learning through "
            "dynamical isometry: theory and practice. NeurIPS 2017.")

# (label, activation, weights, q*): q* = None for ReLU (critical point σ_w² = 2, σ_b = 0)
CONFIGS = (("tanh orth q*=1/64", "tanh", "orthogonal", 1 / 64), ("tanh gauss q*=1/64", "tanh", "gaussian", 1 / 64),
           ("tanh orth q*=1", "tanh", "orthogonal", 1.0), ("hard-tanh orth q*=1", "hard_tanh", "orthogonal", 1.0),
           ("hard-tanh gauss q*=1", "hard_tanh", "gaussian", 1.0), ("relu orth", "relu", "orthogonal", None),
           ("relu gauss", "relu", "gaussian", None))
SIZES = {
    "tiny": dict(width=48, depths=[2, 4], n_samples=3, configs=[0, 1, 5], dataset=["toy"], train_depth=8,
                 train_width=16, runs=1, epochs=3, lr=0.1, limit=1024, test_limit=256, eval_every=2, target=0.3),
    "quick": dict(width=200, depths=[2, 8, 32], n_samples=6, configs=list(range(len(CONFIGS))),
                  dataset=["mnist", "cifar10"], train_depth=50, train_width=128, runs=2, epochs=2, lr=0.01,
                  limit=20000, test_limit=2000, eval_every=10, target={"mnist": 0.6, "cifar10": 0.3}),
    "full": dict(width=400, depths=[2, 8, 32, 128], n_samples=12, configs=list(range(len(CONFIGS))),
                 dataset=["mnist", "cifar10"], train_depth=200, train_width=400, runs=3, epochs=5, lr=0.01, limit=None,
                 test_limit=2000, eval_every=50, target={"mnist": 0.6, "cifar10": 0.3}),
}
SPEC_CLAIMS = (("Theory densities match measured spectra", "Free probability predicts the Jacobian spectrum of "
                "deep random nets (measured variance vs predicted, sigmoidal orthogonal nets)."),
               ("ReLU and Gaussian weights cannot reach isometry", "The spectrum's variance grows linearly with depth "
                "for ReLU and for Gaussian weights (σ² ∝ L)."),
               ("Orthogonal tanh at small q* is nearly isometric", "With orthogonal weights and small q* the "
                "variance stays far below the Gaussian and ReLU cases."))
TRAIN_CLAIMS = (("Learning speed follows the spectrum", "Nets whose predicted Jacobian spectrum is narrower train "
                 "faster (steps to a fixed accuracy increase with the predicted variance)."),)
TRAIN_SETUPS = (("tanh orth q*=1/64", "tanh", "critical(activation=tanh, q_star=1/64, weights=orthogonal)",
                 ("tanh", "orthogonal", 1 / 64)),
                ("tanh gauss q*=1/64", "tanh", "critical(activation=tanh, q_star=1/64, weights=gaussian)",
                 ("tanh", "gaussian", 1 / 64)),
                ("tanh orth q*=1", "tanh", "critical(activation=tanh, q_star=1, weights=orthogonal)",
                 ("tanh", "orthogonal", 1.0)),
                ("relu he", "relu", "he", ("relu", "gaussian", None)))


def _theory(activation, depth, weights, q_star):
    from deepstart.theory import jacobian_spectrum

    return jacobian_spectrum(activation, depth, weights=weights, q_star=q_star)


def theory_variance(spectrum) -> float:
    """Variance of the eigenvalue law of JJᵀ from ``JacobianSpectrum.moments()`` (m₂ − m₁²)."""
    m = spectrum.moments()
    if isinstance(m, dict):
        if "variance" in m:
            return float(m["variance"])
        return float(m["m2"] - m["m1"] ** 2)
    m = np.asarray(m, dtype=float)
    return float(m[1] - m[0] ** 2)


def _measure(activation, depth, width, weights, q_star, n_samples, generator):
    from deepstart.diagnose import sample_jacobian_spectrum

    ev = np.asarray(sample_jacobian_spectrum(activation, depth, width, weights=weights, q_star=q_star,
                                             n_samples=n_samples, generator=generator), dtype=float)
    per = ev.var(axis=1)  # one variance per sampled net: the spread gives a standard error
    return ev.ravel(), float(ev.var()), float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else float("nan")


def _log_panel(ax, ev, spec) -> None:
    """Histogram of log₁₀ λ (area = fraction of all eigenvalues) and the theory ρ(λ)·λ·ln 10 on the same axis: on a
    linear axis the heavy-tailed ReLU/Gaussian spectra are a spike at 0."""
    top = float(ev.max())
    pos = ev[ev > 1e-9 * top]  # below: the rank loss of D (φ' = 0), the atom at λ = 0
    x = np.log10(pos)
    lo = float(np.quantile(x, 0.002))
    keep = x >= lo
    width = (np.log10(top) - lo) / 50
    ax.hist(x[keep], bins=50, weights=np.full(int(keep.sum()), 1.0 / (ev.size * width)), alpha=0.5)
    grid = np.linspace(lo, np.log10(top) + 0.05 * (np.log10(top) - lo), 400)
    ax.plot(grid, spec.density(10.0 ** grid) * 10.0 ** grid * np.log(10.0), "k-", lw=1)


def _spectra(b: ReportBuilder, s: dict, generator) -> None:
    configs = [CONFIGS[i] for i in s["configs"]]
    L = max(s["depths"])
    fig, axes = new_axes(len(configs), width=3.2, height=2.8)
    rows = {}
    for ax, (label, act, w, q) in zip(axes, configs):
        for depth in s["depths"]:
            ev, var, se = _measure(act, depth, s["width"], w, q, s["n_samples"], generator)
            spec = _theory(act, depth, w, q)
            rows[(label, depth)] = (var, se, theory_variance(spec))
            if depth == L:
                _log_panel(ax, ev, spec)
        ax.set(title=f"{label}, L = {L}", xlabel="log₁₀ λ (JJᵀ)")
    b.figure(fig, "spectra", f"Eigenvalues of JJᵀ of random critical nets (width {s['width']}, {s['n_samples']} nets "
             "each; histograms) against the free-probability density (black), both per unit log₁₀ λ and normalised "
             "to the whole spectrum (the zero eigenvalues of ReLU/hard-tanh nets, an atom, are not drawn).")
    fig, (ax,) = new_axes()
    for k, (label, *_rest) in enumerate(configs):
        ds = s["depths"]
        ax.plot(ds, [rows[(label, d)][0] for d in ds], "o", color=f"C{k}", label=label)
        ax.plot(ds, [rows[(label, d)][2] for d in ds], "-", color=f"C{k}", lw=1)
    ax.set(xscale="log", yscale="symlog", xlabel="depth L", ylabel="Var of JJᵀ spectrum", title="variance vs depth")
    ax.legend(fontsize=6)
    b.figure(fig, "variance_depth", "Variance of the JJᵀ spectrum against depth: points measured, lines theory.")
    sig = [(lab, d, *rows[(lab, d)]) for lab, a, w, q in configs if a != "relu" and w == "orthogonal"
           for d in s["depths"] if rows[(lab, d)][2] > 1e-12]
    worst = max(sig, key=lambda r: abs(r[2] / r[4] - 1))
    b.claim(*SPEC_CLAIMS[0], "measured / predicted variance: " + ", ".join(f"{r[0]} L={r[1]}: {r[2]:.3g}/{r[4]:.3g}"
                                                                          for r in sig),
            rule="relative", value=worst[2], target=worst[4], holds=0.2, partial=0.5)
    growth = [(lab, rows[(lab, L)][0] / max(rows[(lab, min(s["depths"]))][0], 1e-12), L / min(s["depths"]))
              for lab, a, w, q in configs if a == "relu" or w == "gaussian"]
    slope = min(g / r for _, g, r in growth)
    b.claim(*SPEC_CLAIMS[1], "Var(L_max)/Var(L_min) over the depth ratio: " +
            ", ".join(f"{lab}: {g:.2f} (depth ratio {r:.0f})" for lab, g, r in growth),
            rule="relative", value=slope, target=1.0, holds=0.3, partial=0.6)
    iso = rows.get(("tanh orth q*=1/64", L))
    other = [rows[(lab, L)][0] for lab, a, w, q in configs if (a == "relu" or w == "gaussian")]
    if iso and other:
        ratio = min(other) / iso[0]
        b.claim(*SPEC_CLAIMS[2], f"L = {L}: Var tanh orth q*=1/64 = {iso[0]:.3g}, smallest ReLU/Gaussian = "
                f"{min(other):.3g} (ratio {ratio:.1f})", rule="at_least", value=ratio, target=10.0, partial=2.0)


def _spearman(x, y) -> float:
    from scipy import stats

    if np.ptp(x) == 0 or np.ptp(y) == 0:  # constant input: the rank correlation is undefined
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def _target(s: dict, dataset: str) -> float:
    """The accuracy whose first crossing is timed: one number, or one per dataset (an MLP on CIFAR-10 tops out far
    below MNIST's accuracies, so a common target would time nothing there)."""
    return s["target"][dataset] if isinstance(s["target"], dict) else s["target"]


def _training(b: ReportBuilder, s: dict, seed: int) -> None:
    from deepstart.experiments.trial import Trial

    D = s["train_depth"]
    trials = {(ds, label, r): Trial(dataset=ds, arch="mlp", depth=D, width=s["train_width"], activation=act, init=init,
                                    epochs=s["epochs"], limit=s["limit"], test_limit=s["test_limit"], seed=seed + r,
                                    eval_every=s["eval_every"], lr=s["lr"], momentum=0.9)
              for ds in s["dataset"] for label, act, init, _ in TRAIN_SETUPS for r in range(s["runs"])}
    results = b.train("training", list(trials.values()))
    fig, axes = new_axes(len(s["dataset"]))
    rhos = []
    for ax, ds in zip(axes, s["dataset"]):
        pts, target = [], _target(s, ds)
        for label, act, init, (ta, tw, tq) in TRAIN_SETUPS:
            var = theory_variance(_theory(ta, D, tw, tq))
            never = s["epochs"] * int(np.ceil((s["limit"] or 60000) / 128)) + s["eval_every"]
            steps = [results[trials[(ds, label, r)].id].steps_to(target) for r in range(s["runs"])]
            mean = float(np.mean([never if v is None else v for v in steps]))
            pts.append((label, var, mean))
            ax.plot([max(var, 1e-3)], [mean], "o", label=label)
        rhos.append((ds, _spearman([p[1] for p in pts], [p[2] for p in pts]), pts))
        ax.set(xscale="log", xlabel="predicted Var of JJᵀ spectrum", ylabel=f"steps to {target:.0%} test acc.",
               title=f"{dataset_label(ds)}, depth {D}")
        ax.legend(fontsize=6)
    b.figure(fig, "learning_speed", "Steps to reach a fixed test accuracy against the predicted spectrum variance "
             "(SGD momentum 0.9, lr 0.01; not reached: plotted at the budget).")
    finite = [r for _, r, _ in rhos if np.isfinite(r)]
    rho = min(finite) if len(finite) == len(rhos) else None  # undefined (all setups equally fast): not evaluated
    b.claim(*TRAIN_CLAIMS[0], "; ".join(f"{ds}: Spearman ρ = {r:.2f} over " + ", ".join(
        f"{lab} (var {v:.3g}, {st:.0f} steps)" for lab, v, st in pts) for ds, r, pts in rhos),
        rule="at_least", value=rho, target=0.5, partial=0.0)


def run(mode: str = "quick", *, store=None, backend: str = "local", seed: int = 0, progress: bool = False,
        workers: int = 1, sections=("spectra", "training")):
    """Run the reproduction at ``mode`` sizes (:data:`SIZES`) and return a :class:`PaperReport`."""
    import torch

    s = SIZES[check_mode(mode)]
    settings = dict(s, seed=seed, dataset=[dataset_label(d) for d in s["dataset"]],
                    configs=[CONFIGS[i][0] for i in s["configs"]], optimizer=f"SGD momentum 0.9 lr {s['lr']} batch 128")
    b = ReportBuilder(PAPER, TITLE, CITATION, mode, settings, store=store, backend=backend, workers=workers,
                      progress=progress)
    g = torch.Generator().manual_seed(seed)
    table = {"spectra": (lambda b: _spectra(b, s, g), SPEC_CLAIMS),
             "training": (lambda b: _training(b, s, seed), TRAIN_CLAIMS)}
    for name in sections:
        fn, claims = table[name]
        b.section(name, fn, claims)
    return b.build()
