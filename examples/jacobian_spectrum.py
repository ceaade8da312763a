"""Free-probability Jacobian spectra against real random networks (Pennington, Schoenholz & Ganguli 2017).

Draws random tanh and ReLU nets on the critical line, measures the eigenvalues of JJᵀ, and plots them against
``deepstart.theory.jacobian_spectrum``: orthogonal tanh at small q* stays near λ = 1 (dynamical isometry), ReLU and
Gaussian weights spread out with depth.

    python examples/jacobian_spectrum.py --out spectra.png
    python examples/jacobian_spectrum.py --depth 4 --width 100 --out /tmp/spectra.png   # quicker
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from deepstart.diagnose import sample_jacobian_spectrum
from deepstart.theory import jacobian_spectrum

CASES = (("tanh", "orthogonal", 1 / 64), ("tanh", "gaussian", 1 / 64), ("relu", "orthogonal", None))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--nets", type=int, default=4)
    parser.add_argument("--out", default="spectra.png")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CASES), figsize=(4 * len(CASES), 3.2))
    g = torch.Generator().manual_seed(0)
    for ax, (act, weights, q_star) in zip(axes, CASES):
        theory = jacobian_spectrum(act, args.depth, weights=weights, q_star=q_star)
        ev = np.asarray(sample_jacobian_spectrum(act, args.depth, args.width, weights=weights, q_star=q_star,
                                                 n_samples=args.nets, generator=g)).ravel()
        hi = theory.quantile(0.995)
        ax.hist(ev[(ev > 0) & (ev <= hi)], bins=60, density=True, alpha=0.5, label=f"measured, N = {args.width}")
        lam = np.linspace(hi * 1e-3, hi, 400)
        ax.plot(lam, theory.density(lam), "k-", lw=1, label="free probability")
        var = theory.moments()["variance"]
        ax.set(title=f"{act} {weights} L = {args.depth}\nVar theory {var:.3g}, measured {ev.var():.3g}", xlabel="λ")
        ax.legend(fontsize=7)
        print(f"{act:5s} {weights:10s} L={args.depth}: variance theory {var:.4g}, measured {ev.var():.4g}")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"figure written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
