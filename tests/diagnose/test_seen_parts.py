"""The failures the first held-out half of issue 18 showed (docs/laws.md, "seen"): parts the reader did not read
or read wrongly. Each test builds a small model (seconds), checks that the part is read and the verdict is right,
and that the broken variant is caught."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import check

VOCAB, SEQ, WIDTH = 64, 12, 32


def _check(build, inputs, seed=0, n_inits=3):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return check(build(), inputs(g), factory=build, n_inits=n_inits, generator=g, jacobian=False)


def _errors(report):
    return [f for f in report.findings if f.severity == "error"]


def _describe(report):
    return f"verdict {report.verdict}; " + "; ".join(str(f) for f in report.findings)


def _tokens(g):
    return torch.randint(0, VOCAB, (4, SEQ), generator=g)


# ----------------------------------------------------------------------- constants of the forward (GPT-J rotary)
class PositionLM(nn.Module):
    """Embedding plus a sinusoidal position table (a buffer read by position index, Vaswani et al. 2017) →
    ``depth`` × (Linear, ReLU): the table is a constant of the forward (no parameter, no input enters it)."""

    def __init__(self, depth=6, std=None):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, WIDTH)
        self.layers = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(WIDTH, WIDTH), nn.ReLU())])
        pos = torch.arange(64.0)[:, None] / 10000 ** (torch.arange(0, WIDTH, 2.0) / WIDTH)
        self.register_buffer("table", torch.cat([pos.sin(), pos.cos()], -1), persistent=False)
        for m in self.layers[::2]:
            nn.init.normal_(m.weight, 0.0, std or math.sqrt(2.0 / WIDTH))
            nn.init.zeros_(m.bias)

    def forward(self, ids):
        return self.layers(self.emb(ids) + self.table[torch.arange(ids.shape[1])])


@pytest.mark.parametrize("std, broken", [(None, False), (0.5 / math.sqrt(WIDTH), True)])
def test_a_table_read_by_position_is_a_constant_not_a_layer(std, broken):
    report = _check(lambda: PositionLM(std=std), _tokens)
    assert not any(s["module_type"] == "PositionLM" for s in report.sites)  # the table read at the root
    assert len([s for s in report.sites if s["kind"] == "layer"]) == 7, [s["name"] for s in report.sites]
    assert not any(f.category == "nonfinite" for f in report.findings), _describe(report)
    assert bool(_errors(report)) == broken, _describe(report)


def _gptj(**kw):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPTJConfig(vocab_size=VOCAB, n_embd=32, n_layer=4, n_head=2, rotary_dim=8, n_positions=32,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False, **kw)
    config._attn_implementation = "eager"
    return transformers.GPTJForCausalLM(config).train()


@pytest.mark.parametrize("std, broken", [(0.02, False), (2e-6, True)])
def test_gptj_rotary_table_is_not_measured(std, broken):
    report = _check(lambda: _gptj(initializer_range=std), _tokens, n_inits=2)
    assert not any("rotary" in s["name"] for s in report.sites), [s["name"] for s in report.sites]
    assert not any(f.category == "nonfinite" for f in report.findings), _describe(report)
    assert (report.verdict == "FAILING") == broken and (broken or report.healthy), _describe(report)
