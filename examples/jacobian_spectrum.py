"""Free-probability Jacobian spectra against real random networks (Pennington, Schoenholz & Ganguli 2017).

Draws random tanh and ReLU nets on the critical line, measures the eigenvalues of JJᵀ, and plots them against
``deepstart.theory.jacobian_spectrum``: orthogonal tanh at small q* stays near λ = 1 (dynamical isometry), ReLU and
Gaussian weights spread out with depth. A progress bar (stderr) counts the sampled networks; the figure goes to
``--out`` (default: a new temporary folder; the path is printed last).

    python examples/jacobian_spectrum.py                                   # depth 16, width 400: seconds to a minute
    python examples/jacobian_spectrum.py --depth 4 --width 100 --out figures/spectra.png   # quicker
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch
from tqdm.auto import tqdm

from deepstart.diagnose import sample_jacobian_spectrum
from deepstart.theory import jacobian_spectrum

CASES = (("tanh", "orthogonal", 1 / 64), ("tanh", "gaussian", 1 / 64), ("relu", "orthogonal", None))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--nets", type=int, default=4)
    parser.add_argument("--out", default=None, help="PNG file to write (default: spectra.png in a new temp folder)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CASES), figsize=(4 * len(CASES), 3.2))
    g = torch.Generator().manual_seed(0)
    bar = tqdm(total=len(CASES) * args.nets, desc="sampling Jacobians", unit="net")
    for ax, (act, weights, q_star) in zip(axes, CASES):
        theory = jacobian_spectrum(act, args.depth, weights=weights, q_star=q_star)
        bar.set_postfix_str(f"{act} {weights}")
        draws = []
        for _ in range(args.nets):  # one network at a time, so the bar moves
            draws.append(np.asarray(sample_jacobian_spectrum(act, args.depth, args.width, weights=weights,
                                                             q_star=q_star, n_samples=1, generator=g)).ravel())
            bar.update()
        ev = np.concatenate(draws)
        hi = theory.quantile(0.995)
        ax.hist(ev[(ev > 0) & (ev <= hi)], bins=60, density=True, alpha=0.5, label=f"measured, N = {args.width}")
        lam = np.linspace(hi * 1e-3, hi, 400)
        ax.plot(lam, theory.density(lam), "k-", lw=1, label="free probability")
        var = theory.moments()["variance"]
        ax.set(title=f"{act} {weights} L = {args.depth}\nVar theory {var:.3g}, measured {ev.var():.3g}", xlabel="λ")
        ax.legend(fontsize=7)
        bar.write(f"{act:5s} {weights:10s} L={args.depth}: variance theory {var:.4g}, measured {ev.var():.4g}")
    bar.close()
    out = args.out or os.path.join(tempfile.mkdtemp(prefix="deepstart-spectra-"), "spectra.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"figure written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
