"""Matrix-free top-k singular values + SLQ moments vs the exact path, in one run.

Target (issue 4): width-4096 depth-32 MLP at one input; top-10 singular values (1e-4 relative) and SLQ moments
(m₁, m₂ of JJᵀ within their error bars) at least 10× faster than the exact path (form J, all singular values).
The script times both, checks the accuracy against the exact answer and prints a human line, then a JSON line.

    python benchmarks/bench_jacobian_lanczos.py                  # the target configuration (slow on 2 cores)
    python benchmarks/bench_jacobian_lanczos.py --width 1024     # quicker
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from deepstart.diagnose import jacobian_singular_values


def _model(width, depth, activation, generator):
    layers = []
    for _ in range(depth):
        lin = torch.nn.Linear(width, width)
        with torch.no_grad():  # He-normal weights, zero bias (the common default for ReLU nets)
            lin.weight.normal_(0.0, (2.0 / width) ** 0.5 if activation == "relu" else (1.21 / width) ** 0.5,
                               generator=generator)
            lin.bias.zero_()
        layers += [lin, torch.nn.ReLU() if activation == "relu" else torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--depth", type=int, default=32)
    p.add_argument("--activation", default="relu", choices=("relu", "tanh"))
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--probes", type=int, default=16)
    p.add_argument("--tol", type=float, default=1e-4, help="relative accuracy of the top Gram eigenvalues (σ²)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    model = _model(args.width, args.depth, args.activation, g).to(args.device)
    x = torch.randn(1, args.width, generator=g).to(args.device)
    small = _model(32, 2, args.activation, g).to(args.device)  # warm-up: one-time torch.func set-up costs
    jacobian_singular_values(small, x[:, :32], method="lanczos", k=2, generator=torch.Generator().manual_seed(1))

    t0 = time.perf_counter()
    lz = jacobian_singular_values(model, x, method="lanczos", k=args.k, n_probes=args.probes, tol=args.tol,
                                  generator=torch.Generator().manual_seed(1))
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_lz = time.perf_counter() - t0
    t0 = time.perf_counter()
    ex = jacobian_singular_values(model, x, method="exact")
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ex = time.perf_counter() - t0

    top_rel = float(np.max(np.abs(lz.values / ex.values[: args.k] - 1)))
    z = [abs(a - b) / e for a, b, e in zip(lz.moments, ex.moments, lz.moment_errors)]
    result = {"bench": "jacobian_lanczos", "width": args.width, "depth": args.depth, "activation": args.activation,
              "device": args.device, "threads": args.threads, "k": args.k, "probes": args.probes, "tol": args.tol,
              "exact_s": t_ex, "lanczos_s": t_lz, "speedup": t_ex / t_lz, "target": 10.0,
              "krylov_dim": lz.krylov_dim, "top_k_max_rel_err": top_rel, "moments_exact": list(ex.moments),
              "moments_slq": list(lz.moments), "moment_errors": list(lz.moment_errors), "moment_z": z,
              "torch": torch.__version__, "machine": platform.machine()}
    print(f"width={args.width} depth={args.depth} {args.activation}: exact {t_ex:.2f}s, lanczos+SLQ {t_lz:.2f}s "
          f"(Krylov dim {lz.krylov_dim}), speedup {t_ex / t_lz:.1f}x (target 10x); top-{args.k} max rel err "
          f"{top_rel:.1e} (target 1e-4); moments off by {z[0]:.2f}, {z[1]:.2f} standard errors")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
