"""Peak memory and time of ``deepstart.check`` (8 inits) on two real models, each in a fresh subprocess.

Targets: a CIFAR ResNet-56 (BatchNorm in train mode, 1×1 projection shortcuts; calibration case
``resnet56-cifar``, batch 4 × 3 × 32 × 32, ``factory=case.build``) within 1 GB peak RSS; GPT-2 small
(124 M parameters, default ``GPT2Config`` with eager attention, dropout 0, ``use_cache=False``; input ids 2 × 64;
no factory: ``check`` rebuilds a Hugging Face model from its config) within 2.5 GB peak RSS and 30 s on 2 CPU cores.

Each model runs in its own child process, so the peak resident set size (``ru_maxrss``, KiB on Linux) is that run's
own: the child reports its RSS after imports, after building the model, and its peak right after ``check``
(the target), so the increase due to ``check`` is ``peak − RSS after build``. In the same child, after ``check``,
a baseline is timed: the straightforward loop a user would write (the given model, then the model built again from
its architecture under seeds 1..n−1; each: forward with hooks recording ‖x‖² at every block output and retaining its
gradient, backward of ⟨u, output⟩ with a fixed Gaussian u); ``ratio`` is check/baseline wall time (> 1: check is
slower), ``cpu_ratio`` the same in process CPU time (steadier on a shared machine). MB = 10⁶ bytes. Prints a human
line per model, then one JSON line per model; for GPT-2 also the roofline line of ``_roofline.py`` (its ``ratio`` is
baseline/check, ≥ 0.8 being issue 14's target of check within 1.25× of the loop; ``roofline_fraction``: the loop's
forward and backward FLOPs, counted by ``torch.utils.flop_counter`` on one init, over check's time and the GEMM rate
at the MLP's ``[128, 768] @ [768, 3072]``).

``--device cuda``: the model is built on the host (RSS after build as above), then moved to the GPU with its inputs;
``check(device=...)`` and the loop (its rebuilt models moved there too, its cotangent drawn there) run on it. Peak RSS
stays a host measure (it then includes the CUDA context, made when the model moves, in ``check_increase_mb``); the
GPU's own is ``torch.cuda.max_memory_allocated`` (``cuda_build_mb`` after the move,
``cuda_peak_mb`` during check, ``cuda_peak_after_baseline_mb`` during the loop), also in GPT-2's roofline line.

    python benchmarks/bench_check_memory.py
    python benchmarks/bench_check_memory.py --quick            # n_inits = 2, a smoke test
    python benchmarks/bench_check_memory.py --models gpt2 --threads 2
    python benchmarks/bench_check_memory.py --models resnet56 --quick --device cuda
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings

import torch

MODELS = ("resnet56", "gpt2")
TARGETS = {"resnet56": {"peak_mb": 1000, "check_s": None}, "gpt2": {"peak_mb": 2500, "check_s": 30}}

from _timing import peak_mb, rss_mb


# --------------------------------------------------------------------------------------------------------- memory




def _cuda_mb(dev: torch.device, peak: bool) -> float | None:
    """GPU memory held by tensors on ``dev`` now (or at peak since the last reset), MB; None off CUDA."""
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    return round((torch.cuda.max_memory_allocated if peak else torch.cuda.memory_allocated)(dev) / 1e6, 1)


def _reset_cuda_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)


# --------------------------------------------------------------------------------------------------------- models
def _resnet56():
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/ (the zoo) beside src/
    from tools.calibration.cases import CASES

    case = CASES["resnet56-cifar"]
    torch.manual_seed(0)
    model = case.build()
    inputs = case.inputs(torch.Generator().manual_seed(1))
    block = type(model.layer1[0])  # the BasicBlock class
    return model, inputs, case.build, block


def _gpt2():
    import transformers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # config notices from transformers are not about this benchmark
        cfg = transformers.GPT2Config(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
        cfg._attn_implementation = "eager"
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(cfg)
    g = torch.Generator().manual_seed(1)
    inputs = {"input_ids": torch.randint(0, cfg.vocab_size, (2, 64), generator=g)}

    def rebuild():
        return transformers.GPT2LMHeadModel(cfg)

    return model, inputs, rebuild, transformers.models.gpt2.modeling_gpt2.GPT2Block


def _call(model, inputs):
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    return out.logits if hasattr(out, "logits") else out


def straightforward_loop(model, inputs, rebuild, block, n_inits, generator):
    """The given model, then ``rebuild()`` under seeds 1..n−1; per init: forward with hooks recording ‖x‖² at
    every ``block`` output (and retaining its gradient), backward of ⟨u, output⟩; returns (‖x‖², ‖∂/∂x‖²) per
    init."""
    dev = next(model.parameters()).device
    u, lengths, grads = None, [], []
    for i in range(n_inits):
        if i > 0:
            del net  # noqa: F821 - what a user's `net = build()` does, minus the moment both exist
            torch.manual_seed(i)
            net = rebuild().to(dev)
            net.train(model.training)
        else:
            net = model
        seen = []

        def hook(module, inp, out):
            out.retain_grad()
            seen.append(out)

        handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, block)]
        try:
            out = _call(net, inputs)
            if u is None:
                u = torch.randn(out.shape, generator=generator, device=out.device)
            (out * u).sum().backward()
        finally:
            for h in handles:
                h.remove()
        lengths.append(torch.stack([t.detach().pow(2).flatten(1).sum(1) for t in seen]))
        grads.append(torch.stack([t.grad.pow(2).flatten(1).sum(1) for t in seen]))
        net.zero_grad(set_to_none=True)
    return torch.stack(lengths), torch.stack(grads)


def _preimport() -> None:
    """Import what ``check`` imports lazily, so its first call is not charged for module loading."""
    import importlib

    for mod in ("capture", "stream", "structure", "law", "verdicts", "families", "jacobian", "lanczos", "predict"):
        try:
            importlib.import_module(f"deepstart.diagnose.{mod}")
        except ImportError:
            pass


def child(name: str, n_inits: int, threads: int, device: str = "cpu") -> dict:
    torch.set_num_threads(threads)
    dev = torch.device(device)
    from deepstart import check
    from deepstart.diagnose._device import to_device

    _preimport()
    if name == "gpt2":
        import transformers  # noqa: F401 - imported before the first RSS reading, like torch

    gc.collect()
    rss_import = rss_mb()
    model, inputs, rebuild, block = {"resnet56": _resnet56, "gpt2": _gpt2}[name]()
    gc.collect()
    rss_build = rss_mb()
    params = {id(p): p for p in model.parameters()}.values()
    n_params = sum(p.numel() for p in params)
    param_mb = sum(p.numel() * p.element_size() for p in params) / 1e6
    out = {"model": name, "n_inits": n_inits, "threads": threads, "params_m": round(n_params / 1e6, 2),
           "param_mb": round(param_mb, 1), "rss_import_mb": round(rss_import, 1), "rss_build_mb": round(rss_build, 1),
           "device": str(dev)}
    if dev.type != "cpu":  # the model and its inputs on the device; check measures them there, in place
        model.to(dev)
        inputs = to_device(inputs, dev)  # a tensor, a tuple or a dict of tensors
        out["cuda_build_mb"] = _cuda_mb(dev, peak=False)
        _reset_cuda_peak(dev)
    kwargs = {"factory": rebuild} if name == "resnet56" else {}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        report = check(model, inputs, n_inits=n_inits, generator=torch.Generator().manual_seed(0), device=dev,
                       **kwargs)
    except Exception:
        out.update(check_s=round(time.perf_counter() - t0, 2), peak_mb=round(peak_mb(), 1),
                   error=traceback.format_exc())
        return out
    t_check, c_check = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_mb()
    if dev.type != "cpu":
        out["cuda_peak_mb"] = _cuda_mb(dev, peak=True)
        _reset_cuda_peak(dev)
    out.update(check_s=round(t_check, 2), check_cpu_s=round(c_check, 2), peak_mb=round(peak, 1),
               check_increase_mb=round(peak - rss_build, 1),
               path=report.path, jacobian=None if report.jacobian is None else report.jacobian.get("method"),
               report_seconds=round(report.seconds, 2))
    del report
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    straightforward_loop(model, inputs, rebuild, block, n_inits, torch.Generator(device=dev).manual_seed(0))
    if dev.type != "cpu":
        out["cuda_peak_after_baseline_mb"] = _cuda_mb(dev, peak=True)  # also waits for the loop's queued work
    t_base, c_base = time.perf_counter() - t0, time.process_time() - c0
    out.update(baseline_s=round(t_base, 2), baseline_cpu_s=round(c_base, 2), ratio=round(t_check / t_base, 2),
               cpu_ratio=round(c_check / c_base, 2), peak_after_baseline_mb=round(peak_mb(), 1))
    if name == "gpt2":
        from torch.utils.flop_counter import FlopCounterMode

        from _roofline import fraction, gemm_rate

        with FlopCounterMode(display=False) as counter:
            straightforward_loop(model, inputs, rebuild, block, 1, torch.Generator(device=dev).manual_seed(0))
        flop = n_inits * float(counter.get_total_flops())
        frac, limit = fraction(seconds=t_check, flop=flop, rate=gemm_rate(128, 768, 3072, device=str(dev)))
        out["roofline"] = {"name": "check_gpt2", "ratio": t_base / t_check, "baseline_s": t_base, "ours_s": t_check,
                           "roofline_fraction": frac, "limit": limit, "device": str(dev), "flop": flop,
                           "peak_mb": out["peak_mb"]}
        if dev.type != "cpu":
            out["roofline"]["cuda_peak_mb"] = out["cuda_peak_mb"]
    return out


# --------------------------------------------------------------------------------------------------------- parent
def _human(r: dict) -> str:
    tgt = TARGETS[r["model"]]
    head = (f"{r['model']}: {r['params_m']:.2f} M params ({r['param_mb']:.0f} MB), {r['n_inits']} inits, "
            f"{r['threads']} threads: RSS after imports {r['rss_import_mb']:.0f} MB, after build "
            f"{r['rss_build_mb']:.0f} MB")
    if r.get("device", "cpu") != "cpu":
        head += (f" (on {r['device']}: GPU memory after the move {r.get('cuda_build_mb')} MB, peak in check "
                 f"{r.get('cuda_peak_mb')} MB, in the baseline {r.get('cuda_peak_after_baseline_mb')} MB)")
    if "error" in r:
        return head + f"; check FAILED after {r['check_s']:.1f} s (peak {r.get('peak_mb', float('nan')):.0f} MB)"
    target = f"peak ≤ {tgt['peak_mb']} MB" + (f", check ≤ {tgt['check_s']} s" if tgt["check_s"] else "")
    return (head + f", peak {r['peak_mb']:.0f} MB (+{r['check_increase_mb']:.0f} MB in check); check "
            f"{r['check_s']:.1f} s ({r['path']}, Jacobian {r['jacobian']}) vs baseline {r['baseline_s']:.1f} s → "
            f"check/baseline {r['ratio']:.2f} (CPU time {r['check_cpu_s']:.0f} s / {r['baseline_cpu_s']:.0f} s = "
            f"{r['cpu_ratio']:.2f}); target {target}: met {'yes' if r['met'] else 'no'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--n-inits", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="n_inits = 2 (a smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where check and the loop run")
    ap.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    n_inits = 2 if args.quick else args.n_inits
    if args.child:
        print(json.dumps(child(args.child, n_inits, args.threads, args.device)))
        return
    results = []
    for name in args.models:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, "--n-inits", str(n_inits),
                               "--threads", str(args.threads), "--device", args.device],
                              capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            r = {"model": name, "n_inits": n_inits, "threads": args.threads, "device": args.device,
                 "returncode": proc.returncode, "error": proc.stderr[-4000:]}
            print(f"{name}: child process failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        else:
            r = json.loads(lines[-1])
            tgt = TARGETS[name]
            r["target_peak_mb"], r["target_check_s"] = tgt["peak_mb"], tgt["check_s"]
            r["met"] = ("error" not in r and r["peak_mb"] <= tgt["peak_mb"]
                        and (tgt["check_s"] is None or r["check_s"] <= tgt["check_s"]))
            print(_human(r))
            if "error" in r:
                print(r["error"], end="")
        r.update({"benchmark": "check_memory", "python": platform.python_version(), "torch": torch.__version__,
                  "machine": platform.machine()})
        results.append(r)
    for r in results:
        roof = r.pop("roofline", None)
        print(json.dumps(r))
        if roof is not None:
            print(f"{roof['name']}: {roof['ratio']:.2f}x the baseline, {100 * roof['roofline_fraction']:.0f}% of the "
                  f"measured {roof['limit']} limit")
            print(json.dumps(roof))


if __name__ == "__main__":
    main()
