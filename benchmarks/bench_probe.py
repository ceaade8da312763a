"""The probe (many inits trained at once) vs a plain loop training the same inits one after another, in one run.

Targets (issue 20), 2 CPU cores:

* MLP: 8 inits of a 20 × 256 ReLU MLP (He), 200 Adam steps (lr 1e-3), batch 128 of the clusters task: the probe
  ≤ 1.0× the loop's time and ≥ 60% of the GEMM limit (forward + backward ≈ 3× the forward GEMMs, each layer
  charged at the batched-GEMM rate measured in this process at its own shape, as ``bench_batched_training.py``).
* GPT-2 4 × 128 (vocabulary 1000, sequence 64, batch 8): 8 inits, 100 Adam steps of the n-gram task, ≤ 60 s and
  ≤ 2 GB peak resident memory; the loop's time is reported beside it.

Both sides train the same inits (the probe's factory under the same seeds) on the same batches with
``torch.optim.Adam``; the loop's batches are drawn before its timing starts (the probe draws its own inside). The
probe runs with ``reference=None`` and a fixed lr, so both sides do exactly the same training. Prints a human line
and one JSON line per part.

    python benchmarks/bench_probe.py                  # both parts (≈ 3 min on the idle 2-core machine)
    python benchmarks/bench_probe.py --part mlp --steps 50 --repeats 3
    OMP_NUM_THREADS=1 python benchmarks/bench_probe.py --part mlp   # on a loaded machine (threads follow OMP)
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import resource
import time

import numpy as np
import torch
from torch import nn

from deepstart.probe import probe
from deepstart.probe.api import _auto_task

from _roofline import gemm_rate, mlp_train_flop, mlp_train_limit_seconds, report


def _mlp(depth: int, width: int, d_in: int, d_out: int):
    def build():
        layers, n = [], d_in
        for _ in range(depth):
            layers += [nn.Linear(n, width), nn.ReLU()]
            n = width
        net = nn.Sequential(*layers, nn.Linear(n, d_out))
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        return net
    return build


def _gpt2(layers: int, width: int, vocab: int, seq: int):
    import transformers

    config = transformers.GPT2Config(vocab_size=vocab, n_positions=seq, n_embd=width, n_layer=layers,
                                     n_head=max(1, width // 64), bos_token_id=0, eos_token_id=0,
                                     attn_implementation="eager")
    return lambda: transformers.GPT2LMHeadModel(config)


def _probe_inits(factory, n):
    """The inits, task and data seed ``probe(factory, generator=Generator().manual_seed(0), n_inits=n)`` uses."""
    from deepstart.probe.api import _base_model, _user_inits

    generator = torch.Generator().manual_seed(0)
    seeds = [int(torch.randint(0, 2**62, (1,), generator=generator)) for _ in range(n + 4)]
    model, factory = _base_model(factory, seeds[0])
    _, inits = _user_inits(model, factory, n, torch.Generator().manual_seed(seeds[1]))
    return model, inits, seeds[-2], seeds[-1]


def _loop(factory, n, steps, lr, batch):
    """The plain loop: each init as an ``nn.Module`` with ``torch.optim.Adam``, ``steps`` steps on the probe's
    batches (drawn before the timing starts); returns the seconds and each init's mean loss over its last 10 steps."""
    model, inits, data_seed, task_seed = _probe_inits(factory, n)
    task = _auto_task(model, None, batch, torch.Generator().manual_seed(task_seed), torch.device("cpu"))
    gen = torch.Generator().manual_seed(data_seed)
    batches = [task.batch(gen) for _ in range(steps)]
    models = []
    for params, buffers in inits:
        m = copy.deepcopy(model)
        m.load_state_dict({**params, **buffers}, strict=False)
        models.append(m)
    t0 = time.perf_counter()
    finals = []
    for m in models:
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=lr)
        last = []
        for args, kwargs, y in batches:
            loss = task.loss(m(*args, **kwargs), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last.append(loss.detach())
        finals.append(float(torch.stack(last[-10:]).mean()))
    return time.perf_counter() - t0, finals


def _probe(factory, n, steps, lr, batch):
    t0 = time.perf_counter()
    r = probe(factory, lr=lr, steps=steps, n_inits=n, reference=None, batch_size=batch,
              generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0, r


def bench_mlp(args):
    depth, width, d_in, d_out, batch = args.depth, args.width, args.width, 10, 128
    factory = _mlp(depth, width, d_in, d_out)
    _probe(factory, 2, 3, 1e-3, batch)  # warm-up (imports, allocator) charged to neither side
    widths = [d_in] + [width] * depth + [d_out]
    flop = mlp_train_flop(widths, args.steps * batch, args.members)
    runs = []
    for _ in range(args.repeats):
        t_loop, finals = _loop(factory, args.members, args.steps, 1e-3, batch)
        gemm_rate.cache_clear()  # the limit measured right before each probe (the machine's load changes)
        limit_s = mlp_train_limit_seconds(widths, args.steps * batch, batch, args.members)
        t_probe, r = _probe(factory, args.members, args.steps, 1e-3, batch)
        ours = r.loss[:, -10:].mean(1)
        print(f"MLP {depth} x {width}, {args.members} inits, {args.steps} Adam steps, batch {batch}, {args.threads} "
              f"threads: loop {t_loop:.2f} s, probe {t_probe:.2f} s ({r.path}), GEMM limit {limit_s:.2f} s; "
              f"mean loss of the last 10 steps, median over inits: loop {np.median(finals):.4g}, probe "
              f"{np.median(ours):.4g} (same training up to float32 rounding, which chaotic steps grow)")
        print(f"  probe/loop = {t_probe / t_loop:.2f}x (target <= 1.0x), GEMM fraction = {limit_s / t_probe:.0%} "
              f"(target >= 60%)")
        runs.append(report("probe_mlp", baseline_s=t_loop, ours_s=t_probe, flop=flop, rate=flop / limit_s,
                           extra={"members": args.members, "depth": depth, "width": width, "steps": args.steps,
                                  "batch": batch, "probe_over_loop": t_probe / t_loop, "target_ratio": 1.0,
                                  "target_fraction": 0.6, "limit_s": limit_s, "final_loss_loop": float(np.median(finals)),
                                  "final_loss_probe": float(np.median(ours)),
                                  "gflop": flop / 1e9, "path": r.path, "threads": args.threads,
                                  "torch": torch.__version__, "cpu_count": os.cpu_count(),
                                  "machine": platform.machine()}))
    ratios = [x["probe_over_loop"] for x in runs]
    fractions = [x["roofline_fraction"] for x in runs]
    print(f"MLP over {len(runs)} run(s): probe/loop {min(ratios):.2f}-{max(ratios):.2f}x (target <= 1.0x), GEMM "
          f"fraction {min(fractions):.0%}-{max(fractions):.0%} (target >= 60%)")
    return runs


def bench_gpt2(args):
    layers, width, vocab, seq, batch = 4, 128, 1000, 64, 8
    factory = _gpt2(layers, width, vocab, seq)
    n_params = sum(p.numel() for p in factory().parameters())
    steps = args.gpt2_steps
    t_probe, r = _probe(factory, args.members, steps, 1e-3, batch)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t_loop, _ = _loop(factory, args.members, steps, 1e-3, batch) if not args.no_loop else (float("nan"), None)
    tokens = batch * seq
    # training FLOP ≈ 6 · (non-embedding parameters + the tied LM head) · tokens + attention (12 · L · T² · C)
    flop_step = 6 * n_params * tokens + 12 * layers * batch * seq * seq * width
    flop = flop_step * steps * args.members
    print(f"GPT-2 {layers} x {width} (vocab {vocab}, seq {seq}, batch {batch}, {n_params / 1e6:.2f} M params): "
          f"{args.members} inits, {steps} Adam steps: probe {t_probe:.1f} s ({r.path}; target <= 60 s), peak "
          f"{peak_gb:.2f} GB (target <= 2 GB), loop {t_loop:.1f} s; {flop / 1e12:.2f} TFLOP, "
          f"{flop / t_probe / 1e9:.1f} GFLOP/s")
    # the limit: the batched GEMM rate at the blocks' MLP shape [tokens × C]·[C × 4C], one product per init
    rate = gemm_rate(tokens, width, 4 * width, batch=args.members)
    return report("probe_gpt2", baseline_s=t_loop, ours_s=t_probe, flop=flop, rate=rate,
                  extra={"members": args.members, "steps": steps, "params": n_params, "peak_gb": peak_gb,
                         "tflop": flop / 1e12, "gflops": flop / t_probe / 1e9, "target_s": 60, "target_gb": 2,
                         "path": r.path, "verdict": r.verdict, "threads": args.threads,
                         "gemm_gflops": rate / 1e9})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("mlp", "gpt2", "all"), default="all")
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--steps", type=int, default=200, help="MLP Adam steps")
    p.add_argument("--gpt2-steps", type=int, default=100)
    p.add_argument("--no-loop", action="store_true", help="GPT-2: skip the loop (its time is not a target)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)),
                   help="torch threads, for both sides and the GEMM limit (default: $OMP_NUM_THREADS, else 2)")
    p.add_argument("--repeats", type=int, default=2, help="MLP runs (each with its own limit), to show the spread")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.part in ("mlp", "all"):
        bench_mlp(args)
    if args.part in ("gpt2", "all"):
        bench_gpt2(args)


if __name__ == "__main__":
    main()
