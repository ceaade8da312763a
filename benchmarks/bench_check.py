"""``deepstart.check`` vs the straightforward loop, in one run; and a ResNet-56 on a CIFAR-sized input.

Target (issue 5): ``check`` of a 100-layer width-256 ReLU MLP with 8 inits at least 3× faster than the loop a
user would write (per init: re-initialize, forward with hooks recording every layer's squared length and
retaining its gradient, backward); and ``check`` of a ResNet-56 (``resnet:depth=56,kind=conv``, 16 channels)
on 3 × 32 × 32 inputs within a minute on 2 CPU cores. Both timings measure the same statistics (lengths and
gradients at every layer; the Jacobian is skipped in the ratio and timed separately). Check and loop are timed
interleaved, best of ``--repeats``; ``rng_s`` is the time to draw the re-inits' weights, which both must do (the
floor of either). Prints a human line, then the ratio against the roofline (the loop's forward and backward FLOPs,
counted by ``torch.utils.flop_counter``, over check's time and the measured GEMM rate at the layer's size,
``_roofline.py``) and one JSON line (``name, ratio, baseline_s, ours_s, roofline_fraction, limit, device`` and the
fields above). The target of issue 14 is ``check`` within 1.25× of the loop (ratio ≥ 0.8).

``--device cuda``: the MLP, its inputs and the loop's network live on the GPU and the loop draws with a generator
there; ``check(device=...)`` measures the MLP in place (TF32 off inside check; the loop's matmuls use torch's
default, TF32 off too) and the ResNet-56, built on the CPU, on a copy made on the GPU (the built model is not moved).

    python benchmarks/bench_check.py
    python benchmarks/bench_check.py --threads 2 --repeats 3
    python benchmarks/bench_check.py --depth 4 --width 64 --n-inits 2 --repeats 1 --skip-resnet   # seconds
    python benchmarks/bench_check.py --device cuda
"""
from __future__ import annotations

import argparse
import math
import platform

import torch
from torch import nn

from deepstart.diagnose import check, zoo_model

from _roofline import gemm_rate, report as roofline_report
from _timing import best_of


def _mlp(depth, width, generator):
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        with torch.no_grad():
            lin.weight.normal_(0, math.sqrt(2 / width), generator=generator)
            lin.bias.zero_()
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers)


def straightforward_loop(model, x, n_inits, generator):
    """Per init: re-init every Linear (He normal), forward with hooks, backward; lengths and gradients."""
    net = type(model)(*[type(m)(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m
                        for m in model])
    net.load_state_dict(model.state_dict())
    net.to(x.device)
    acts = [m for m in net if isinstance(m, nn.ReLU)]
    lengths, grads = [], []
    for _ in range(n_inits):
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0, math.sqrt(2 / m.in_features), generator=generator)
                    m.bias.zero_()
        seen = []

        def hook(module, inp, out):
            out.retain_grad()
            seen.append(out)

        handles = [a.register_forward_hook(hook) for a in acts]
        out = net(x)
        u = torch.randn(out.shape, generator=generator, device=out.device)
        (out * u).sum().backward()
        for h in handles:
            h.remove()
        lengths.append(torch.stack([t.detach().pow(2).mean(1) for t in seen]))
        grads.append(torch.stack([t.grad.pow(2).sum(1) for t in seen]))
        net.zero_grad(set_to_none=True)
    return torch.stack(lengths), torch.stack(grads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--n-inits", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-resnet", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where check and the loop run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)

    def gen(seed):  # check takes a CPU generator (it seeds its own on the device); the loop draws on the device
        return torch.Generator().manual_seed(seed)

    def dgen(seed):
        return torch.Generator(device=dev).manual_seed(seed)

    g = torch.Generator().manual_seed(0)
    model = _mlp(args.depth, args.width, g).to(dev)
    x = torch.randn(args.batch, args.width, generator=g).to(dev)
    check(model, x, n_inits=2, generator=gen(1), jacobian=False, device=dev)  # warm-up
    straightforward_loop(model, x, 2, dgen(1))
    t_check, t_loop = math.inf, math.inf
    for _ in range(args.repeats):  # interleaved, best of each: a loaded machine slows both alike
        t, report = best_of(lambda: check(model, x, n_inits=args.n_inits, generator=gen(1), jacobian=False,
                                          device=dev), 1, device=dev)
        t_check = min(t_check, t)
        t, _ = best_of(lambda: straightforward_loop(model, x, args.n_inits, dgen(1)), 1, device=dev)
        t_loop = min(t_loop, t)
    t_check_jac, _ = best_of(lambda: check(model, x, n_inits=args.n_inits, generator=gen(1), device=dev), 1,
                             device=dev)
    n_params = sum(p.numel() for p in model.parameters() if p.ndim >= 2)
    t_rng, _ = best_of(lambda: torch.randn((args.n_inits - 1, n_params), generator=dgen(3), device=dev),
                       args.repeats, device=dev)  # the floor: both must draw every re-initialized weight
    ratio = t_loop / t_check
    result = {"benchmark": "check", "mlp": [args.depth, args.width], "n_inits": args.n_inits, "batch": args.batch,
              "threads": args.threads, "check_s": round(t_check, 3), "loop_s": round(t_loop, 3),
              "ratio": round(ratio, 2), "target_ratio": 0.8, "rng_s": round(t_rng, 3),
              "ratio_excluding_rng": round((t_loop - t_rng) / max(t_check - t_rng, 1e-9), 2),
              "check_with_jacobian_s": round(t_check_jac, 3),
              "path": report.path}
    line = (f"MLP {args.depth}×{args.width}, {args.n_inits} inits, batch {args.batch}, {args.threads} threads"
            f"{'' if dev.type == 'cpu' else f' ({dev})'}: "
            f"check {t_check:.2f} s ({report.path}) vs loop {t_loop:.2f} s → {ratio:.2f}× (target ≥ 0.8×: check within "
            f"1.25× of the loop; drawing the {args.n_inits - 1} re-inits' weights alone takes {t_rng:.2f} s in both); "
            f"with the Jacobian {t_check_jac:.2f} s")
    if not args.skip_resnet:
        built = zoo_model("resnet", depth=56, kind="conv", eta=1.0)
        t_res, rep = best_of(lambda: check(built.model, input_shape=(3, 32, 32), n_inits=args.n_inits,
                                           generator=gen(2), device=dev), 1, device=dev)
        result.update({"resnet56_s": round(t_res, 2), "resnet56_target_s": 60, "resnet56_path": rep.path,
                       "resnet56_jacobian": None if rep.jacobian is None else rep.jacobian["method"]})
        line += f"; ResNet-56 (3×32×32, {args.n_inits} inits, with Jacobian) {t_res:.1f} s (target ≤ 60 s)"
    result.update({"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()})
    print(line)
    flop = args.n_inits * _loop_flop(model, x)
    result["flop"] = flop
    del result["ratio"]
    roofline_report("check", baseline_s=t_loop, ours_s=t_check, device=str(dev), extra=result, flop=flop,
                    rate=gemm_rate(args.batch, args.width, args.width, device=str(dev)))


def _loop_flop(model, x) -> float:
    """FLOPs of one init of the straightforward loop (forward and backward), counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        straightforward_loop(model, x, 1, torch.Generator(device=x.device).manual_seed(4))
    return float(counter.get_total_flops())


if __name__ == "__main__":
    main()
