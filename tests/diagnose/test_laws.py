"""``check`` judges each part by its own law (issue 18): the models of :mod:`part_models` reproduce the failures of
one global family label, and each test also flips the verdict by changing only the numbers the part's law reads."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

import part_models as pm
from deepstart.diagnose import check
from deepstart.diagnose.parts import Addition, Norm, Opaque, Recurrent, Segment, read_parts

N_INITS = 4


def _check(build, inputs, seed=0, n_inits=N_INITS):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return check(build(), inputs(g), factory=build, n_inits=n_inits, generator=g, jacobian=False)


@functools.lru_cache(maxsize=None)
def _report(name):
    return _check(*CASES[name])


CASES = {
    "parallel": (lambda: pm.ParallelLM(), pm.tokens),
    "parallel-x50": (lambda: pm.ParallelLM(std=1.0), pm.tokens),
    "convnext": (lambda: pm.ConvNeXt(), pm.images),
    "fixup": (lambda: pm.FixupResNet(), pm.images),
    "relpos": (lambda: pm.RelativeEncoder(), pm.windows),
    "rnn-half": (lambda: pm.StackedRNN(scale=0.5), pm.sequences),
    "lstm": (lambda: pm.LSTMLM(), pm.tokens),
    "custom": (lambda: pm.CustomFunctionMLP(), pm.vectors),
}


def _errors(report):
    return [f for f in report.findings if f.severity == "error"]


def _describe(report):
    return "; ".join(str(f) for f in report.findings)


def _parts(report, kind):
    return [p for p in read_parts(report) if isinstance(p, kind)]


def test_parallel_block_is_one_addition_with_two_normalized_branches():
    report = _report("parallel")
    adds = _parts(report, Addition)
    assert len(adds) == 6 and all(a.parallel == 2 and a.normalized and a.main for a in adds), adds
    assert all(a.opener.startswith("2 parallel branches, first norm:layer_norm") for a in adds), adds
    stream = [p for p in _parts(report, Segment) if p.growth == "additive"]
    assert len(stream) == 1 and len(stream[0].links) == 6, read_parts(report)
    assert not _errors(report), _describe(report)


def test_parallel_block_weights_x50_are_caught_by_the_branch_law():
    report = _report("parallel-x50")
    hits = [f for f in _errors(report) if f.category == "branches"]
    assert len(hits) == 6 and all(f.measured > 100 for f in hits), _describe(report)
    assert all("Xiong" in f.source for f in hits)


def test_convnext_layer_scale_belongs_to_the_branch():
    """γ = 1e-6 is the branch's scale (η), not a collapsing layer: the stock model gets no error, and the branch
    gain is 1e-12 × what the same block has without layer scale (γ enters squared)."""
    report = _report("convnext")
    assert not _errors(report), _describe(report)
    adds = _parts(report, Addition)
    assert len(adds) == 6 and all(a.scale == pytest.approx(1e-6, rel=1e-3) for a in adds), adds
    assert all(a.normalizer and a.normalizer.endswith(".norm") and a.opener == "layer:Conv2d" for a in adds), adds
    assert not any(f.layer.endswith("pw2") for f in report.findings), _describe(report)
    unscaled = _check(lambda: pm.ConvNeXt(layer_scale=1.0), pm.images)
    from deepstart.diagnose.laws.addition import branch_gain

    first = adds[0]
    g_small = branch_gain(report, first)[0]
    g_one = branch_gain(unscaled, next(a for a in _parts(unscaled, Addition) if a.site == first.site))[0]
    assert g_small - g_one == pytest.approx(2 * math.log(1e-6), abs=1e-3)


def test_convnext_norms_reset_the_length_between_stages():
    report = _report("convnext")
    norms = [p for p in _parts(report, Norm) if p.main]
    assert [n.site for n in norms][:2] == ["stem.1", "stages.1.0"], norms
    eps = {n.site: n.eps for n in _parts(report, Norm)}
    assert eps.pop("norm") == pytest.approx(1e-5) and all(e == pytest.approx(1e-6) for e in eps.values()), eps
    segments = _parts(report, Segment)
    assert all(not set(s.sites) & {n.site for n in norms} for s in segments), segments


def test_fixup_scalar_parameters_do_not_break_the_chain():
    report = _report("fixup")
    assert report.healthy, _describe(report)
    main = [s["name"] for s in report.main_sites]
    assert main[:2] == ["conv", "blocks.0"] and all(report.sites[j]["source"] for j in report.main_idx[1:-1])
    assert all(s["zero_init"] for s in report.sites if s["name"].endswith("conv2"))
    assert [s["activation"] for s in report.sites if s["name"].endswith("conv1")] == ["relu"] * 6
    assert not any(f.category == "dead" for f in report.findings), _describe(report)


def test_relative_position_index_buffer_is_read():
    report = _report("relpos")
    assert not any(s.get("opaque") for s in report.sites), [s["opaque"] for s in report.sites if s.get("opaque")]
    tables = [s for s in report.sites if s["module_name"].startswith("attn.") and s["kind"] == "layer" and
              s["source"] is None and not s["module_name"].endswith((".qkv", ".out"))]
    assert tables and not any(s["main"] for s in tables)  # a table read by a constant index is a side input
    assert report.healthy, _describe(report)


def test_hf_swin_relative_position_tables_do_not_crash():
    transformers = pytest.importorskip("transformers")
    config = transformers.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[2], num_heads=[2],
                                     window_size=4)

    def build():
        return transformers.SwinModel(config)

    report = _check(build, lambda g: torch.randn(2, 3, 32, 32, generator=g), n_inits=2)
    assert report.sites and not _errors(report), _describe(report)


def test_structure_errors_become_not_assessed_parts(monkeypatch):
    """Any exception while reading an op is a note naming the op and an opaque part, never a crash."""
    from deepstart.diagnose import structure

    real = structure._weight_stats

    def broken(op, params):
        if op.module == "layers.3":
            raise RuntimeError("unreadable op")
        return real(op, params)

    monkeypatch.setattr(structure, "_weight_stats", broken)
    report = _check(lambda: pm.CustomFunctionMLP(depth=6), pm.vectors, n_inits=2)
    opaque = _parts(report, Opaque)
    assert any(p.site == "layers.3" and "RuntimeError: unreadable op" in p.reason for p in opaque), opaque
    assert report.verdict == "NOT ASSESSED"


def test_stacked_tanh_rnn_with_shrinking_signal_is_caught():
    report = _report("rnn-half")
    rec = _parts(report, Recurrent)
    assert rec == [Recurrent("rnn", "tanh", 6, "rnn")]
    hits = [f for f in _errors(report) if f.layer == "rnn" and f.category == "gradients"]
    assert hits and hits[0].measured < -10, _describe(report)
    assert not report.healthy


def test_stock_lstm_language_model_is_not_broken():
    report = _report("lstm")
    assert _parts(report, Recurrent) == [Recurrent("lstm", "lstm", 2, "lstm")]
    assert not _errors(report), _describe(report)
    data = report.recurrent["lstm"]
    assert data["layer_sq"].shape == (N_INITS, 2) and data["time_grad"].shape == (N_INITS, pm.SEQ)


def test_recurrent_gains_match_the_linear_regime():
    """Tiny weights keep tanh linear (tanh' ≈ 1): each stacked layer's gradient gain at one step is
    χ = ‖W_ihᵀu‖²/‖u‖² → fan_in·Var(W) = s²/3 for PyTorch's U(±1/√h) scaled by s. Back in time every step
    multiplies by W_hh with the same law; from x_0 to y_{T−1} of an L-layer stack the C(T + L − 2, L − 1) paths
    through independent matrices add, so log(G_0/G_{T−1}) → (T − 1)·log(s²/3) + log C(T + L − 2, L − 1)."""
    s, hidden = 0.2, 256

    def build():
        model = pm.StackedRNN(layers=3, hidden=hidden, scale=s)
        with torch.no_grad():
            for name, p in model.rnn.named_parameters():
                if name.startswith("bias"):
                    p.zero_()
        return model

    report = _check(build, lambda g: torch.randn(4, 20, 16, generator=g) * 0.1)
    data = report.recurrent["rnn"]
    chi = np.log(data["layer_chi"][:, 1:].mean())
    assert chi == pytest.approx(math.log(s * s / 3), abs=0.15)
    from deepstart.diagnose.laws.recurrent import time_gain

    predicted = 19 * math.log(s * s / 3) + math.log(math.comb(19 + 2, 2))
    assert time_gain(data)[0] == pytest.approx(predicted, abs=0.1 * 19)


def test_custom_autograd_function_is_not_assessed_and_never_healthy():
    report = _report("custom")
    opaque = _parts(report, Opaque)
    assert len(opaque) == 1 and opaque[0].main and "_StraightThrough" in opaque[0].reason
    assert report.verdict == "NOT ASSESSED" and not report.healthy
    finding = next(f for f in report.findings if f.layer == opaque[0].site)
    assert finding.message.startswith("not assessed") and "measured around it" in finding.message

    class Plain(pm.CustomFunctionMLP):
        def forward(self, x):
            for layer in self.layers:
                x = torch.relu(layer(x))
            return x

    assert _check(Plain, pm.vectors).healthy


def test_embedding_into_layernorm_is_not_a_gradient_explosion():
    """An embedding of std 0.02 (M = 4e-4) feeding a LayerNorm: raw gradients at the embedding are ~1/M larger;
    compared at matching points (G·M) across the norm there is no explosion."""
    class EmbeddingLayerNormMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(pm.VOCAB, 64)
            nn.init.normal_(self.embed.weight, 0, 0.02)
            self.norm = nn.LayerNorm(64)
            self.layers = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(64, 64), nn.ReLU())])
            for m in self.layers:
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

        def forward(self, ids):
            return self.layers(self.norm(self.embed(ids)))

    report = _check(EmbeddingLayerNormMLP, pm.tokens)
    assert report.stats["grad_log_ratio"] > math.log(1 / 0.02 ** 2) - 1  # the raw ratio is the 1/M step
    assert not any(f.category == "gradients" for f in report.findings), _describe(report)


@pytest.mark.parametrize("scale, failing", [(1.0, False), (0.3, True)])
def test_four_layer_tanh_rnn_gradient_across_layers_flips_with_the_weight_scale(scale, failing):
    """Orthogonal weights (gain 1) keep χ_k = E tanh'² ≈ e^−0.3 per layer; ×0.3 makes it ≈ 0.09·E tanh'², so the
    three links between 4 stacked layers lose more than e^−ln 10 of the gradient: an error, only for ×0.3."""
    def build():
        model = pm.StackedRNN(layers=4, hidden=64, scale=1.0)
        with torch.no_grad():
            for name, p in model.rnn.named_parameters():
                if name.startswith("weight"):
                    nn.init.orthogonal_(p, gain=scale)
                else:
                    p.zero_()
        return model

    report = _check(build, pm.sequences)
    from deepstart.diagnose.laws.recurrent import layer_gradient

    total, se, links = layer_gradient(report.recurrent["rnn"])
    assert links == 3
    hits = [f for f in _errors(report) if f.layer == "rnn"]
    assert bool(hits) is failing, (total, se, _describe(report))
    if failing:
        assert total <= 3 * math.log(0.09) + 1e-6  # ‖(0.3·Q)ᵀ D u‖² ≤ 0.09‖u‖² exactly (D = tanh' ≤ 1)


def test_ops_hidden_from_torch_are_not_assessed():
    report = _check(pm.NumpyStepMLP, pm.vectors)
    opaque = _parts(report, Opaque)
    assert [p.site for p in opaque] == ["layers.5"] and "outside the recorded computation" in opaque[0].reason, \
        read_parts(report)
    assert report.verdict == "NOT ASSESSED"


@pytest.mark.parametrize("scale, starved", [(1.0, False), (1e-4, True)])
def test_norm_input_below_eps_flips_the_norm_law(scale, starved):
    """M_in = scale² (a length-preserving Linear on N(0, 1) inputs) against ε = 1e-5: log(M_in/ε) ≈ 11.5 or −6.9."""
    report = _check(lambda: pm.EpsStarvedLN(scale), pm.vectors)
    from deepstart.diagnose.laws.norm import input_scale

    norm = next(p for p in _parts(report, Norm) if p.site == "norm")
    r, _ = input_scale(report, norm)
    assert r == pytest.approx(math.log(scale ** 2 / 1e-5), abs=0.5)
    hits = [f for f in _errors(report) if f.layer == "norm"]
    assert bool(hits) is starved, _describe(report)


def test_layers_inside_a_custom_function_forward_are_not_assessed_not_nonfinite():
    """Held-out-5's Reformer: blocks run inside a custom autograd Function's forward (autograd off), so no gradient
    reaches their taps. That is reported by name as not assessed (lengths measured), never a ``nonfinite`` error made
    from gradients that were never measured; the same blocks outside the Function are read and judged healthy."""
    report = _check(pm.ReversibleEncoder, pm.tokens)
    assert not _errors(report), _describe(report)
    assert report.verdict == "NOT ASSESSED" and not report.healthy
    inside = [s for s in report.sites if s.get("no_grad")]
    assert inside and all("_Reversible" in s["opaque"] for s in inside)
    assert all(np.isfinite(report.sq[..., j]).all() for j, s in enumerate(report.sites) if s.get("no_grad"))
    assert not any(s.get("no_grad") for s in report.sites if s["name"] in ("embed", "norm", "head"))

    class Plain(pm.ReversibleEncoder):
        def forward(self, ids):
            x = self.embed(ids)
            for block in self.blocks:
                x = x + block(x)
            return self.head(self.norm(x))

    plain = _check(Plain, pm.tokens)
    assert not any(s.get("no_grad") for s in plain.sites) and not _errors(plain), _describe(plain)


@pytest.mark.parametrize("scale, failing", [(1.0, False), (10.0, True)])
def test_stream_inside_a_custom_function_is_judged_by_its_forward_growth(scale, failing):
    """The blocks inside the Function are judged by what is measured there: the stream's growth against the residual
    bound 2·log(L + 1) + 1.5 nats over its L ≤ 4 additions (≤ 4.7 nats). Pre-LN branches of gain g add about g per
    block to an N(0, 1) embedding stream: PyTorch's Linear default (σ_w² = 1/3) gives g ≈ 0.06, far within; weights
    ×10 give g ≈ 1e4·0.06 = 600, log(1 + 4·600) ≈ 7.8 nats, beyond."""
    def build():
        model = pm.ReversibleEncoder()
        with torch.no_grad():
            for block in model.blocks:
                block[1].weight.mul_(scale)
                block[3].weight.mul_(scale)
        return model

    report = _check(build, pm.tokens)
    hits = [f for f in _errors(report) if "inside a custom autograd Function" in f.message]
    assert bool(hits) is failing and len(_errors(report)) == len(hits), _describe(report)
    from deepstart.diagnose.laws.segment import additive_band

    if failing:
        read = sum(1 for s in report.sites if s.get("no_grad") and s["kind"] == "block")  # the additions read
        assert 3 <= read <= 4 and hits[0].threshold == pytest.approx(additive_band(read)) and hits[0].measured > 6.5
    else:
        assert report.verdict == "NOT ASSESSED"
