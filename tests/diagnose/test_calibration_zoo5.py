"""The fifth held-out zoo's own builders (tools/calibration/zoo5.py, zoo5_models.py), without ``check``: the
Nyströmformer cases get inputs of the length their landmarks assume (else transformers mixes the batch's rows),
the PatchTST adapter is PatchTSTModel on a one-channel series, the BiT without GroupNorm has none left, and
``scaled`` touches only the weights it names."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from test_calibration_zoo import _build

from tools.calibration import train
from tools.calibration import zoo5_models as zm
from tools.calibration.zoo5 import CASES5


@pytest.mark.parametrize("name", ["nystromformer-4x64", "nystromformer-4x64-std2e-6"])
def test_nystromformer_rows_stay_independent(name):
    """Truth and training feed 32 tokens, the model's segment_means_seq_len: changing rows 1-3 leaves row 0's
    output unchanged (at another length transformers' landmark reshape folds rows into one another: an error, or
    silently mixed rows when the sizes happen to divide)."""
    case = CASES5[name]
    model = _build(case, 0)
    ids = case.inputs(torch.Generator().manual_seed(0))["input_ids"]
    assert ids.shape[1] == model.config.segment_means_seq_len == train.SEQ
    other = ids.clone()
    other[1:] = (other[1:] + 1) % 1000
    with torch.no_grad():
        a, b = model(input_ids=ids).last_hidden_state, model(input_ids=other).last_hidden_state
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-5)
    assert not torch.allclose(a[1], b[1], atol=1e-2)


def test_patchtst_adapter_is_patchtst_on_one_channel():
    model = _build(CASES5["patchtst-3x64"], 0)
    x = torch.randn(2, 1600, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(input_values=x)
        direct = model.model(past_values=x[:, :, None]).last_hidden_state
    assert direct.shape == (2, 1, 100, 64) and out.shape == (2, 100, 64)
    torch.testing.assert_close(out, direct[:, 0], rtol=0, atol=0)


def test_bit_without_group_norm_keeps_activations_and_standardized_convs():
    """No GroupNorm is left, as many activations as there were norms, and the convs are the same modules (still
    weight-standardized: a filter scaled by 7 gives the same output)."""
    torch.manual_seed(0)
    stock = CASES5["bit-2+2+2"].build()
    n_norms = sum(isinstance(m, nn.GroupNorm) for m in stock.modules())
    bare = zm.without_group_norm(stock)
    assert n_norms > 0 and not any(isinstance(m, nn.GroupNorm) for m in bare.modules())
    assert sum(type(m).__name__ == "_ActivationOnly" for m in bare.modules()) == n_norms
    conv = bare.embedder.convolution
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = conv(x)
        conv.weight.mul_(7.0)
        after = conv(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_scaled_touches_only_the_named_weights():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3), nn.Conv1d(3, 3, 1)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    zm.scaled(model, 10.0, (nn.Linear,), under="1")
    after = model.state_dict()
    torch.testing.assert_close(after["1.0.weight"], 10 * before["1.0.weight"])
    assert all(torch.equal(after[k], before[k]) for k in before if k != "1.0.weight")
