"""Phase diagram: deepstart's vectorized grid vs a Python loop over the scalar functions, in one run.

Target (issue 3): a 256 × 256 (σ_w, σ_b) tanh phase diagram (χ₁, q*, ξ_c) at least 50× faster than looping
``fixed_point`` / ``chi_1`` / ``depth_scales`` point by point, and well under a second on one core.
The loop is timed on a random subset of grid points (``--loop-points``) and extrapolated per point; the script
checks that the two agree on that subset. Roofline: memory bandwidth for a lower bound on the data the grid
computation touches, one float64 pass over grid × quadrature nodes (``order`` = 24 in ``phase_diagram``); the
fixed-point iterations and the ξ_c integrals make the real traffic several times that, so the fraction is a lower
bound. Prints a human line, then one JSON line.

    python benchmarks/bench_phase_diagram.py
    python benchmarks/bench_phase_diagram.py --size 128 --loop-points 64
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from deepstart.theory import chi_1, depth_scales, fixed_point, phase_diagram

from _roofline import bandwidth, report


def _vectorized(sw, sb, repeats):
    phase_diagram("tanh", sw[:8], sb[:8])  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pd = phase_diagram("tanh", sw, sb)
        times.append(time.perf_counter() - t0)
    return min(times), pd


def _loop(points):
    t0 = time.perf_counter()
    rows = []
    for sw, sb in points:
        q = fixed_point("tanh", sw, sb)
        chi = chi_1("tanh", sw, sb, q_star=q)
        rows.append((q, chi, depth_scales("tanh", sw, sb).xi_c))
    return time.perf_counter() - t0, np.array(rows, dtype=float)


def _loop_q_chi(points):
    """The cheaper half of the loop alone (q*, χ₁; no ξ_c), to show the ratio is not just slow 2-D integrals."""
    t0 = time.perf_counter()
    for sw, sb in points:
        chi_1("tanh", sw, sb, q_star=fixed_point("tanh", sw, sb))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--loop-points", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    sw = np.linspace(0.05, 4.0, args.size)
    sb = np.linspace(0.0, 1.0, args.size)
    t_vec, pd = _vectorized(sw, sb, args.repeats)

    rng = np.random.default_rng(args.seed)
    idx = rng.choice(args.size * args.size, size=min(args.loop_points, args.size ** 2), replace=False)
    i, j = np.unravel_index(idx, (args.size, args.size))
    t_loop_subset, rows = _loop(list(zip(sw[i], sb[j])))
    t_loop = t_loop_subset / len(idx) * args.size ** 2
    t_loop_qchi = _loop_q_chi(list(zip(sw[i], sb[j]))) / len(idx) * args.size ** 2

    grid = np.stack([pd.q_star[i, j], pd.chi_1[i, j], pd.xi_c[i, j]], axis=1)
    finite = np.isfinite(rows) & np.isfinite(grid)
    rel = np.abs(grid[finite] - rows[finite]) / np.maximum(np.abs(rows[finite]), 1e-12)
    same_inf = bool(np.all(np.isfinite(rows) == np.isfinite(grid)))
    ratio = t_loop / t_vec
    result = {
        "benchmark": "phase_diagram", "activation": "tanh", "grid": [args.size, args.size],
        "vectorized_s": round(t_vec, 4), "loop_s_extrapolated": round(t_loop, 2),
        "loop_points_timed": int(len(idx)), "ratio": round(ratio, 1), "target_ratio": 50,
        "loop_q_chi_only_s_extrapolated": round(t_loop_qchi, 2), "ratio_vs_q_chi_only": round(t_loop_qchi / t_vec, 1),
        "max_rel_diff": float(rel.max()) if rel.size else 0.0, "same_infinities": same_inf,
        "python": platform.python_version(), "machine": platform.machine(),
    }
    print(f"tanh phase diagram {args.size}x{args.size}: vectorized {t_vec:.3f} s, scalar loop ≈ {t_loop:.1f} s "
          f"(from {len(idx)} points) → {ratio:.0f}× (target ≥ 50×); q*/χ₁ alone ≈ {t_loop_qchi:.1f} s → "
          f"{t_loop_qchi / t_vec:.0f}×; max rel. diff {result['max_rel_diff']:.2e}")
    report("phase_diagram", baseline_s=t_loop, ours_s=t_vec, device="cpu", nbytes=8.0 * args.size ** 2 * 24,
           bandwidth=bandwidth(), extra=result)


if __name__ == "__main__":
    main()
