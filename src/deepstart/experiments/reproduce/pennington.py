"""Reproduction of Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through dynamical
isometry: theory and practice".

Free-probability densities of the input-output Jacobian's squared singular values
(:func:`deepstart.theory.jacobian_spectrum`, THEORY.md §2) against spectra measured on random networks
(:func:`deepstart.diagnose.sample_jacobian_spectrum`) for ReLU, hard-tanh and tanh with orthogonal and Gaussian weights
on the critical line; the spectrum's variance against depth; and learning speed against the predicted variance.
"""
from __future__ import annotations

import numpy as np

from typing import NamedTuple

from deepstart.experiments.reproduce._common import ReportBuilder, check_mode, dataset_label, legend_outside, \
    new_axes
from deepstart.experiments.reproduce.claims import Claim, bonferroni_z

PAPER = "pennington"
TITLE = "Pennington, Schoenholz & Ganguli 2017: Dynamical Isometry"
CITATION = ("J. Pennington, S. S. Schoenholz, S. Ganguli. Resurrecting the sigmoid in deep learning through "
            "dynamical isometry: theory and practice. NeurIPS 2017.")

# (label, activation, weights, q*): q* = None for ReLU (critical point σ_w² = 2, σ_b = 0)
CONFIGS = (("tanh orth q*=1/64", "tanh", "orthogonal", 1 / 64), ("tanh gauss q*=1/64", "tanh", "gaussian", 1 / 64),
           ("tanh orth q*=1", "tanh", "orthogonal", 1.0), ("hard-tanh orth q*=1", "hard_tanh", "orthogonal", 1.0),
           ("hard-tanh gauss q*=1", "hard_tanh", "gaussian", 1.0), ("relu orth", "relu", "orthogonal", None),
           ("relu gauss", "relu", "gaussian", None))
ALPHA = 0.01  # family-wise false-alarm rate of every worst-of-m z criterion here (claims.bonferroni_z)
# n_samples: independent random nets per (config, depth); the SEs are over nets
# --full on 2 CPU cores with one worker: an estimate, not a measurement (printed in the gallery header)
FULL_ESTIMATE = "1.5–3 h (training at depth 200; spectra at widths 400 and 800)"
SIZES = {
    "tiny": dict(width=48, depths=[2, 4], n_samples=4, configs=[0, 1, 5], dataset=["toy"], train_depth=8,
                 train_width=16, runs=2, epochs=3, lr=0.1, limit=1024, test_limit=256, eval_every=2, target=0.3,
                 n_growth=16, speed_epochs=3),
    "quick": dict(width=200, depths=[2, 8, 32], n_samples=32, configs=list(range(len(CONFIGS))),
                  dataset=["mnist", "cifar10"], train_depth=50, train_width=128, runs=5, epochs=1, lr=0.01,
                  limit=10000, test_limit=2000, eval_every=10, target={"mnist": 0.6, "cifar10": 0.3}, n_growth=128,
                  speed_epochs=4),
    # full: the paper's width 400 and depths to 128; est. 1-2 h on 2 cores (training at depth 200 dominates)
    "full": dict(width=400, depths=[2, 8, 32, 128], n_samples=32, configs=list(range(len(CONFIGS))),
                 dataset=["mnist", "cifar10"], train_depth=200, train_width=400, runs=5, epochs=5, lr=0.01, limit=None,
                 test_limit=2000, eval_every=50, target={"mnist": 0.6, "cifar10": 0.3}, n_growth=128, speed_epochs=10),
}
SPEC_CLAIMS = (("Theory densities match measured spectra", "§2, Fig. 2: free probability predicts the density of "
                "the squared singular values of the input-output Jacobian of deep random nets (sigmoidal orthogonal "
                "nets). Judged on the whole distribution: the Kolmogorov–Smirnov distance between the measured "
                "eigenvalues (width 2N) and the theory's distribution function (its density integrated) is at most "
                "0.03 at every config and depth."),
               ("ReLU and Gaussian weights cannot reach isometry", "§2 (theory) and Fig. 1: for ReLU (any weights) and for "
                "Gaussian weights the spread of the Jacobian's squared singular values grows with depth at "
                "criticality (σ²_JJᵀ ∝ L), so dynamical isometry is out of reach; every such config is judged."),
               ("Orthogonal tanh at small q* is nearly isometric", "§2-3: with orthogonal weights and small q* the "
                "variance stays far below the Gaussian and ReLU cases (judged: at least a factor 10 at the deepest "
                "depth)."),
               ("Spread grows at the free-probability rate", "§2 (the variance σ²_JJᵀ of the spectrum): at criticality the variance "
                "grows linearly, σ²_JJᵀ = L(μ₂/μ₁² − 1 − s₁): ReLU orthogonal L, Gaussian 2L; hard-tanh L(1−p)/p, "
                "L/p (THEORY.md §2); each config's growth rate against its predicted rate (|z| ≤ the Bonferroni "
                "threshold, no partial band; n_growth nets per depth so that twice the rate fails)."))
TRAIN_CLAIMS = (("Orthogonal tanh learns faster than ReLU", "§3 and Fig. 4-5: critical orthogonal tanh nets with small "
                 "q* (dynamical isometry) learn faster than ReLU nets (He init). Steps to a fixed test accuracy "
                 "(MNIST), ratio ReLU / tanh per seed; judged: mean log₁₀ ratio > 0, one-sided z ≥ the Bonferroni "
                 "threshold."),
                ("Orthogonal tanh learns orders of magnitude faster", "§3 and Fig. 4 (\"learning speed ... can be "
                 "orders of magnitude faster\"): the steps ratio ReLU / orthogonal tanh is at least 10: mean log₁₀ "
                 "ratio − 1 ≥ the Bonferroni z · SE (a run that never reaches the target counts at the budget, so the "
                 "measured ratio is a lower bound)."),
                ("Learning speed follows the spectrum", "§3 and Fig. 4-5: nets whose predicted Jacobian spectrum is "
                 "narrower train faster (steps to a fixed accuracy increase with the predicted variance; per seed, "
                 "Spearman ρ over the setups)."))
KS_MAX = 0.03  # the density claim's largest Kolmogorov–Smirnov distance
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
    """Eigenvalues of JJᵀ of ``n_samples`` random nets, the mean of the per-net spectrum variances and its SE over nets
    (each net's empirical spectral variance estimates the limit law's variance; the nets are independent)."""
    from deepstart.diagnose import sample_jacobian_spectrum

    ev = np.asarray(sample_jacobian_spectrum(activation, depth, width, weights=weights, q_star=q_star,
                                             n_samples=n_samples, generator=generator), dtype=float)
    per = ev.var(axis=1)
    se = float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else float("nan")
    return ev.ravel(), float(per.mean()), se


def theory_cdf(spec, lam) -> np.ndarray:
    """P(eigenvalue ≤ λ) of ``spec``: its continuous density integrated over log λ (trapezoid on 4000 points between
    the smallest λ asked for and the edge) plus its atoms. Integrates :meth:`JacobianSpectrum.density` itself:
    ``JacobianSpectrum.cdf`` disagrees with the integrated density for narrow deep spectra (tanh orthogonal
    q* = 1/64, L = 32: median 1.086 against 1.006)."""
    lam = np.asarray(lam, dtype=float)
    top = spec.lambda_max
    lo = float(np.log(max(lam[lam > 0].min(), top * 1e-300))) - 1.0
    t = np.linspace(lo, np.log(top), 4000)
    f = spec.density(np.exp(t)) * np.exp(t)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(t))])
    out = np.interp(np.log(np.maximum(lam, 1e-300)), t, cum, left=0.0, right=cum[-1])
    for loc, mass in spec.atoms:
        out = out + mass * (lam >= loc)
    return out


def ks_distance(ev, spec) -> float:
    """sup |F_measured − F_theory| over the pooled eigenvalues ``ev`` (the Kolmogorov–Smirnov distance), both CDFs
    compared just at and just below every measured value, so an atom (a jump in both) is matched as a whole.
    Eigenvalues within 1e-9·λ_max of an atom of the theory count at it: the eigensolver returns the atom at 0 as
    ±1e-17 and the one at σ_w^{2L} as σ_w^{2L}(1 ± 1e-15)."""
    ev = np.asarray(ev, dtype=float).ravel()
    tol = 1e-9 * spec.lambda_max
    for loc, _ in spec.atoms:
        ev = np.where(np.abs(ev - loc) <= tol, loc, ev)
    ev = np.sort(ev)
    xs = np.unique(ev)
    emp_at, emp_below = (np.searchsorted(ev, xs, side=s) / len(ev) for s in ("right", "left"))
    th_at = theory_cdf(spec, xs)
    th_below = th_at - sum(mass * (xs == loc) for loc, mass in spec.atoms)
    return float(max(np.max(np.abs(emp_at - th_at)), np.max(np.abs(emp_below - th_below))))


def judge_density(rows, limit: float = KS_MAX) -> Claim:
    """``rows`` = [(label, depth, KS distance)]: the worst distance ≤ ``limit`` holds (rule at_least on 1 − D; no
    partial band)."""
    lab, d, ks = max(rows, key=lambda r: r[2])
    return Claim(*SPEC_CLAIMS[0], "KS distance, measured eigenvalues (width 2N) vs theory: " + "; ".join(
        f"{r[0]} L={r[1]}: {r[2]:.4f}" for r in rows) + f"; worst {lab} L={d}; judged: ≤ {limit:g}",
        rule="at_least", value=1.0 - ks, target=1.0 - limit)


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
    legend_outside(ax)
    b.figure(fig, "variance_depth", "Variance of the JJᵀ spectrum against depth: points measured, lines theory.")
    ks = [(lab, d, ks_distance(_measure(a, d, 2 * s["width"], w, q, s["n_samples"], generator)[0], _theory(a, d, w, q)))
          for lab, a, w, q in configs if a != "relu" and w == "orthogonal" for d in s["depths"]]
    if ks:
        b.claims.append(judge_density(ks))
    lo = min(s["depths"])
    grow = []
    for lab, a, w, q in configs:
        if a == "relu" or w == "gaussian":  # n_growth nets per depth: the rate's SE small enough that 2× fails
            at = [_measure(a, d, s["width"], w, q, s["n_growth"], generator)[1:] for d in (lo, L)]
            grow.append(Growth(lab, lo, L, *at[0], rows[(lab, lo)][2], *at[1], rows[(lab, L)][2]))
    if grow and L > lo:
        b.claims.append(judge_no_isometry(grow))
        b.claims.append(judge_linear_growth(grow))
    iso = rows.get(("tanh orth q*=1/64", L))
    other = [(lab, rows[(lab, L)]) for lab, a, w, q in configs if (a == "relu" or w == "gaussian")]
    if iso and other:
        b.claims.append(judge_isometric(L, iso, other))


class Growth(NamedTuple):
    """Spectrum variance of one config at the shallowest and deepest depth, measured (± SE) and predicted."""
    label: str
    lo: int
    hi: int
    v_lo: float
    se_lo: float
    t_lo: float
    v_hi: float
    se_hi: float
    t_hi: float

    @property
    def slope(self) -> tuple[float, float, float]:
        """(measured slope dVar/dL, its SE, predicted slope) between the two depths."""
        dl = self.hi - self.lo
        return (self.v_hi - self.v_lo) / dl, float(np.hypot(self.se_hi, self.se_lo)) / dl, (self.t_hi - self.t_lo) / dl


def judge_no_isometry(rows, alpha: float = ALPHA) -> Claim:
    """Every ReLU/Gaussian config's spectrum variance grows with depth: worst slope/SE ≥ Bonferroni z (one-sided)."""
    zc = bonferroni_z(len(rows), alpha)
    w = min(rows, key=lambda r: r.slope[0] / r.slope[1])
    m, se, _ = w.slope
    return Claim(*SPEC_CLAIMS[1], "growth of Var(JJᵀ spectrum) per layer, L = " + f"{w.lo}→{w.hi}: " + "; ".join(
        f"{r.label}: {r.slope[0]:.3g} ± {r.slope[1]:.2g} (z = {r.slope[0] / r.slope[1]:.1f})" for r in rows) +
        f"; judged: worst z ≥ {zc:.2f}", rule="exceeds", value=m, target=0.0, error=se, holds=zc, partial=1.0)


def judge_linear_growth(rows, alpha: float = ALPHA) -> Claim:
    """Every ReLU/Gaussian config's growth rate against the free-probability rate: worst |z| ≤ Bonferroni z."""
    zc = bonferroni_z(len(rows), alpha)
    w = max(rows, key=lambda r: abs(r.slope[0] - r.slope[2]) / r.slope[1])
    m, se, t = w.slope
    return Claim(*SPEC_CLAIMS[3], "measured / predicted growth rate: " + "; ".join(
        f"{r.label}: {r.slope[0]:.3g} ± {r.slope[1]:.2g} vs {r.slope[2]:.3g} ({r.slope[0] / r.slope[2]:.2f}×, "
        f"z = {(r.slope[0] - r.slope[2]) / r.slope[1]:+.1f})" for r in rows) +
        f"; judged: worst |z| ≤ {zc:.2f} (Bonferroni, {len(rows)} configs)", rule="zscore", value=m, target=t,
        error=se, holds=zc, partial=zc)


def judge_isometric(L: int, iso: tuple, others: list, alpha: float = ALPHA) -> Claim:
    """log₁₀(smallest ReLU/Gaussian variance / orthogonal tanh q*=1/64 variance) − 1 (a factor 10) ≥ z_c SE."""
    lab, (v, se_v, _) = min(others, key=lambda r: r[1][0])
    ratio = v / iso[0]
    se = float(np.hypot(se_v / v, iso[1] / iso[0]) / np.log(10))
    zc = bonferroni_z(1, alpha)
    return Claim(*SPEC_CLAIMS[2], f"L = {L}: Var tanh orth q*=1/64 = {iso[0]:.3g} ± {iso[1]:.2g}, smallest "
                 f"ReLU/Gaussian ({lab}) = {v:.3g} ± {se_v:.2g}: ratio {ratio:.3g}; judged: log₁₀ ratio − 1 ≥ "
                 f"{zc:.2f} SE", rule="exceeds", value=float(np.log10(ratio)), target=1.0, error=se, holds=zc,
                 partial=1.0)


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
    rhos, table = {}, {}
    for ax, ds in zip(axes, s["dataset"]):
        pts, target = [], _target(s, ds)
        for label, act, init, (ta, tw, tq) in TRAIN_SETUPS:
            var = theory_variance(_theory(ta, D, tw, tq))
            never = s["epochs"] * int(np.ceil((s["limit"] or 60000) / 128)) + s["eval_every"]
            steps = [results[trials[(ds, label, r)].id].steps_to(target) for r in range(s["runs"])]
            steps = [never if v is None else v for v in steps]
            mean = float(np.mean(steps))
            pts.append((label, var, mean, steps))
            ax.plot([max(var, 1e-3)], [mean], "o", label=label)
        rhos[ds] = [_spearman([p[1] for p in pts], [p[3][r] for p in pts]) for r in range(s["runs"])]
        ax.set(xscale="log", xlabel="predicted Var of JJᵀ spectrum", ylabel=f"steps to {target:.0%} test acc.",
               title=f"{dataset_label(ds)}, depth {D}")
        legend_outside(ax, below=True)
        table[ds] = pts
    b.figure(fig, "learning_speed", "Steps to reach a fixed test accuracy against the predicted spectrum variance "
             f"(SGD momentum 0.9, lr {s['lr']}; mean of {s['runs']} seeds; not reached: plotted at the budget).")
    b.claims += judge_speed_ratio(_speed_ratios(b, s, seed))
    b.claims.append(judge_learning_speed(rhos, table))


def _speed_ratios(b: ReportBuilder, s: dict, seed: int):
    """Per seed log₁₀(steps ReLU He / steps orthogonal tanh q* = 1/64) to the MNIST target over ``speed_epochs``
    (same data order per seed); a run that never gets there counts at the budget + one interval (a lower bound)."""
    from deepstart.experiments.trial import Trial

    ds, (tanh, relu) = s["dataset"][0], (TRAIN_SETUPS[0], TRAIN_SETUPS[3])
    trials = {(label, r): Trial(dataset=ds, arch="mlp", depth=s["train_depth"], width=s["train_width"], activation=act,
                                init=init, epochs=s["speed_epochs"], limit=s["limit"], test_limit=s["test_limit"],
                                seed=seed + r, eval_every=s["eval_every"], lr=s["lr"], momentum=0.9)
              for label, act, init, _ in (tanh, relu) for r in range(s["runs"])}
    results = b.train("training-speed", list(trials.values()))
    never = s["speed_epochs"] * int(np.ceil((s["limit"] or 60000) / 128)) + s["eval_every"]
    steps = {k: results[t.id].steps_to(_target(s, ds)) for k, t in trials.items()}
    steps = {k: (never if v is None else max(v, 1)) for k, v in steps.items()}
    runs = [(steps[(relu[0], r)], steps[(tanh[0], r)]) for r in range(s["runs"])]
    return runs, never, _target(s, ds)


def judge_speed_ratio(measured, alpha: float = ALPHA) -> list:
    """``measured`` = ([(steps ReLU, steps tanh) per seed], budget, target): mean log₁₀ ratio and its SE over seeds
    (floor: log₁₀ of one evaluation interval's resolution, 0.05); superiority (> 0) and order of magnitude (> 1),
    each one-sided z ≥ the Bonferroni z over the two (partial ≥ 1)."""
    runs, never, target = measured
    lr = np.log10([a / b for a, b in runs])
    m = float(lr.mean())
    se = max(float(lr.std(ddof=1)) if len(lr) > 1 else 0.0, 0.05) / np.sqrt(len(lr))
    zc = bonferroni_z(2, alpha)
    censored = sum(a >= never for a, _ in runs)
    text = (f"steps to {target:.0%} (ReLU He, orthogonal tanh) per seed: " + ", ".join(f"({a}, {b})" for a, b in runs)
            + f"; ratio 10^{m:.2f} = {10 ** m:.1f}× (log₁₀ {m:.2f} ± {se:.2f})" +
            (f"; {censored} ReLU run(s) never reached it within {never} steps: the ratio is a lower bound"
             if censored else ""))
    return [Claim(*TRAIN_CLAIMS[0], text + f"; judged: log₁₀ ratio/SE ≥ {zc:.2f}", rule="exceeds", value=m, target=0.0,
                  error=se, holds=zc, partial=1.0),
            Claim(*TRAIN_CLAIMS[1], text + f"; judged: (log₁₀ ratio − 1)/SE ≥ {zc:.2f}", rule="exceeds", value=m,
                  target=1.0, error=se, holds=zc, partial=1.0)]


def judge_learning_speed(rhos: dict, table: dict | None = None, alpha: float = ALPHA) -> Claim:
    """``rhos[dataset]`` = per-seed Spearman ρ(predicted variance, steps to target) over the setups (nan: no setup
    reached the target or all tied, counted as ρ = 0). Worst dataset's mean ρ must exceed 0 by the Bonferroni z."""
    stats = {}
    for ds, rs in rhos.items():
        r = np.nan_to_num(np.asarray(rs, float), nan=0.0)
        se = max(float(r.std(ddof=1)) if len(r) > 1 else 1.0, 0.1) / np.sqrt(len(r))  # floor: ρ over 4 setups is coarse
        stats[ds] = (float(r.mean()), se)
    zc = bonferroni_z(len(stats), alpha)
    ds, (m, se) = min(stats.items(), key=lambda kv: kv[1][0] / kv[1][1])
    detail = "; ".join(f"{d}: mean ρ = {v[0]:+.2f} ± {v[1]:.2f}" + (" over " + ", ".join(
        f"{lab} (var {var:.3g}, {st:.0f} steps)" for lab, var, st, _ in table[d]) if table else "")
        for d, v in stats.items())
    return Claim(*TRAIN_CLAIMS[2], detail + f"; judged: worst mean ρ/SE ≥ {zc:.2f}", rule="exceeds", value=m,
                 target=0.0, error=se, holds=zc, partial=1.0)


def run(mode: str = "quick", *, store=None, backend: str = "local", seed: int = 0, progress: bool = False,
        workers: int = 1, device=None, reuse_stale: bool = False, sections=("spectra", "training")):
    """Run the reproduction at ``mode`` sizes (:data:`SIZES`) and return a :class:`PaperReport`."""
    import torch

    s = SIZES[check_mode(mode)]
    settings = dict(s, seed=seed, dataset=[dataset_label(d) for d in s["dataset"]],
                    configs=[CONFIGS[i][0] for i in s["configs"]], optimizer=f"SGD momentum 0.9 lr {s['lr']} batch 128")
    b = ReportBuilder(PAPER, TITLE, CITATION, mode, settings, store=store, backend=backend, workers=workers,
                      progress=progress, device=device, reuse_stale=reuse_stale)
    g = torch.Generator().manual_seed(seed)
    table = {"spectra": (lambda b: _spectra(b, s, g), SPEC_CLAIMS),
             "training": (lambda b: _training(b, s, seed), TRAIN_CLAIMS)}
    for name in sections:
        fn, claims = table[name]
        b.section(name, fn, claims)
    return b.build()
