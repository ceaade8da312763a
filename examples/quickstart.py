"""The README's 30-second example, runnable: a Glorot ReLU MLP fails (FM1), deepstart says why and fixes it.

    python examples/quickstart.py            # depth 50, width 64 (about 10 s on 2 CPU cores)
    python examples/quickstart.py --depth 20 # quicker
"""
from __future__ import annotations

import argparse

import torch

import deepstart
from deepstart import init, theory
from deepstart.experiments.models import mlp


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    # Glorot on ReLU: variance 2/(fan_in + fan_out) = 1/fan_in at constant width, so M_j halves per layer
    model = mlp(784, 10, depth=args.depth, width=args.width, activation="relu", init="glorot", generator=g)
    report = deepstart.check(model, input_shape=(784,), generator=g)
    print(report)                      # per-layer table + findings (FM1 vanishing, ...)
    print(report.recommend()[0])       # init "he": variance 2/fan_in keeps E[M_d] = M_0 (Hanin & Rolnick)
    result = deepstart.fix_(model, torch.randn(128, 784, generator=g), generator=g)
    print(result)                      # the change and whether re-measuring confirmed it
    print(result.after)                # re-measured, not asserted
    init.apply_(model, "fractional-moment(s=0.8, activation=relu)", generator=g)
    print(theory.critical_point("tanh", q_star=1 / 64))   # σ_w, σ_b on the critical line χ₁ = 1
    return 0 if result.verified and result.after.healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
