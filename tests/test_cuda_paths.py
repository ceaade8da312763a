"""Every ``device=`` path on a CUDA GPU (issue 14): diagnostics, training, sweeps and a reproduction.

Each test is marked ``cuda`` and skipped where ``torch.cuda.is_available()`` is False, so the default suite runs
offline on the CPU; ``benchmarks/gpu.sh`` runs them with ``pytest -m cuda`` (docs/gpu.md). Given weights and given
inputs make CPU and GPU compute the same function, so those comparisons are free of Monte Carlo noise: float32
statistics agree to rounding (TF32 is off inside the diagnostics, so ≈ 1e-6 relative per layer; 1e-4 allows
depth-8 accumulation), float64 Jacobian spectra to 1e-8. Re-inits and probes drawn on the GPU are reproducible per
device only, so results that depend on them are compared with theory instead.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepstart.diagnose import check, fix_, jacobian_singular_values, sample_jacobian_spectrum

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SEED = 20240611  # fixed: every run draws the same weights, inputs and probes
STATS = ("sq", "grad", "pre_sq", "pre_grad")


def _gen(offset=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(SEED + offset)


@pytest.fixture
def relu_net(seeded_mlp):
    return lambda depth=8, width=64, gain=2.0, activation=nn.ReLU: seeded_mlp(SEED + 100, depth, width, gain,
                                                                              activation)


def _verdicts(report):
    return [(f.category, f.severity, f.layer) for f in report.findings]


def _on(model, kind):
    return all(t.device.type == kind for t in [*model.parameters(), *model.buffers()])


# --------------------------------------------------------------------------------------------------- diagnostics
@pytest.mark.parametrize("gain", [2.0, 1.0])  # He (healthy) and LeCun for ReLU (lengths shrink: an error verdict)
def test_check_given_weights_match_the_cpu(gain, relu_net):
    model, x = relu_net(gain=gain), torch.randn(8, 64, generator=_gen(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cpu = check(model, x, n_inits=1, generator=_gen(2), device="cpu")
    gpu = check(model, x, n_inits=1, generator=_gen(2), device="cuda")
    assert _on(model, "cpu") and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert _verdicts(gpu) == _verdicts(cpu) and gpu.healthy == cpu.healthy
    for key in STATS:
        np.testing.assert_allclose(getattr(gpu, key), getattr(cpu, key), rtol=1e-4, err_msg=key)
    np.testing.assert_array_equal(gpu.dead, cpu.dead)
    sv_gpu, sv_cpu = gpu.jacobian["values"], cpu.jacobian["values"]  # float32 SVD: errors ≈ eps · σ_max each
    np.testing.assert_allclose(sv_gpu, sv_cpu, rtol=1e-4, atol=1e-4 * sv_cpu.max())


def test_check_measures_a_gpu_model_in_place_and_leaves_it_there(relu_net):
    model, x = relu_net(depth=4).cuda(), torch.randn(8, 64, generator=_gen(3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    here = check(model, x.cuda(), n_inits=1, generator=_gen(4))  # device=None: where the model and inputs are
    on_cpu = check(model, x, n_inits=1, generator=_gen(4), device="cpu")  # a CPU copy is measured
    assert _on(model, "cuda") and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for key in STATS:
        np.testing.assert_allclose(getattr(here, key), getattr(on_cpu, key), rtol=1e-4, err_msg=key)
    resampled = check(model, x, n_inits=3, generator=_gen(5), device="cuda", jacobian=False)
    assert resampled.sq.shape == (3, 8, len(resampled.sites)) and np.isfinite(resampled.sq).all()


def test_check_turns_tf32_off_and_restores_it(relu_net):
    """A user who enabled TF32 gets the same float32 statistics as with it off (check turns it off for the call)
    and keeps the setting afterwards (the precision API of the installed torch: ``fp32_precision`` or the older
    ``allow_tf32``)."""
    matmul = torch.backends.cuda.matmul
    new_api = hasattr(matmul, "fp32_precision")
    saved = matmul.fp32_precision if new_api else matmul.allow_tf32
    model, x = relu_net(), torch.randn(8, 64, generator=_gen(10))
    reference = check(model, x, n_inits=1, generator=_gen(11), device="cuda", jacobian=False)
    try:
        if new_api:
            matmul.fp32_precision = "tf32"
        else:
            matmul.allow_tf32 = True
        with_tf32 = check(model, x, n_inits=1, generator=_gen(11), device="cuda", jacobian=False)
        assert (matmul.fp32_precision == "tf32") if new_api else matmul.allow_tf32
    finally:
        if new_api:
            matmul.fp32_precision = saved
        else:
            matmul.allow_tf32 = saved
    for key in STATS:  # TF32 would be off by ≈ 1e-3 relative per layer
        np.testing.assert_allclose(getattr(with_tf32, key), getattr(reference, key), rtol=1e-5, err_msg=key)


def test_fix_on_cuda_fixes_the_model_where_it_is(relu_net):
    model = relu_net(depth=6, width=32, gain=1.0)  # LeCun gain for ReLU: lengths shrink by 2^-6, He is the fix
    result = fix_(model, input_shape=(32,), n_inits=4, generator=_gen(6), jacobian=False, device="cuda")
    assert result.applied and result.recommendation.scheme == "he"
    assert result.verified and result.after.healthy
    assert _on(model, "cpu")  # fixed in place on its own device, never moved
    std = np.mean([float(m.weight.detach().std()) for m in model if isinstance(m, nn.Linear)])
    assert abs(std / math.sqrt(2 / 32) - 1) < 0.1  # He std sqrt(2/n); 6 × 1024 draws: SE of the std ≈ 1%


@pytest.mark.parametrize("method", ["exact", "lanczos"])
def test_jacobian_float64_on_cuda_matches_the_cpu(method, relu_net):
    """Same float64 weights, input and probes (a CUDA generator draws them for both devices; rademacher moves
    them), Krylov space up to the full dimension: the two devices agree to float64 rounding."""
    model = relu_net(depth=4, width=24, activation=nn.Tanh).double()
    x = torch.randn(1, 24, generator=_gen(7), dtype=torch.float64)
    kw = {"method": method}
    if method == "lanczos":
        kw.update(k=4, n_probes=8, tol=1e-10)
    cpu = jacobian_singular_values(model, x, generator=_gen(8, "cuda"), device="cpu", **kw)
    gpu = jacobian_singular_values(model, x, generator=_gen(8, "cuda"), device="cuda", **kw)
    assert _on(model, "cpu")
    np.testing.assert_allclose(gpu.values, cpu.values, rtol=1e-8)
    np.testing.assert_allclose(gpu.moments, cpu.moments, rtol=1e-8)
    if method == "lanczos":
        exact = jacobian_singular_values(model, x, method="exact", device="cpu")
        np.testing.assert_allclose(gpu.values, exact.values[:4], rtol=1e-8)


def test_sample_jacobian_spectrum_on_cuda_has_mean_one_at_criticality():
    """E[tr JJᵀ/N] = (σ_w² E φ'²)^L = 1 for ReLU with σ_w² = 2, σ_b = 0 (THEORY.md §2); the per-network means are
    compared with 1 at 5 standard errors computed from the samples (tests/diagnose/test_jacobian_sampling.py)."""
    ev = sample_jacobian_spectrum("relu", 6, 64, weights="gaussian", sigma_w=2 ** 0.5, sigma_b=0.0, n_samples=48,
                                  generator=_gen(9), device="cuda")
    assert ev.dtype == np.float64 and ev.shape == (48, 64)
    m1 = ev.mean(axis=1)
    assert abs(m1.mean() - 1.0) < 5 * m1.std(ddof=1) / math.sqrt(m1.size)
    again = sample_jacobian_spectrum("relu", 6, 64, weights="gaussian", sigma_w=2 ** 0.5, sigma_b=0.0, n_samples=48,
                                     generator=_gen(9), device="cuda")
    np.testing.assert_array_equal(ev, again)  # reproducible per device


def test_cli_check_on_cuda():
    from deepstart.cli import main

    assert main(["check", "mlp:depth=3,width=8", "--device", "cuda", "--quiet", "--no-jacobian",
                 "--n-inits", "2"]) == 0


# ------------------------------------------------------------------------------------------------------ training
def _trial(**kw):
    from deepstart.experiments.trial import Trial

    return Trial(**{"dataset": "toy", "depth": 1, "width": 8, "batch_size": 64, "steps": 6, "lr": 0.1,
                    "test_limit": 128, "seed": 3, **kw})


def test_train_single_on_cuda_starts_from_the_cpu_init():
    """Weights are drawn by CPU generators and then moved: the same seed trains the same network on both devices,
    so six SGD steps in float32 end at the same loss up to rounding (1e-3 relative is generous)."""
    from deepstart.experiments.train import train_batch, train_single

    cpu = train_single(_trial())
    gpu, model = train_single(_trial(), device="cuda", return_model=True)
    assert _on(model, "cuda")
    loss = gpu.history[-1]["train_loss"]
    assert math.isfinite(loss) and not gpu.diverged
    assert loss == pytest.approx(cpu.history[-1]["train_loss"], rel=1e-3)
    (batched,) = train_batch([_trial()], device="cuda")
    assert batched.history[-1]["train_loss"] == pytest.approx(loss, rel=1e-3)


def test_run_sweep_on_cuda_records_the_device(tmp_path):
    from deepstart.experiments.runners import run_sweep
    from deepstart.experiments.store import Store

    db = tmp_path / "r.db"
    summary = run_sweep([_trial()], db, name="gpu", progress=False, device="cuda")
    assert summary.ran == 1
    with Store(db) as store:
        (result,) = store.results("gpu")
    assert result.extra["provenance"]["device"].startswith("cuda")
    assert math.isfinite(result.history[-1]["train_loss"])
    again = run_sweep([_trial()], db, name="gpu", progress=False, device="cuda")
    assert (again.ran, again.skipped) == (0, 1)  # same device: the stored result is reused


def test_reproduce_tiny_on_cuda(tmp_path):
    from deepstart.experiments.reproduce import reproduce

    (report,) = reproduce("pennington", "tiny", device="cuda", out=tmp_path / "out")
    assert report.mode == "tiny" and report.claims
    assert (tmp_path / "out" / "pennington.json").is_file()
