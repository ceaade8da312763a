"""Batched signal-propagation simulation (one ``bmm`` over many random nets) vs a loop over ``nn.Sequential`` nets.

The reproductions measure output-length laws over thousands of independent random networks
(``deepstart.experiments.reproduce._common.mlp_lengths``). Baseline: build each net as an ``nn.Sequential`` of
``nn.Linear``/``nn.ReLU``, initialize with ``torch.nn.init.normal_`` and run one forward pass, in a Python loop.
Target: ≥ 10× on 2 CPU cores at 1000 nets, depth 20, width 20 (Hanin & Rolnick width = depth). Roofline: the work
is drawing nets × depth × width² Gaussian weights and one batched product per layer (2·width² FLOP per net and
layer, negligible); the fraction is against memory bandwidth for the weights written once and read once (8 bytes
per float32 weight). Prints a human line, then one JSON line.

``--device cuda``: both sides on the GPU; the batched simulation runs under ``torch.device(...)`` as the default
device with a generator there (``mlp_lengths`` takes no device of its own), the loop builds its nets there.

    python benchmarks/bench_reproduce_signal.py [--nets 1000 --depth 20 --width 20 --threads 2]
    python benchmarks/bench_reproduce_signal.py --nets 20 --depth 4 --width 8      # seconds
    python benchmarks/bench_reproduce_signal.py --device cuda
"""
from __future__ import annotations

import argparse
import contextlib
import math
import time

import torch
from torch import nn

from deepstart.experiments.reproduce._common import mlp_lengths

from _roofline import bandwidth, report, sync


def loop_lengths(width: int, depth: int, n_nets: int, generator: torch.Generator) -> torch.Tensor:
    dev = generator.device  # the nets are built where the generator draws
    out = torch.empty(n_nets, device=dev)
    for i in range(n_nets):
        layers = []
        for _ in range(depth):
            lin = nn.Linear(width, width, bias=False, device=dev)
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2 / width), generator=generator)
            layers += [lin, nn.ReLU()]
        net = nn.Sequential(*layers)
        x = torch.randn(width, generator=generator, device=dev)
        with torch.no_grad():
            out[i] = net(x).square().sum() / x.square().sum()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", type=int, default=1000)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--width", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where both sides run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    g = torch.Generator(device=dev).manual_seed(0)
    on_device = contextlib.nullcontext() if dev.type == "cpu" else dev  # factory calls inside default to dev

    def batched_lengths(n_nets):
        with on_device:
            return mlp_lengths(args.width, [args.width] * args.depth, [2 / args.width] * args.depth, n_nets,
                               generator=g)[:, -1]

    if dev.type != "cpu":  # the GPU's one-time set-up (context, kernels) charged to neither side
        batched_lengths(2)
        loop_lengths(args.width, args.depth, 2, g)
    sync(dev)
    t0 = time.perf_counter()
    batched = batched_lengths(args.nets)
    sync(dev)
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    looped = loop_lengths(args.width, args.depth, args.nets, g)
    sync(dev)
    t_loop = time.perf_counter() - t0
    ratio = t_loop / t_vec
    print(f"{args.nets} nets, depth {args.depth}, width {args.width}: batched {t_vec:.3f} s, loop {t_loop:.3f} s, "
          f"speed-up {ratio:.1f}x (target >= 10x); mean M_d/M_0 batched {batched.mean():.3f}, loop "
          f"{looped.mean():.3f} (theory 1)")
    report("reproduce_signal", baseline_s=t_loop, ours_s=t_vec, device=str(dev),
           nbytes=8.0 * args.nets * args.depth * args.width ** 2, bandwidth=bandwidth(device=str(dev)),
           extra={"nets": args.nets, "depth": args.depth, "width": args.width, "threads": args.threads,
                  "target": 10.0, "mean_batched": float(batched.mean()), "mean_loop": float(looped.mean())})


if __name__ == "__main__":
    main()
