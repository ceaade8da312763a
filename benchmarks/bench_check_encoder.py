"""``check`` of a 24-layer ``nn.TransformerEncoder`` with its Jacobian from reverse mode only, and the old fallback.

Target (issue 18 item 4): ``check`` (8 inits, with the Jacobian) of a 24-layer pre-norm ``nn.TransformerEncoder``
(d_model 128, 4 heads, feed-forward 512 = 4·d, dropout 0, batch first; the zoo's ``transformer`` family) on a float
input of 8 × 16 tokens × 128 within 60 s and 1.5 GB peak RSS on 2 CPU cores. Its attention is fused
(``_transformer_encoder_layer_fwd`` in eval mode, ``scaled_dot_product_attention`` in training mode), which has no
forward-mode AD, so the Jacobian (16 · 128 = 2048 inputs and outputs) is measured from reverse mode only: Lanczos
on ``JᵀJ`` with ``Jv`` by double backward (``deepstart.diagnose._reverse``). Before, ``check`` formed ``J`` by
``torch.func.jacrev`` over all 2048 outputs at once (214 s, 7.3 GB at this size: issue 18's figures, not re-run
here, since 7.3 GB is a third of the shared machine's memory).

Two child processes (so each peak RSS, ``ru_maxrss``, is that run's own):

- ``check``: the 24-layer encoder; ``check`` timed with the Jacobian (the target; under its default 40 s time
  budget, which a loaded machine can exhaust: then the Jacobian is "not measured" with a note and the target is
  not met) and the Jacobian alone without a time budget (``jacobian_singular_values`` at the first input: its time
  and Krylov dimension). MB = 10⁶ bytes.
- ``ratio``: a size where the old fallback is affordable (``--ratio-depth`` 4 layers, ``--ratio-seq`` 8 tokens:
  1024 outputs), in one process: the reverse-only Lanczos path (top 10 σ to 1e-4 + SLQ moments) and the old
  fallback (``jacrev`` over every output + ``svdvals``), interleaved, best of ``--repeats``; ``ratio`` = old/new
  time. Accuracy against the old exact values: the top-10 relative errors and each SLQ moment's distance from the
  exact one in standard errors. Roofline: the new path's FLOPs (``torch.utils.flop_counter`` on one Gram product
  × the blocks run) over its time and the GEMM rate at the feed-forward's ``[b·seq, 128] @ [128, 512]``.

Timings on the shared 2-core machine are measured under load; the ratio is the number to read. The children run
with ``OMP_WAIT_POLICY=PASSIVE`` unless ``--omp-active``: on an oversubscribed machine OpenMP threads that spin at
each barrier inflated every product here 10–15× (measured: 5 s vs 0.35 s for one 16-column ``Jv`` at 24 layers).

    python benchmarks/bench_check_encoder.py
    python benchmarks/bench_check_encoder.py --depth 4 --n-inits 2 --skip-ratio     # seconds
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

from _timing import peak_mb, rss_mb

TARGET_S, TARGET_MB = 60.0, 1500.0






def encoder(depth: int, d: int = 128, heads: int = 4, seed: int = 0) -> nn.Module:
    """The zoo's pre-norm encoder (``deepstart.diagnose.zoo``'s ``transformer``), built without the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=4 * d, dropout=0.0, batch_first=True,
                                           norm_first=True)
        return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


def old_fallback(model, x):
    """What ``check`` did before when forward mode failed: ``J`` by ``torch.func.jacrev`` over every output at once
    (the fused attention backward has no batching rule, so torch loops over it and warns), then ``svdvals``."""
    f = lambda v: model(v.reshape(x.shape)).reshape(-1)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        jac = torch.func.jacrev(f)(x.reshape(-1))
    return torch.linalg.svdvals(jac.detach()).double().numpy()


def child_check(args) -> dict:
    from deepstart import check
    from deepstart.diagnose import jacobian_singular_values

    rss_import = rss_mb()
    model = encoder(args.depth)
    x = torch.randn(args.batch, args.seq, 128, generator=torch.Generator().manual_seed(1))
    rss_build = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    report = check(model, x, n_inits=args.n_inits, generator=torch.Generator().manual_seed(0))
    t_check, c_check = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_mb()
    jac = report.jacobian or {}
    notes = [n for n in report.notes if n.startswith("Jacobian")]
    t0 = time.perf_counter()  # alone, with no time budget: how long it takes when the load would have cut it short
    sv = jacobian_singular_values(model, x[:1], generator=torch.Generator().manual_seed(0), time_budget=math.inf)
    t_jac = time.perf_counter() - t0
    return {"depth": args.depth, "seq": args.seq, "batch": args.batch, "n_inits": args.n_inits,
            "rss_import_mb": round(rss_import, 1), "rss_build_mb": round(rss_build, 1),
            "check_s": round(t_check, 2), "check_cpu_s": round(c_check, 2), "peak_mb": round(peak, 1),
            "jacobian_method": jac.get("method"), "jacobian_top": [round(float(s), 4) for s in jac.get("values", [])[:3]],
            "jacobian_notes": notes, "jacobian_alone_s": round(t_jac, 2), "krylov_dim": sv.krylov_dim,
            "path": sv.path, "met": bool(jac) and t_check <= TARGET_S and peak <= TARGET_MB}


def _gram_flop(model, x) -> float:
    """FLOPs of one Gram product (``Jᵀ(J V)``, a block of 16 columns) on the reverse-only path."""
    from torch.utils.flop_counter import FlopCounterMode

    from deepstart.diagnose._reverse import reverse_products
    from deepstart.diagnose._sequential import flat_function

    f, v = flat_function(model, x)
    maps = reverse_products(f, v)
    block = torch.randn(v.numel(), 16, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        maps["jtj"](block)
    return float(counter.get_total_flops())


def child_ratio(args) -> dict:
    from deepstart.diagnose import jacobian_singular_values

    from _roofline import gemm_rate, report as roofline_report

    model = encoder(args.ratio_depth)
    x = torch.randn(1, args.ratio_seq, 128, generator=torch.Generator().manual_seed(1))
    new = lambda: jacobian_singular_values(model, x, method="lanczos", generator=torch.Generator().manual_seed(0))  # noqa: E731
    sv = new()  # warm-up (imports, first vmap)
    peak_new = peak_mb()
    t_new, t_old = np.inf, np.inf
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        sv = new()
        t_new = min(t_new, time.perf_counter() - t0)
        t0 = time.perf_counter()
        exact = old_fallback(model, x)
        t_old = min(t_old, time.perf_counter() - t0)
    peak_old = peak_mb()
    lam = exact ** 2
    moments = (float(lam.mean()), float((lam ** 2).mean()))
    rel = np.abs(sv.values - exact[:sv.values.size]) / exact[:sv.values.size]
    z = [abs(m - e) / s for m, e, s in zip(sv.moments, moments, sv.moment_errors)]
    flop = _gram_flop(model, x) * sv.krylov_dim / 16
    record = roofline_report(
        "jacobian_reverse_encoder", baseline_s=t_old, ours_s=t_new, flop=flop,
        rate=gemm_rate(16 * args.ratio_seq, 128, 512), device="cpu",
        extra={"depth": args.ratio_depth, "seq": args.ratio_seq, "n": int(x.numel()), "krylov_dim": sv.krylov_dim,
               "top10_max_rel_error": float(rel.max()), "moments": list(sv.moments),
               "moment_errors": list(sv.moment_errors), "exact_moments": list(moments),
               "moment_z": [round(v, 2) for v in z], "peak_after_new_mb": round(peak_new, 1),
               "peak_after_old_mb": round(peak_old, 1)})
    return record


def _run_child(kind: str, argv: list[str], passive: bool) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"} if passive else None
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", kind, *argv], capture_output=True,
                          text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"child": kind, "returncode": proc.returncode, "error": proc.stderr[-4000:]}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n-inits", type=int, default=8)
    ap.add_argument("--ratio-depth", type=int, default=4)
    ap.add_argument("--ratio-seq", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-ratio", action="store_true")
    ap.add_argument("--omp-active", action="store_true", help="leave OMP_WAIT_POLICY as it is in the children")
    ap.add_argument("--child", choices=("check", "ratio"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child == "check":
        print(json.dumps(child_check(args)))
        return
    if args.child == "ratio":
        print(json.dumps(child_ratio(args)))
        return
    argv = [a for a in sys.argv[1:] if a not in ("--skip-ratio", "--omp-active")]
    meta = {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads,
            "load_avg_1min": os.getloadavg()[0], "omp_wait_policy": "as set" if args.omp_active else "PASSIVE"}
    r = _run_child("check", argv, not args.omp_active)
    r.update({"benchmark": "check_encoder", "target_s": TARGET_S, "target_mb": TARGET_MB, **meta})
    if "error" in r:
        print(f"check child failed:\n{r['error']}")
    else:
        print(f"check of a {r['depth']}-layer nn.TransformerEncoder (d 128, {r['batch']} × {r['seq']} tokens, "
              f"{r['n_inits']} inits, {args.threads} threads, measured under load {meta['load_avg_1min']:.1f}): "
              f"{r['check_s']:.1f} s, peak {r['peak_mb']:.0f} MB (after build {r['rss_build_mb']:.0f} MB); Jacobian "
              f"{r['jacobian_method']} ({r['path']}, Krylov dim {r['krylov_dim']}) alone {r['jacobian_alone_s']:.1f} s; "
              f"target ≤ {TARGET_S:.0f} s, ≤ {TARGET_MB:.0f} MB: met {'yes' if r['met'] else 'no'}")
    print(json.dumps(r))
    if not args.skip_ratio:
        q = _run_child("ratio", argv, not args.omp_active)
        if "error" in q:
            print(f"ratio child failed:\n{q['error']}")
        else:
            print(f"Jacobian of a {q['depth']}-layer encoder, {q['n']} inputs and outputs: reverse-only Lanczos "
                  f"{q['ours_s']:.2f} s vs old jacrev fallback {q['baseline_s']:.2f} s → {q['ratio']:.1f}× (peak "
                  f"{q['peak_after_new_mb']:.0f} MB after the new path, {q['peak_after_old_mb']:.0f} MB after the old); "
                  f"top-10 max relative error {q['top10_max_rel_error']:.1e}, moments off by {q['moment_z']} SE")
        print(json.dumps({**q, **meta}))


if __name__ == "__main__":
    main()
