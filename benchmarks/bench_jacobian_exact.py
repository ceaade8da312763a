"""Exact Jacobian spectrum: deepstart's sequential fast path vs the obvious user code, in one run.

Target (issue 4, issue 14): width-512 depth-64 tanh MLP at one input; baseline ``torch.func.jacrev`` then
``torch.linalg.svdvals``; target ≥ 0.9× the baseline and ≥ 60% of the GEMM limit (both sides do the same work:
``depth`` products ``[n, n] × [n, n]``, 2·n³ FLOP each, then one SVD). Both sides return all singular values; the
script checks they agree. Roofline: those GEMM FLOPs over deepstart's time, divided by the ``[n, n] × [n, n]`` GEMM
rate measured in this process (the SVD is counted as time but not as work, so the fraction is a lower bound).
Prints a human line, then one JSON line.

    python benchmarks/bench_jacobian_exact.py
    python benchmarks/bench_jacobian_exact.py --width 256 --depth 32 --repeats 3
    python benchmarks/bench_jacobian_exact.py --device cuda        # both sides and the SVD-alone time on the GPU
"""
from __future__ import annotations

import argparse
import platform

import torch

from deepstart.diagnose import jacobian_singular_values

from _roofline import gemm_rate, report
from _timing import best_of


def _model(width, depth, generator):
    layers = []
    for _ in range(depth):
        lin = torch.nn.Linear(width, width)
        with torch.no_grad():  # tanh near the critical line (σ_w² ≈ 1.39, σ_b² ≈ 0.008: THEORY.md §1, q* = 1/4)
            lin.weight.normal_(0.0, (1.393962 / width) ** 0.5, generator=generator)
            lin.bias.normal_(0.0, 8.1252e-3 ** 0.5, generator=generator)
        layers += [lin, torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where both sides run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    model = _model(args.width, args.depth, g).to(args.device)
    x = torch.randn(1, args.width, generator=g).to(args.device)

    def baseline():
        jac = torch.func.jacrev(model)(x).reshape(args.width, args.width)
        return torch.linalg.svdvals(jac).detach().cpu()

    def ours():
        return torch.as_tensor(jacobian_singular_values(model, x, method="exact", device=args.device).values)

    t_base, s_base = best_of(baseline, args.repeats, warmup=True, device=args.device)
    t_ours, s_ours = best_of(ours, args.repeats, warmup=True, device=args.device)
    rel = float(((s_ours - s_base.double()).abs() / s_base.double().max()).max())
    square = torch.randn(args.width, args.width, generator=g).to(args.device)  # the SVD alone, where ours ran
    t_svd, _ = best_of(lambda: torch.linalg.svdvals(square), args.repeats, warmup=True, device=args.device)
    flop = 2.0 * args.width ** 3 * args.depth
    print(f"exact spectrum width={args.width} depth={args.depth}: jacrev+svdvals {t_base:.3f}s, deepstart "
          f"{t_ours:.3f}s, speedup {t_base / t_ours:.2f}x (target 0.9x), max |Δσ|/σ_max {rel:.1e}; "
          f"{flop / 1e9:.1f} GFLOP of GEMMs, the SVD alone {t_svd:.3f}s")
    report("jacobian_exact", baseline_s=t_base, ours_s=t_ours, device=args.device, flop=flop,
           rate=gemm_rate(args.width, args.width, args.width, device=args.device),
           extra={"width": args.width, "depth": args.depth, "threads": args.threads, "target": 0.9,
                  "target_fraction": 0.6, "max_rel_diff": rel, "svd_s": t_svd,
                  "fraction_without_svd": flop / max(t_ours - t_svd, 1e-9)
                  / gemm_rate(args.width, args.width, args.width, device=args.device),
                  "torch": torch.__version__, "machine": platform.machine()})


if __name__ == "__main__":
    main()
