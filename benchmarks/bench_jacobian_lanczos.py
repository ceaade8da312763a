"""Matrix-free top-k singular values + SLQ moments vs the exact path, in one run, with the roofline fraction.

Target (issue 4, issue 14): width-4096 depth-32 MLP at one input; top-10 singular values (1e-4 relative) and SLQ
moments (m₁, m₂ of JJᵀ within their error bars) at least 10× faster than the exact path (form J, all singular
values), and at least 20× at width 8192. The Krylov size follows from the requested accuracy: ``--tol`` is the
relative accuracy of σ, so the Gram eigenvalues σ² are asked for to ``2·tol``. For widths above
``--exact-max-width`` the exact path is not run: its time is estimated as the measured exact time at the largest
width run × (n / n_measured)³ (both of its parts, the n×n forward product through every layer and the SVD, cost
∝ n³), or, when no exact run was made, as its GEMM work at the measured GEMM rate (a lower bound); the top-k
accuracy is then checked against a Lanczos run two Krylov blocks larger. Roofline: each Krylov block costs two passes
through the layers, one GEMM per layer with the matrix the library multiplies (for ReLU the submatrix of ``W`` on
the units left on at both ends, about ``[n/2, n/2]``; ``flat_chain_maps`` in ``deepstart.diagnose._sequential``);
the fraction is against the GEMM rate measured at the median such shape × ``[·, b]`` (the bandwidth fraction of the
weight traffic, 4 bytes per matrix entry per GEMM, is printed beside it).

    python benchmarks/bench_jacobian_lanczos.py                         # widths 4096 and 8192 (slow on 2 cores)
    python benchmarks/bench_jacobian_lanczos.py --widths 1024           # quicker
    python benchmarks/bench_jacobian_lanczos.py --device cuda           # on a GPU (TF32 off inside the library)
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from deepstart.diagnose import jacobian_singular_values

from _roofline import bandwidth, gemm_rate, report, sync


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


def _matrix_shapes(model, x, depth, width):
    """Shapes of the matrices one pass multiplies (the library's flat GEMM chain; ``[n, n]`` per layer if the
    model is not one)."""
    from deepstart.diagnose._sequential import flat_chain_maps

    maps = flat_chain_maps(model, x)
    return maps["shapes"] if maps is not None else [(width, width)] * depth


def _timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def _one_width(args, width, exact_ref):
    """Time Lanczos (and exact when width ≤ --exact-max-width) at one width; returns the JSON record and the
    exact reference ``(width, seconds)`` for extrapolation."""
    g = torch.Generator().manual_seed(0)
    model = _model(width, args.depth, args.activation, g).to(args.device)
    x = torch.randn(1, width, generator=g).to(args.device)
    gram_tol = 2 * args.tol  # σ to tol relative ⇔ σ² to 2·tol
    block = min(max(args.probes, args.k), width)
    lanczos = lambda tol, max_dim=None: jacobian_singular_values(  # noqa: E731
        model, x, method="lanczos", k=args.k, n_probes=args.probes, tol=tol, max_dim=max_dim,
        generator=torch.Generator().manual_seed(1), device=args.device)
    t_lz, lz = _timed(lambda: lanczos(gram_tol), args.device)
    estimated = width > args.exact_max_width
    if not estimated:
        t_ex, ex = _timed(lambda: jacobian_singular_values(model, x, method="exact", device=args.device),
                          args.device)
        ref_top, ref_moments, ref_name = ex.values[: args.k], ex.moments, "exact"
        exact_ref = (width, t_ex)
    else:
        if exact_ref is not None:
            t_ex = exact_ref[1] * (width / exact_ref[0]) ** 3
        else:  # lower bound: the forward product alone at the measured GEMM rate
            t_ex = 2.0 * width ** 3 * args.depth / gemm_rate(width, width, width, device=args.device)
        ref = lanczos(0.0, lz.krylov_dim + 2 * block)  # two blocks more than the timed run
        ref_top, ref_moments, ref_name = ref.values, None, f"lanczos at Krylov dim {ref.krylov_dim}"
    top_rel = float(np.max(np.abs(lz.values / ref_top - 1)))
    z = ([abs(a - b) / e for a, b, e in zip(lz.moments, ref_moments, lz.moment_errors)]
         if ref_moments is not None else [float("nan")] * 2)

    steps = lz.krylov_dim / block  # each Krylov block: J then Jᵀ, one GEMM [r, c] × [c, b] per layer
    shapes = _matrix_shapes(model, x, args.depth, width)
    entries = 2 * steps * sum(r * c for r, c in shapes)
    flop = entries * 2.0 * block
    nbytes = entries * 4.0  # float32 matrices streamed once per GEMM
    r_med, c_med = sorted(shapes)[len(shapes) // 2]
    bw_frac = nbytes / t_lz / bandwidth(device=args.device)
    print(f"width={width} depth={args.depth} {args.activation}: exact {t_ex:.2f}s"
          f"{' (estimated)' if estimated else ''}, lanczos+SLQ {t_lz:.2f}s (Krylov dim {lz.krylov_dim}, "
          f"{steps:.0f} blocks of {block}), top-{args.k} max rel err {top_rel:.1e} vs {ref_name} "
          f"(target {args.tol:g}); moments off by {z[0]:.2f}, {z[1]:.2f} standard errors; weight traffic at "
          f"{100 * bw_frac:.0f}% of the measured bandwidth")
    target = 10.0 if width <= 4096 else 20.0
    rec = report(f"jacobian_lanczos_{width}", baseline_s=t_ex, ours_s=t_lz, device=args.device, flop=flop,
                 rate=gemm_rate(r_med, c_med, block, device=args.device),
                 extra={"width": width, "depth": args.depth, "activation": args.activation, "k": args.k,
                        "probes": args.probes, "tol_sigma": args.tol, "krylov_dim": lz.krylov_dim,
                        "exact_estimated": estimated, "target": target, "top_k_max_rel_err": top_rel,
                        "reference": ref_name, "moments_slq": list(lz.moments),
                        "moment_errors": list(lz.moment_errors), "moment_z": z,
                        "bandwidth_fraction": bw_frac, "threads": args.threads, "torch": torch.__version__,
                        "gemm_shape_median": [r_med, c_med], "machine": platform.machine()})
    return rec, exact_ref


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="4096,8192", help="comma-separated widths")
    p.add_argument("--width", type=int, default=None, help="a single width (overrides --widths)")
    p.add_argument("--depth", type=int, default=32)
    p.add_argument("--activation", default="relu", choices=("relu", "tanh"))
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--probes", type=int, default=16)
    p.add_argument("--tol", type=float, default=1e-4, help="relative accuracy of the top singular values σ")
    p.add_argument("--exact-max-width", type=int, default=4096, help="above this width the exact time is estimated")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (probes are drawn on the device)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    widths = [args.width] if args.width else [int(w) for w in args.widths.split(",")]
    small = _model(32, 2, args.activation, torch.Generator().manual_seed(0)).to(args.device)
    jacobian_singular_values(small, torch.randn(1, 32).to(args.device), method="lanczos", k=2,  # warm-up: one-time
                             generator=torch.Generator().manual_seed(1), device=args.device)  # torch.func set-up
    if torch.device(args.device).type != "cpu":  # and the GPU's one-time solver set-up, not charged to the exact path
        jacobian_singular_values(small, torch.randn(1, 32).to(args.device), method="exact", device=args.device)
    exact_ref = None
    for width in sorted(widths):
        _, exact_ref = _one_width(args, width, exact_ref)


if __name__ == "__main__":
    main()
