"""The README's 30-second example, runnable: a Glorot ReLU MLP fails (FM1), deepstart says why and fixes it.

    python examples/quickstart.py                 # depth 50, width 64 (a few seconds; progress bars on stderr)
    python examples/quickstart.py --depth 20      # quicker
    python examples/quickstart.py --out reports   # also writes check.html and check.fixed.html, linked to each other
"""
from __future__ import annotations

import argparse
import os

import torch

import deepstart
from deepstart import init, theory
from deepstart.experiments.models import mlp


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--out", default=None, help="folder for the HTML reports (default: none written)")
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    # Glorot on ReLU: variance 2/(fan_in + fan_out) = 1/fan_in at constant width, so M_j halves per layer
    model = mlp(784, 10, depth=args.depth, width=args.width, activation="relu", init="glorot", generator=g)
    report = deepstart.check(model, input_shape=(784,), generator=g, progress=True)
    print(report)                      # per-layer table + findings (FM1 vanishing, ...)
    print(report.recommend()[0])       # init "he": variance 2/fan_in keeps E[M_d] = M_0 (Hanin & Rolnick)
    result = deepstart.fix_(model, torch.randn(128, 784, generator=g), generator=g, progress=True)
    print(result)                      # the change and whether re-measuring confirmed it
    print(result.after)                # re-measured, not asserted
    if args.out:                       # self-contained pages (figures embedded), each linking the other
        from deepstart.diagnose.html import report_html

        report_html(report, os.path.join(args.out, "check.html"), link=("fixed model", "check.fixed.html"))
        report_html(result.after, os.path.join(args.out, "check.fixed.html"), link=("original model", "check.html"))
        print(f"reports written to {os.path.join(args.out, 'check.html')} and check.fixed.html")
    init.apply_(model, "fractional-moment(s=0.8, activation=relu)", generator=g)
    print(theory.critical_point("tanh", q_star=1 / 64))   # σ_w, σ_b on the critical line χ₁ = 1
    return 0 if result.verified and result.after.healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
