"""Vectorized training of K MLPs vs a sequential loop of ordinary PyTorch training, in one run.

Target (issue 6, issue 14): 64 MLPs, depth 20, width 64, ReLU, one MNIST epoch (batch 128, SGD), ≥ 4× on 2 CPU
cores and ≥ 70% of the GEMM limit. Roofline: forward + backward ≈ 3× the forward GEMMs (2·batch·in·out FLOP per
layer and network), each layer charged at the batched-GEMM rate measured in this process at its own shape
(64 products ``[128, in] @ [in, out]``); the fraction is that time over the vectorized time.
Both sides train the same 64 networks (seeds 0..63, He init) on the same minibatch order, without test evaluation;
the baseline is ``deepstart.experiments.train.train_single`` (nn.Module + torch.optim.SGD + a Python loop), the
vectorized side is ``train_batch`` (one vmap over stacked parameters). ``--device cuda`` runs both sides on the GPU
(the networks' weights are drawn by CPU generators, then moved: the same seed gives the same init on every device)
and measures the GEMM limit there. Prints a human line, then one JSON line.

    python benchmarks/bench_batched_training.py                       # the target configuration
    python benchmarks/bench_batched_training.py --limit 6400 --members 16   # quicker
    python benchmarks/bench_batched_training.py --dataset toy          # no MNIST needed
    python benchmarks/bench_batched_training.py --device cuda          # both sides on the GPU
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from deepstart.experiments.train import Trial, load_data, train_batch, train_single

from _roofline import mlp_train_flop, mlp_train_limit_seconds, report, sync


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=64)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--limit", type=int, default=None, help="train examples (default: the whole training set)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sequential-members", type=int, default=None,
                   help="time the sequential loop on this many networks and extrapolate linearly (default: all)")
    p.add_argument("--per-member-order", action="store_true", help="each network its own minibatch order")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where both sides train")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    trials = [Trial(dataset=args.dataset, arch="mlp", depth=args.depth, width=args.width, activation="relu",
                    init="he", lr=0.01, batch_size=128, epochs=1, limit=args.limit, test_limit=0, seed=s,
                    data_seed=s if args.per_member_order else 0) for s in range(args.members)]
    data = load_data(trials[0])  # loaded once, outside both timings
    steps = -(-len(data.y_train) // 128)

    if torch.device(args.device).type != "cpu":  # the GPU's one-time set-up (context, kernels) charged to neither side
        train_batch(trials[:2], data, device=args.device)
        train_single(trials[0], data, device=args.device)

    sync(args.device)
    t0 = time.perf_counter()
    batched = train_batch(trials, data, device=args.device)
    sync(args.device)
    t_vec = time.perf_counter() - t0

    n_seq = args.sequential_members or args.members
    t0 = time.perf_counter()
    seq = [train_single(t, data, device=args.device) for t in trials[:n_seq]]
    sync(args.device)
    t_seq = (time.perf_counter() - t0) * args.members / n_seq

    max_loss_gap = max(abs(a.history[-1]["train_loss"] - b.history[-1]["train_loss"]) for a, b in zip(batched, seq))
    ratio = t_seq / t_vec
    print(f"{args.members} MLPs depth {args.depth} width {args.width}, {len(data.y_train)} examples "
          f"({steps} steps): sequential {t_seq:.1f} s, vectorized {t_vec:.1f} s, speed-up {ratio:.2f}x "
          f"(target >= 4x) on {args.threads} threads ({args.device}); max |final train loss gap| {max_loss_gap:.2e}")
    n_in = data.x_train[0].numel()
    n_out = int(data.y_train.max()) + 1
    widths = [n_in] + [args.width] * args.depth + [n_out]
    flop = mlp_train_flop(widths, len(data.y_train), args.members)
    limit_s = mlp_train_limit_seconds(widths, len(data.y_train), 128, args.members, device=args.device)
    report("batched_training", baseline_s=t_seq, ours_s=t_vec, device=args.device, flop=flop, rate=flop / limit_s,
           extra={"members": args.members, "depth": args.depth, "width": args.width, "dataset": args.dataset,
                  "examples": len(data.y_train), "steps": steps, "threads": args.threads,
                  "per_member_order": args.per_member_order, "sequential_measured_members": n_seq, "target": 4.0,
                  "target_fraction": 0.7, "gflop": flop / 1e9, "limit_s": limit_s,
                  "max_final_loss_gap": max_loss_gap, "torch": torch.__version__, "cpu_count": os.cpu_count(),
                  "machine": platform.machine()})


if __name__ == "__main__":
    main()
