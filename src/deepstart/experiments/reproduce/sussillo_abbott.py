"""Reproduction of Sussillo & Abbott 2014, "Random Walk Initialization for Training Very Deep Feedforward Networks".

With weights of std g/√N the squared norm of the back-propagated error performs a random walk,
``ln(|δ_0|²/|δ_D|²) = D ln g² + Σ_d ln z_d`` (paper eq. 6); at the gain ``g = exp(-⟨ln z⟩/2)`` the walk is unbiased
and its variance grows like ``D·Var(ln z)``, which shrinks like 1/N (THEORY.md §3). Gains and per-layer statistics
come from :func:`deepstart.theory.random_walk_gain` / :func:`deepstart.theory.random_walk_log_stats`; the tanh
finite-depth gain from :func:`deepstart.theory.random_walk.random_walk_gain_at_depth`.

Every verdict is a pure function of measured numbers (``_judge_*``), so tests can feed numbers that contradict a
claim and see it fail.
"""
from __future__ import annotations

import math

import numpy as np

from deepstart.experiments.reproduce._common import ReportBuilder, backprop_log_norms, check_mode, dataset_label, \
    legend_outside, log_ticks, mean_se, new_axes, var_se
from deepstart.experiments.reproduce.claims import Claim, bonferroni_z

PAPER = "sussillo-abbott"
TITLE = "Sussillo & Abbott 2014: Random Walk Initialization"
CITATION = ("D. Sussillo, L. F. Abbott. Random Walk Initialization for Training Very Deep Feedforward Networks. "
            "arXiv:1412.6558 (2014).")

_SCAN_FACTORS = tuple(round(math.exp(0.1 * k), 4) for k in range(-3, 4))  # g/g_pred: 0.741 … 1.350, even in ln g
# tiny: toy data, for tests (≈ 45 s CPU, mostly training). quick: 5 seeds everywhere (walks: 400 nets); measured
# 11 min wall on 2 cores shared with ~4 other jobs (walks 2 min, g scan 2 × 35 nets × 200 steps 5 min, deep tanh
# nets 5 × 500 steps 4 min); an estimated 4-5 min on 2 idle cores. full: the paper's walk sizes (N up to 200,
# D = 200; tanh N = 100, D = 200) and deeper, longer training; estimated 2-3 h on 2 cores.
# --full on 2 CPU cores with one worker: an estimate, not a measurement (printed in the gallery header)
FULL_ESTIMATE = "2–3 h (the g scan and the deep fixed-budget nets)"
SIZES = {
    "tiny": dict(widths=[20, 40], depth=8, n_nets=300, activations=["linear", "relu", "tanh"],
                 tanh_width=40, tanh_depth=8, tanh_nets=300, dataset="toy", seeds=5,
                 scan_depth=6, scan_width=16, scan_steps=40, scan_limit=1024, scan_lr=0.05,
                 deep_acts=["tanh", "relu"], deep_depth=10, deep_width=12, shallow_width=20, deep_steps=60,
                 deep_limit=256, deep_lr=0.05, deep_error=0.5),
    "quick": dict(widths=[25, 50, 100], depth=40, n_nets=400, activations=["linear", "relu", "tanh"],
                  tanh_width=100, tanh_depth=100, tanh_nets=400, dataset="mnist", seeds=5,
                  scan_depth=20, scan_width=32, scan_steps=200, scan_limit=2048, scan_lr=0.02,
                  deep_acts=["tanh"], deep_depth=30, deep_width=32, shallow_width=64, deep_steps=500,
                  deep_limit=1024, deep_lr=0.02, deep_error=0.05),
    "full": dict(widths=[50, 100, 200], depth=200, n_nets=1000, activations=["linear", "relu", "tanh"],
                 tanh_width=100, tanh_depth=200, tanh_nets=1000, dataset="mnist", seeds=5,
                 scan_depth=50, scan_width=100, scan_steps=3000, scan_limit=None, scan_lr=0.01,
                 deep_acts=["tanh", "relu"], deep_depth=100, deep_width=40, shallow_width=100, deep_steps=6000,
                 deep_limit=10000, deep_lr=0.01, deep_error=0.02),
}
_IN_FEATURES = {"toy": 64, "mnist": 784, "fashion-mnist": 784}

WALK_CLAIMS = (("Unbiased walk at the exact gain", "§2-3, eq. 8: at g = exp(-⟨ln z⟩/2) the walk of ln |δ_0|²/|δ_D|² "
                "is unbiased (mean 0); eq. 9 (linear) and eq. 11 (ReLU) approximate this g."),
               ("Variance linear in depth", "Abstract and §3: the variance of the walk grows only linearly with "
                "depth, Var ln(|δ_0|²/|δ_D|²) = D·Var(ln z)."),
               ("Variance inverse in width", "Abstract and §3: the variance is inversely proportional to the layer "
                "size, Var(ln z) ∝ 1/N (ReLU ≈ 5/(N − 4)), so wider nets walk less."))
TANH_CLAIM = ("Tanh: a gain makes the walk unbiased", "§3 and Fig. 2: tanh has no formula; the paper finds g by "
              "simulating random nets fed unit-variance inputs and calls values between 1.1 and 1.3 good. Two gains "
              "are well defined [derived]: the finite-depth gain, unbiased over all D layers from x_0 ~ N(0, I) "
              "(≈ 1.146 at N = 100, D = 200; mean field: random_walk_gain_at_depth), and the stationary gain, "
              "unbiased once the forward variance sits at q*(g) (1.1035 at N = 100, the D → ∞ limit). Judged: the "
              "simulated drift over all layers at the finite-depth gain is 0.")
SCAN_CLAIMS = tuple((f"{act}: the best-training g is the predicted g", "Training experiments (MNIST): across a scan "
                     "of g, deep nets train best near the g the random-walk analysis predicts, and training degrades "
                     f"away from it ({'eq. 11' if act == 'relu' else 'the finite-depth tanh gain'}).")
                    for act in ("relu", "tanh"))
SCAN_ALT_CLAIMS = tuple((f"{act}: the scan tells the predicted g from {alt}", "§4 (the point of the analysis is a "
                         f"gain different from the usual one): the best-training g lies significantly closer to the "
                         f"predicted g than to {alt} (one-sided z of its distance from the midpoint of the two in "
                         "ln g, against the Bonferroni threshold).") for act, alt in (("relu", "He's √2"),
                                                                                      ("tanh", "g = 1")))
BASELINE_CLAIMS = (("Predicted g trains better than the usual gain", "§4 (training experiments): the random-walk "
                    "gain trains deep nets better than the usual scalings. Same depth, width, steps and seeds: final "
                    "training loss at the usual gain (ReLU: He √2; tanh: g = 1) minus at the predicted g, paired over "
                    "seeds; superiority, worst z over activations ≥ the Bonferroni threshold."),
                   ("Deep nets: random-walk gain beats g = 1", "§4: very deep nets train with the random-walk gain "
                    "where the usual scaling struggles. Same depth, fixed parameter budget, steps and seeds: final "
                    "training error at g = 1 (LeCun, the tanh critical gain at q → 0) minus at the random-walk gain, "
                    "paired over seeds; superiority z ≥ the Bonferroni threshold."))
TRAIN_CLAIMS = (("Deep nets train with the gain", "Training experiments (MNIST, fixed parameter budget, so deeper "
                 "nets are narrower): very deep nets initialized with the random-walk gain reach near-zero training "
                 "error (tanh the focus)."),)
ALT_GAIN = {"relu": math.sqrt(2.0), "tanh": 1.0}  # the usual gain each scan is judged against
ALPHA = 0.01  # family-wise false-alarm rate of the Bonferroni criteria here


# --- judging: pure functions of measured numbers ----------------------------------------------------------------
def _judge_unbiased(rows) -> Claim:
    """``rows``: (activation, mean, se) of ln |δ_0|²/|δ_D|² at the exact gain; worst z against 0."""
    act, m, se = max(rows, key=lambda r: abs(r[1]) / r[2])
    text = "; ".join(f"{a}: {mm:.3f} ± {ss:.3f}" for a, mm, ss in rows)
    return Claim(*WALK_CLAIMS[0], f"{text} (theory 0; worst z = {abs(m) / se:.2f}, {act})", rule="zscore", value=m,
                 target=0.0, error=se)


def _judge_var_depth(rows) -> Claim:
    """``rows``: (label, depth, measured var, its SE, theory D·Var(ln z)); worst z over all rows."""
    label, d, v, se, t = max(rows, key=lambda r: abs(r[2] - r[4]) / r[3])
    return Claim(*WALK_CLAIMS[1], f"{len(rows)} (activation, N, depth) cells; worst {label} at depth {d}: "
                 f"Var = {v:.3f} ± {se:.3f} vs D·Var(ln z) = {t:.3f} (z = {abs(v - t) / se:.2f})",
                 rule="zscore", value=v, target=t, error=se)


def _judge_var_width(rows) -> Claim:
    """``rows``: (activation, N1, N2, v1, se1, v2, se2, theory ratio Var(N1)/Var(N2)); worst z of the ratio."""
    cells = []
    for act, n1, n2, v1, se1, v2, se2, t in rows:
        r = v1 / v2
        cells.append((act, n1, n2, r, r * math.hypot(se1 / v1, se2 / v2), t))
    act, n1, n2, r, se, t = max(cells, key=lambda c: abs(c[3] - c[5]) / c[4])
    text = "; ".join(f"{a} Var(N = {x}) / Var(N = {y}) = {rr:.3f} ± {ss:.3f} (theory {tt:.3f})"
                     for a, x, y, rr, ss, tt in cells)
    return Claim(*WALK_CLAIMS[2], f"{text}; worst {act} (N ratio {n2 / n1:.2f}, z = {abs(r - t) / se:.2f}); "
                 "judged: |z| ≤ 4, no partial band", rule="zscore", value=r, target=t, error=se, holds=4.0,
                 partial=4.0)


def _judge_tanh(width, depth, g_depth, drift, se, g_stat, drift_stat, se_stat) -> Claim:
    """Drift of the simulated walk over all ``depth`` layers at the finite-depth gain, against 0."""
    return Claim(*TANH_CLAIM, f"N = {width}, D = {depth}, x_0 ~ N(0, I): finite-depth gain {g_depth:.4f}: drift "
                 f"{drift:.3f} ± {se:.3f} (z = {abs(drift) / se:.2f}); stationary gain {g_stat:.4f}: drift "
                 f"{drift_stat:.3f} ± {se_stat:.3f} (not judged: its premise q = q*(g) fails in the first layers)",
                 rule="zscore", value=drift, target=0.0, error=se)


def _best_log_factor(mean_loss, u) -> float:
    """ln(g/g_pred) minimizing a parabola fitted to the 5 grid points around the smallest mean loss (fewer at an
    edge), clipped to the scanned range; the grid point itself when the fit is not convex."""
    i = int(np.nanargmin(mean_loss))
    lo = min(max(i - 2, 0), max(len(u) - 5, 0))
    uu, ll = u[lo:lo + 5], mean_loss[lo:lo + 5]
    c2, c1, _ = np.polyfit(uu, ll, 2)
    if not c2 > 0:
        return float(u[i])
    return float(np.clip(-c1 / (2 * c2), u[0], u[-1]))


def _judge_g_scan(activation: str, losses, factors, g_pred: float, *, boots: int = 1000, seed: int = 0) -> list:
    """``losses[i][j]``: final training loss at g = factors[i]·g_pred, seed j (NaN/diverged → chance ln 10; losses
    are capped there). Best ln(g/g_pred) from the mean loss (:func:`_best_log_factor`), its SE by a bootstrap over
    seeds (fixed ``seed``: the verdict is a function of the numbers), floored at a tenth of the grid step; judged by
    :func:`_judge_near` (near the prediction) and :func:`_judge_best_g` (nearer it than the usual gain)."""
    u = np.log(np.asarray(factors, dtype=float))
    x = np.asarray(losses, dtype=float)
    x = np.minimum(np.where(np.isfinite(x), x, math.log(10)), math.log(10))
    best = _best_log_factor(x.mean(1), u)
    rng = np.random.default_rng(seed)
    k = x.shape[1]
    draws = [_best_log_factor(np.take_along_axis(x, rng.integers(0, k, x.shape), 1).mean(1), u) for _ in range(boots)]
    se = max(float(np.std(draws, ddof=1)), float(np.min(np.diff(u))) / 10)
    means = ", ".join(f"{f:.2f}: {m:.3f}" for f, m in zip(factors, x.mean(1)))
    return [_judge_near(activation, best, se, g_pred, f"bootstrap over {k} seeds", means),
            _judge_best_g(activation, best, se, g_pred)]


def _judge_near(activation: str, best: float, se: float, g_pred: float, how: str = "", means: str = "") -> Claim:
    """``best`` = ln(g_best/g_pred) ± ``se``: holds when |best| ≤ 3 SE, partially ≤ 5."""
    return Claim(*SCAN_CLAIMS[0 if activation == "relu" else 1],
                 f"predicted g = {g_pred:.4f}; best g = {g_pred * math.exp(best):.4f}, ln(g_best/g_pred) = "
                 f"{best:.3f} ± {se:.3f} ({how}; z = {abs(best) / se:.2f}). Mean final training loss by g/g_pred: "
                 f"{means}", rule="zscore", value=best, target=0.0, error=se, holds=3.0, partial=5.0)


def _judge_best_g(activation: str, best: float, se: float, g_pred: float, alpha: float = ALPHA) -> Claim:
    """``best`` = ln(g_best/g_pred) ± ``se``. Holds when the best g is closer to g_pred than to the usual gain
    ``ALT_GAIN[activation]`` by z ≥ z_c (one-sided, distance from the midpoint of ln g_pred and ln g_alt),
    partially when z ≥ 1."""
    alt = ALT_GAIN[activation]
    mid = math.log(alt / g_pred) / 2
    toward = (best - mid) * (1.0 if mid < 0 else -1.0)  # > 0: the best g lies on g_pred's side of the midpoint
    zc = bonferroni_z(1, alpha)
    return Claim(*SCAN_ALT_CLAIMS[0 if activation == "relu" else 1],
                 f"predicted g = {g_pred:.4f}, usual g = {alt:.4f}, best g = {g_pred * math.exp(best):.4f} (± "
                 f"{se:.3f} in ln g); ln(g_best/g_pred) = {best:+.3f}, ln(g_best/g_usual) = {best - 2 * mid:+.3f}; "
                 f"distance from the midpoint toward the predicted g: {toward:+.3f} (z = {toward / se:+.2f}; judged: "
                 f"≥ {zc:.2f})", rule="exceeds", value=toward, target=0.0, error=se, holds=zc, partial=1.0)


def _judge_baseline(rows, claim: tuple, what: str, floor: float, alpha: float = ALPHA) -> Claim:
    """``rows`` = [(label, baseline per seed, scheme per seed)] of a quantity where lower is better (loss, error):
    baseline − scheme paired over seeds, SE at least ``floor/√n``; worst z ≥ Bonferroni z holds, ≥ 1 partially."""
    comps = []
    for label, base, ours in rows:
        d = np.asarray(base, float) - np.asarray(ours, float)
        sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
        comps.append((label, float(d.mean()), max(sd, floor) / math.sqrt(len(d)), float(np.mean(base)),
                      float(np.mean(ours))))
    zc = bonferroni_z(len(comps), alpha)
    label, m, se, *_ = min(comps, key=lambda r: r[1] / r[2])
    return Claim(*claim, f"{what}: " + "; ".join(f"{r[0]}: {r[3]:.3f} vs {r[4]:.3f}, difference {r[1]:+.3f} ± "
                                                 f"{r[2]:.3f} (z = {r[1] / r[2]:+.2f})" for r in comps) +
                 f"; worst {label}; judged: z ≥ {zc:.2f}", rule="exceeds", value=m, target=0.0, error=se, holds=zc,
                 partial=1.0)


def _judge_deep(errors: dict, threshold: float, what: str) -> Claim:
    """``errors[act]``: final training errors over seeds. Holds when, for every activation, mean + 2 SE ≤
    ``threshold`` (value: 1 − worst upper bound, target 1 − threshold); partially when ≤ 2·threshold."""
    rows = {a: mean_se(e) for a, e in errors.items()}
    worst = max(m + 2 * se for m, se in rows.values())
    text = "; ".join(f"{a}: {m:.3f} ± {se:.3f}" for a, (m, se) in rows.items())
    return Claim(*TRAIN_CLAIMS[0], f"{what}: final training error {text} (mean ± SE over seeds; threshold "
                 f"{threshold:g} on mean + 2 SE, fixed beforehand)", rule="at_least", value=1 - worst,
                 target=1 - threshold, partial=1 - 2 * threshold)


# --- measuring --------------------------------------------------------------------------------------------------
def _stats(activation: str, width: int):
    from deepstart.theory import random_walk_gain, random_walk_log_stats

    g = float(random_walk_gain(activation, width))
    mean, var = random_walk_log_stats(activation, width, g)
    return g, float(mean), float(var)


def _walk(activation, width, depth, gain, n_nets, generator):
    """:func:`backprop_log_norms` in chunks of ≤ 5·10⁷ weights (≈ 200 MB) so N = 100, D = 200 fits in memory."""
    chunk = max(1, int(5e7 // (depth * width * width)))
    return np.concatenate([backprop_log_norms(activation, width, depth, gain, min(chunk, n_nets - i),
                                              generator=generator).numpy() for i in range(0, n_nets, chunk)])


def _walks(b: ReportBuilder, s: dict, generator) -> None:
    D, widths, n0 = s["depth"], s["widths"], s["widths"][-1]
    acts = [a for a in s["activations"] if a != "tanh"]
    fig, axes = new_axes(3)
    bias, var_rows, width_rows = [], [], []
    d = np.arange(D + 1)
    for k, act in enumerate(acts):
        finals = {}
        for n in widths:
            g, _, var = _stats(act, n)
            walk = _walk(act, n, D, g, s["n_nets"], generator)
            finals[n] = walk[:, -1]
            var_rows += [(f"{act} N = {n}", dd, *var_se(walk[:, dd]), dd * var) for dd in (D // 2, D)]
            line = axes[1].plot(d, walk.var(0, ddof=1), "o", ms=2, label=f"{act} N = {n}")
            axes[1].plot([0, D], [0, D * var], "-", color=line[0].get_color(), lw=1)
            if n == n0:
                bias.append((act, *mean_se(walk[:, -1])))
                axes[0].plot(d, walk[:8].T, lw=0.6, alpha=0.5, color=f"C{k}")
                axes[0].plot(d, walk.mean(0), color=f"C{k}", lw=2, label=f"{act}, g = {g:.4f}")
                axes[0].fill_between(d, -2 * np.sqrt(d * var), 2 * np.sqrt(d * var), color=f"C{k}", alpha=0.12)
        n1, n2 = widths[0], widths[-1]
        width_rows.append((act, n1, n2, *var_se(finals[n1]), *var_se(finals[n2]), _stats(act, n1)[2] /
                           _stats(act, n2)[2]))
    axes[0].set(xlabel="layers back-propagated d", ylabel="ln |δ|² / |δ_D|²", title=f"random walks, N = {n0}")
    legend_outside(axes[0], below=True)
    axes[1].set(xlabel="depth D", ylabel="Var ln |δ_0|²/|δ_D|²", title="variance: points sim., lines D·Var(ln z)")
    legend_outside(axes[1], below=True)
    tanh = _tanh_walks(s, generator, axes[2]) if "tanh" in s["activations"] else None
    b.figure(fig, "random_walk", f"Left: back-propagated log squared error norms through {D} layers at the exact "
             "random-walk gain (thin: sample paths; thick: mean; band: theory ±2 SD). Middle: variance against "
             "depth. Right: tanh, mean walk ± 2 SE at the finite-depth and the stationary gain, x_0 ~ N(0, I).")
    b.claims += [_judge_unbiased(bias), _judge_var_depth(var_rows), _judge_var_width(width_rows)]
    if tanh is not None:
        b.claims.append(_judge_tanh(*tanh))


def _tanh_walks(s: dict, generator, ax):
    from deepstart.theory import random_walk_gain
    from deepstart.theory.random_walk import random_walk_gain_at_depth

    n, D = s["tanh_width"], s["tanh_depth"]
    out = [n, D]
    for g, name in ((random_walk_gain_at_depth("tanh", n, D), "finite-depth"), (random_walk_gain("tanh", n),
                                                                                 "stationary")):
        walk = _walk("tanh", n, D, g, s["tanh_nets"], generator)
        m, se = walk.mean(0), walk.std(0, ddof=1) / math.sqrt(len(walk))
        ax.plot(np.arange(D + 1), m, label=f"{name} g = {g:.4f}")
        ax.fill_between(np.arange(D + 1), m - 2 * se, m + 2 * se, alpha=0.2)
        out += [g, *mean_se(walk[:, -1])]
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="layers back-propagated d", ylabel="mean ln |δ|² / |δ_D|²", title=f"tanh, N = {n}, D = {D}")
    legend_outside(ax, below=True)
    return out


def _final(res, key: str, diverged_value: float) -> float:
    value = res.final.get(key)
    return diverged_value if res.diverged or value is None or not math.isfinite(value) else float(value)


def _training(b: ReportBuilder, s: dict, seed: int) -> None:
    from deepstart.experiments.trial import Trial
    from deepstart.theory import random_walk_gain
    from deepstart.theory.random_walk import random_walk_gain_at_depth

    n_in, seeds = _IN_FEATURES.get(s["dataset"], 784), range(seed, seed + s["seeds"])
    preds = {"relu": random_walk_gain("relu", s["scan_width"]),
             "tanh": random_walk_gain_at_depth("tanh", s["scan_width"], s["scan_depth"])}
    scan = dict(dataset=s["dataset"], depth=s["scan_depth"], width=s["scan_width"], steps=s["scan_steps"],
                eval_every=max(1, s["scan_steps"] // 10), limit=s["scan_limit"], test_limit=0, lr=s["scan_lr"],
                init="variance-scaling")
    trials = {("scan", act, f, r): Trial(activation=act, init_params={"scale": (f * g) ** 2}, seed=r, **scan)
              for act, g in preds.items() for f in _SCAN_FACTORS for r in seeds}
    trials.update({("alt", act, r): Trial(activation=act, init_params={"scale": ALT_GAIN[act] ** 2}, seed=r, **scan)
                   for act in preds for r in seeds})
    deep_acts = [a for a in s["deep_acts"] if b.usable_inits(a, [f"random-walk(activation={a})"],
                                                             in_features=n_in, width=s["deep_width"])]
    deep = dict(dataset=s["dataset"], depth=s["deep_depth"], width=s["deep_width"], steps=s["deep_steps"],
                eval_every=max(1, math.ceil((s["deep_limit"] or 60000) / 128)), limit=s["deep_limit"], test_limit=0,
                lr=s["deep_lr"])
    trials.update({("deep", a, r): Trial(activation=a, init=f"random-walk(activation={a})", seed=r, **deep)
                   for a in deep_acts for r in seeds})
    trials.update({("deep-lecun", a, r): Trial(activation=a, init="lecun", seed=r, **deep) for a in deep_acts
                   for r in seeds})
    results = b.train("training", list(trials.values()))
    fig, axes = new_axes(3)
    loss = lambda key: _final(results[trials[key].id], "train_loss", math.log(10))  # noqa: E731
    base_rows = []
    for ax, (act, g) in zip(axes, preds.items()):
        losses = [[loss(("scan", act, f, r)) for r in seeds] for f in _SCAN_FACTORS]
        alt = [loss(("alt", act, r)) for r in seeds]
        b.claims += _scan_panel(ax, act, g, losses, s, alt)
        base_rows.append((f"{act} g = {ALT_GAIN[act]:.3f} vs {g:.3f}", alt, losses[_SCAN_FACTORS.index(1.0)]))
    b.claims.append(_judge_baseline(base_rows, BASELINE_CLAIMS[0], f"final training loss, depth {s['scan_depth']}, "
                                    f"width {s['scan_width']}, {s['scan_steps']} steps", floor=0.01))
    errors, lecun = {}, {}
    for k, act in enumerate(deep_acts):
        runs = [results[trials[("deep", act, r)].id] for r in seeds]
        errors[act] = [1 - _final(res, "train_acc", 0.1) for res in runs]
        lecun[act] = [1 - _final(results[trials[("deep-lecun", act, r)].id], "train_acc", 0.1) for r in seeds]
        for j, res in enumerate(runs):
            pts = [(h["step"], 1 - h["train_acc"]) for h in res.history if h.get("train_acc") is not None]
            axes[2].plot(*zip(*pts), color=f"C{k}", lw=0.8, label="_nolegend_" if j else f"{act}, random walk")
        for j, r in enumerate(seeds):
            res = results[trials[("deep-lecun", act, r)].id]
            pts = [(h["step"], 1 - h["train_acc"]) for h in res.history if h.get("train_acc") is not None]
            axes[2].plot(*zip(*pts), color=f"C{k}", ls="--", lw=0.8, label="_nolegend_" if j else f"{act}, g = 1")
    axes[2].axhline(s["deep_error"], color="k", ls=":", lw=1)
    axes[2].set(yscale="log", xlabel="step", ylabel="training error", title="fixed budget: random walk vs g = 1")
    legend_outside(axes[2], below=True)
    b.figure(fig, "training", f"{dataset_label(s['dataset'])}, SGD batch 128, {s['seeds']} seeds. Left, middle: final "
             "training loss (mean ± SE) across a scan of g (all layers std g/√fan_in), dashed: the predicted g, band: "
             "the best g ± SE, square: the usual gain (ReLU √2, tanh 1). Right: training error (running mean over the "
             "last epoch) of deep narrow nets at the random-walk gain (solid) and at g = 1 (dashed).")
    if errors:
        w = s["shallow_width"]
        b.claims.append(_judge_deep(errors, s["deep_error"], f"depth {s['deep_depth']}, width {s['deep_width']} "
                                    f"({_weights(n_in, s['deep_depth'], s['deep_width'])} weights ≈ the budget of 2 "
                                    f"hidden layers of width {w}: {_weights(n_in, 2, w)}), random-walk init "
                                    f"(stationary gain per fan-in), {s['deep_steps']} steps on {s['deep_limit']} "
                                    "examples"))
        b.claims.append(_judge_baseline([(a, lecun[a], errors[a]) for a in deep_acts], BASELINE_CLAIMS[1],
                                        f"final training error, depth {s['deep_depth']}, width {s['deep_width']}, "
                                        f"{s['deep_steps']} steps", floor=math.sqrt(0.25 / (s["deep_limit"] or 60000))))


def _weights(n_in: int, depth: int, width: int) -> int:
    """Weights of an MLP with ``depth`` hidden layers of ``width`` and 10 outputs (biases left out)."""
    return n_in * width + (depth - 1) * width * width + 10 * width


def _scan_panel(ax, act: str, g: float, losses, s: dict, alt) -> list:
    claims = _judge_g_scan(act, losses, _SCAN_FACTORS, g)
    claim = claims[0]
    x = np.minimum(np.asarray(losses), math.log(10))
    ax.errorbar(np.asarray(_SCAN_FACTORS) * g, x.mean(1), x.std(1, ddof=1) / math.sqrt(x.shape[1]), fmt="o-")
    a = np.minimum(np.asarray(alt, float), math.log(10))
    ax.errorbar([ALT_GAIN[act]], [a.mean()], [a.std(ddof=1) / math.sqrt(len(a))], fmt="s", color="C2",
                label=f"usual g = {ALT_GAIN[act]:.3f}")
    ax.axvline(g, color="k", ls="--", lw=1, label=f"predicted {g:.3f}")
    best = _best_log_factor(x.mean(1), np.log(np.asarray(_SCAN_FACTORS)))
    ax.axvspan(g * math.exp(best - claim.error), g * math.exp(best + claim.error), color="C1", alpha=0.3,
               label="best ± SE")
    ax.set(xscale="log", xlabel="g", ylabel="final training loss",
           title=f"{act}: D = {s['scan_depth']}, N = {s['scan_width']}, {s['scan_steps']} steps")
    lo, hi = min(ALT_GAIN[act], g * _SCAN_FACTORS[0]), g * _SCAN_FACTORS[-1]
    log_ticks(ax, [v for v in (0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.4, 2.8) if lo * 0.97 <= v <= hi * 1.03])
    legend_outside(ax, below=True)
    return claims


def run(mode: str = "quick", *, store=None, backend: str = "local", seed: int = 0, progress: bool = False,
        workers: int = 1, device=None, reuse_stale: bool = False, sections=("walks", "training")):
    """Run the reproduction at ``mode`` sizes (:data:`SIZES`) and return a :class:`PaperReport`."""
    import torch

    s = SIZES[check_mode(mode)]
    settings = dict(s, seed=seed, dataset=dataset_label(s["dataset"]), weights="Gaussian std g/√N",
                    optimizer=f"SGD lr {s['scan_lr']} (scan), {s['deep_lr']} (deep) batch 128",
                    scan_factors=list(_SCAN_FACTORS))
    b = ReportBuilder(PAPER, TITLE, CITATION, mode, settings, store=store, backend=backend, workers=workers,
                      progress=progress, device=device, reuse_stale=reuse_stale)
    g = torch.Generator().manual_seed(seed)
    table = {"walks": (lambda b: _walks(b, s, g), WALK_CLAIMS + ((TANH_CLAIM,) if "tanh" in s["activations"] else ())),
             "training": (lambda b: _training(b, s, seed), SCAN_CLAIMS + SCAN_ALT_CLAIMS + BASELINE_CLAIMS +
                          TRAIN_CLAIMS)}
    for name in sections:
        fn, claims = table[name]
        b.section(name, fn, claims)
    return b.build()
