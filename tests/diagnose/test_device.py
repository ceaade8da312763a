"""``device=`` of ``check``, ``fix_``, ``jacobian_singular_values`` and ``sample_jacobian_spectrum``, and
``deepstart check --device``: the CPU gives exactly the default's results, bad devices are refused with a
ValueError (exit code 2 on the command line) that says what to pass, and the user's model is never moved."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from torch import nn

from deepstart.cli import main
from deepstart.diagnose import check, fix_, jacobian_singular_values, sample_jacobian_spectrum
from deepstart.diagnose._device import model_on, resolve_device

SEED = 20240607
CUDA = torch.cuda.is_available()
ARRAYS = ("sq", "grad", "pre_sq", "pre_grad", "branch_sq", "dead", "token_cos", "m0")


def _gen(offset=0):
    return torch.Generator().manual_seed(SEED + offset)


@pytest.fixture
def relu_net(seeded_mlp):
    return lambda depth=6, width=32, gain=2.0: seeded_mlp(SEED + 100, depth, width, gain)


def _same_reports(a, b):
    for key in ARRAYS:
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert (a.jacobian is None) == (b.jacobian is None)
    if a.jacobian is not None:
        np.testing.assert_array_equal(a.jacobian["values"], b.jacobian["values"])
    assert [f.to_dict() for f in a.findings] == [f.to_dict() for f in b.findings]


@pytest.mark.parametrize("reinit", [None, "reset", "he"])
def test_cpu_device_gives_the_default_results(reinit, relu_net):
    x = torch.randn(8, 32, generator=_gen(1))
    default = check(relu_net(), x, n_inits=3, reinit=reinit, generator=_gen(2))
    on_cpu = check(relu_net(), x, n_inits=3, reinit=reinit, generator=_gen(2), device="cpu")
    also = check(relu_net(), x, n_inits=3, reinit=reinit, generator=_gen(2), device=torch.device("cpu"))
    _same_reports(default, on_cpu)
    _same_reports(default, also)


@pytest.mark.parametrize("device, message", [
    ("tpu-v9", "is not a torch device"),
    ("meta", "not supported"),
    ("cuda:9999" if CUDA else "cuda", "CUDA device" if CUDA else "CUDA is not available"),
])
def test_bad_devices_are_refused_with_advice(device, message, relu_net):
    model = relu_net(depth=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for call in (lambda: check(model, input_shape=(32,), n_inits=2, device=device),
                 lambda: fix_(model, input_shape=(32,), n_inits=2, device=device),
                 lambda: jacobian_singular_values(model, torch.randn(1, 32), device=device),
                 lambda: sample_jacobian_spectrum("relu", 2, 8, n_samples=2, device=device)):
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert "'cpu'" in str(info.value)  # the advice names what to pass instead
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was changed


def test_resolve_device_names_the_supported_ones():
    assert resolve_device(None) is None
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'cpu', 'cuda', 'mps'"):
        resolve_device("meta")


def test_model_on_copies_and_keeps_ties_never_moves_the_given_model():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.BatchNorm1d(4))
    model[2].weight = model[0].weight  # tied
    assert model_on(model, torch.device("cpu")) is model  # already there: no copy
    copy = model_on(model, torch.device("meta"))  # any other device: a copy made there
    assert copy is not model and copy[0].weight.device.type == "meta"
    assert copy[2].weight is copy[0].weight and copy[3].running_mean.device.type == "meta"
    assert all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])


def test_fix_on_cpu_device_gives_the_default_result(relu_net):
    def run(**kw):
        model = relu_net(gain=1.0)  # LeCun gain for ReLU: lengths shrink, a fix is applied
        result = fix_(model, input_shape=(32,), n_inits=3, generator=_gen(3), jacobian=False, **kw)
        return result, model
    (a, ma), (b, mb) = run(), run(device="cpu")
    assert a.applied == b.applied and a.verified == b.verified
    _same_reports(a.after, b.after)
    assert all(torch.equal(p, q) for p, q in zip(ma.parameters(), mb.parameters()))


@pytest.mark.parametrize("method", ["exact", "lanczos"])
def test_jacobian_on_cpu_device_gives_the_default_values(method, relu_net):
    model, x = relu_net(depth=3, width=16), torch.randn(1, 16, generator=_gen(4))
    kw = {"method": method, "k": 4 if method == "lanczos" else None}
    a = jacobian_singular_values(model, x, generator=_gen(5), **kw)
    b = jacobian_singular_values(model, x, generator=_gen(5), device="cpu", **kw)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.moments == b.moments


def test_sample_jacobian_spectrum_on_cpu_device_gives_the_default_values():
    a = sample_jacobian_spectrum("tanh", 4, 8, n_samples=3, generator=_gen(6))
    b = sample_jacobian_spectrum("tanh", 4, 8, n_samples=3, generator=_gen(6), device="cpu")
    np.testing.assert_array_equal(a, b)


def test_check_leaves_the_tf32_settings_as_they_were(relu_net):
    before = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    check(relu_net(depth=2), input_shape=(32,), n_inits=2, jacobian=False, device="cpu")
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before


@pytest.mark.parametrize("device", ["nonsense", "meta"] + ([] if CUDA else ["cuda"]))
def test_cli_bad_device_exits_2(device, capsys):
    assert main(["check", "mlp:depth=3,width=8", "--device", device, "--quiet", "--no-jacobian"]) == 2
    assert "device" in capsys.readouterr().err


def test_cli_cpu_device():
    assert main(["check", "mlp:depth=3,width=8", "--device", "cpu", "--quiet", "--no-jacobian",
                 "--n-inits", "2"]) == 0


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_given_weights_match_the_cpu_and_the_model_stays_put(relu_net):
    """Given-weights mode (n_inits=1): the same weights and inputs on both devices, so every statistic agrees to
    float32 rounding (TF32 is off inside check)."""
    model, x = relu_net(depth=8, width=64), torch.randn(8, 64, generator=_gen(7))
    cpu = check(model, x, n_inits=1, generator=_gen(8), device="cpu")
    gpu = check(model, x, n_inits=1, generator=_gen(8), device="cuda")
    assert next(model.parameters()).device.type == "cpu"
    for key in ("sq", "grad", "pre_sq", "pre_grad"):
        np.testing.assert_allclose(getattr(gpu, key), getattr(cpu, key), rtol=1e-4, err_msg=key)
    np.testing.assert_array_equal(gpu.dead, cpu.dead)
    resampled = check(model, x, n_inits=3, generator=_gen(9), device="cuda", jacobian=False)
    assert resampled.sq.shape == (3, 8, len(resampled.sites))
