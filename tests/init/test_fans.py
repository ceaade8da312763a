"""compute_fans: the one place fans are computed (PyTorch weight layouts)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from deepstart.init import LAYOUTS, compute_fans, layout_of


@pytest.mark.parametrize("module, fans", [
    (nn.Linear(7, 5), (7, 5)),
    (nn.Conv1d(3, 8, 5), (15, 40)),
    (nn.Conv2d(4, 6, (3, 2)), (24, 36)),
    (nn.Conv3d(2, 4, 3), (54, 108)),
    (nn.Conv2d(8, 12, 3, groups=4), (2 * 9, 3 * 9)),       # each output sees in/g channels; each input feeds out/g
    (nn.ConvTranspose2d(6, 4, 3), (6 * 9, 4 * 9)),          # weight [in, out, k, k]: an output sums over in·k² taps
    (nn.ConvTranspose1d(8, 6, 5, groups=2), (4 * 5, 3 * 5)),
])
def test_real_modules(module, fans):
    groups = getattr(module, "groups", 1)
    assert compute_fans(module.weight, layout_of(module), groups=groups) == fans


@pytest.mark.parametrize("shape", [(5, 3), (64, 3, 3, 3), (8, 4, 5), (2, 3, 1, 4, 2)])
def test_matches_torch_for_ungrouped_layers(shape):
    assert compute_fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_layouts_and_errors():
    assert LAYOUTS == ("auto", "linear", "conv", "conv_transpose", "linear_transposed", "embedding")
    assert layout_of(nn.Linear(2, 2)) == "auto" and layout_of(nn.Conv2d(1, 1, 1)) == "conv"
    assert layout_of(nn.ConvTranspose3d(1, 1, 1)) == "conv_transpose"
    assert layout_of(nn.Embedding(9, 4)) == "embedding"  # Hugging Face Conv1D: tests/init/test_hf_layers.py
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        compute_fans((5,))
    with pytest.raises(ValueError, match="valid choices: auto, linear, conv, conv_transpose, linear_transposed, emb"):
        compute_fans((5, 5), layout="dense")
    with pytest.raises(ValueError, match="layout='conv'"):
        compute_fans((5, 5, 3), layout="linear")
    with pytest.raises(ValueError, match="groups=3"):
        compute_fans((8, 2, 3, 3), groups=3)
    with pytest.raises(TypeError, match="shape"):
        compute_fans(3)
