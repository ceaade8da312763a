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

    def __init__(self, depth=6, std=None, from_ids=False):
        super().__init__()
        self.from_ids = from_ids
        self.emb = nn.Embedding(VOCAB, WIDTH)
        self.layers = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(WIDTH, WIDTH), nn.ReLU())])
        pos = torch.arange(64.0)[:, None] / 10000 ** (torch.arange(0, WIDTH, 2.0) / WIDTH)
        self.register_buffer("table", torch.cat([pos.sin(), pos.cos()], -1), persistent=False)
        for m in self.layers[::2]:
            nn.init.normal_(m.weight, 0.0, std or math.sqrt(2.0 / WIDTH))
            nn.init.zeros_(m.bias)

    def forward(self, ids):
        if self.from_ids:  # positions counted over the non-padding tokens (M2M100/FSMT-style): fed by the ids
            return self.layers(self.emb(ids) + self.table[(ids != 0).long().cumsum(1)])
        return self.layers(self.emb(ids) + self.table[torch.arange(ids.shape[1])])


@pytest.mark.parametrize("from_ids", [False, True])
@pytest.mark.parametrize("std, broken", [(None, False), (0.5 / math.sqrt(WIDTH), True)])
def test_a_table_read_by_position_is_a_constant_not_a_layer(std, broken, from_ids):
    report = _check(lambda: PositionLM(std=std, from_ids=from_ids), _tokens)
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


# ------------------------------------------------------------------------------------------- encoder-decoders
class _Attention(nn.Module):
    """Single-head attention of ``x`` over ``memory`` (itself for self-attention), eager softmax."""

    def __init__(self, d):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, memory):
        att = (self.q(x) @ self.k(memory).transpose(-1, -2) / math.sqrt(x.shape[-1])).softmax(-1)
        return self.o(att @ self.v(memory))


class _Block(nn.Module):
    """Pre-LN block: x + attn(ln(x)), then (decoder) x + cross(ln(x), encoder output), then x + mlp(ln(x))."""

    def __init__(self, d, cross):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), _Attention(d)
        self.ln2, self.cross = (nn.LayerNorm(d), _Attention(d)) if cross else (None, None)
        self.ln3, self.fc, self.proj = nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x, memory=None):
        h = self.ln1(x)
        x = x + self.attn(h, h)
        if self.cross is not None:
            x = x + self.cross(self.ln2(x), memory)
        return x + self.proj(torch.relu(self.fc(self.ln3(x))))


class EncoderDecoder(nn.Module):
    """Two token streams (Vaswani et al. 2017): an encoder stack, and a decoder stack whose cross-attention reads
    the encoder output; weights N(0, std²) (GPT-2's 0.02 is stock)."""

    def __init__(self, depth=3, std=0.02):
        super().__init__()
        self.src, self.tgt = nn.Embedding(VOCAB, WIDTH), nn.Embedding(VOCAB, WIDTH)
        self.encoder = nn.ModuleList(_Block(WIDTH, False) for _ in range(depth))
        self.decoder = nn.ModuleList(_Block(WIDTH, True) for _ in range(depth))
        self.enc_ln, self.dec_ln = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, std)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, src, tgt):
        x = self.src(src)
        for block in self.encoder:
            x = block(x)
        memory, y = self.enc_ln(x), self.tgt(tgt)
        for block in self.decoder:
            y = block(y, memory)
        return self.dec_ln(y)


def _pair(g):
    return {"src": _tokens(g), "tgt": _tokens(g)}


def _assert_both_streams_read(report, cross_kv, decoder_blocks):
    """Both stacks are on the main path and read, the cross-attention's key/value projections are inside its
    branch (not on the stream) and every decoder addition is judged as an addition."""
    main = {s["name"] for s in report.sites if s["main"]}
    kv = [s for s in report.sites if cross_kv(s["name"])]
    assert kv and not any(s["main"] for s in kv), [(s["name"], s["main"]) for s in kv]
    assert all(s["parent"] and s["name"].startswith(s["parent"].split("#")[0] + ".") for s in kv)
    additions = [p for p in report.parts if p["part"] == "addition" and p["main"]]
    assert {p["site"] for p in additions} >= decoder_blocks and decoder_blocks <= main
    st = report.stats
    assert st["links_read"] >= report.links.size - 2, (st["links_read"], report.links.size)  # decoder start, head


@pytest.mark.parametrize("std, broken", [(0.02, False), (1.0, True)])
def test_encoder_decoder_reads_both_streams_and_cross_attention(std, broken):
    report = _check(lambda: EncoderDecoder(std=std), _pair)
    _assert_both_streams_read(report, lambda n: ".cross." in n and n.endswith((".k", ".v")),
                              {f"decoder.{i}{s}" for i in range(3) for s in ("", "#1", "#2")})
    assert report.verdict == ("FAILING" if broken else "healthy"), _describe(report)
    assert not broken or any(f.category == "branches" for f in _errors(report)), _describe(report)


def _hf(model, config, **kw):
    transformers = pytest.importorskip("transformers")
    cfg = getattr(transformers, config)(**kw)
    cfg._attn_implementation = "eager"
    return getattr(transformers, model)(cfg).train()


def _t5(factor=1.0):
    return _hf("T5Model", "T5Config", vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
               dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, use_cache=False,
               initializer_factor=factor)


def _whisper(std=0.02):
    return _hf("WhisperModel", "WhisperConfig", vocab_size=VOCAB, num_mel_bins=8, d_model=32, encoder_layers=2,
               decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
               decoder_ffn_dim=64, max_source_positions=8, max_target_positions=32, pad_token_id=0, bos_token_id=1,
               eos_token_id=2, decoder_start_token_id=1, use_cache=False, dropout=0.0, init_std=std)


@pytest.mark.parametrize("factor, broken", [(1.0, False), (100.0, True)])
def test_t5_relative_bias_is_a_side_input_and_both_stacks_are_read(factor, broken):
    report = _check(lambda: _t5(factor), lambda g: {"input_ids": _tokens(g), "decoder_input_ids": _tokens(g)},
                    n_inits=2)
    assert not any(s["main"] for s in report.sites if "relative_attention_bias" in s["name"])
    _assert_both_streams_read(report, lambda n: ".EncDecAttention." in n and n.endswith((".k", ".v")),
                              {f"decoder.block.{i}.layer.{j}" for i in range(2) for j in range(3)})
    assert report.verdict == ("FAILING" if broken else "healthy"), _describe(report)


@pytest.mark.parametrize("std, broken", [(0.02, False), (1.0, True)])
def test_whisper_conv_front_end_and_decoder_positions_are_read(std, broken):
    report = _check(lambda: _whisper(std), lambda g: {"input_features": torch.randn(4, 8, 16, generator=g),
                                                        "decoder_input_ids": _tokens(g)}, n_inits=2)
    main = [s["name"] for s in report.sites if s["main"]]
    assert main[:2] == ["encoder.conv1", "encoder.conv2"] and "decoder.embed_tokens" in main, main
    assert not any("embed_positions" in n for n in main), main
    _assert_both_streams_read(report, lambda n: ".encoder_attn." in n and n.endswith(("k_proj", "v_proj")),
                              {f"decoder.layers.{i}{s}" for i in range(2) for s in ("", "#1", "#2")})
    assert report.verdict == ("FAILING" if broken else "healthy"), _describe(report)
    # the sinusoidal table added after the conv front end raises M, not G: G·M is compared from the first addition
    assert broken or not any(f.category == "gradients" for f in report.findings), _describe(report)


# ------------------------------------------------------------------------------------- concatenation (DenseNet)
class _DenseLayer(nn.Module):
    def __init__(self, c, growth, bn):
        super().__init__()
        self.norm = nn.BatchNorm2d(c) if bn else nn.Identity()
        self.conv = nn.Conv2d(c, growth, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(torch.relu(self.norm(x)))], 1)


def dense_net(layers=4, bn=False, scale=1.0, growth=4):
    """Stem conv → ``layers`` dense layers ([BN]-ReLU-conv, concatenated to the stream) → ReLU → pool → linear;
    convs He × ``scale`` (torchvision's DenseNet init, Huang et al. 2017)."""
    mods, c = [nn.Conv2d(3, 8, 3, padding=1)], 8
    for _ in range(layers):
        mods.append(_DenseLayer(c, growth, bn))
        c += growth
    model = nn.Sequential(*mods, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data.mul_(scale)
    return model


def _images(g):
    return torch.randn(4, 3, 8, 8, generator=g)


@pytest.mark.parametrize("bn, scale, broken", [(False, 1.0, False), (True, 1.0, False), (False, 10.0, True)])
def test_dense_block_concatenations_are_links_of_a_plain_segment(bn, scale, broken):
    report = _check(lambda: dense_net(bn=bn, scale=scale), _images)
    concats = [p for p in report.parts if p["part"] == "concat" and p["main"]]
    assert [p["site"] for p in concats] == ["1", "2", "3", "4"], report.parts
    convs = [s for s in report.sites if s["name"].endswith(".conv")]
    assert [s["parent"] for s in convs] == ["1", "2", "3", "4"] and not any(s["main"] for s in convs)
    assert report.stats["links_read"] >= 5 and report.assessed, _describe(report)
    segments = [p for p in report.parts if p["part"] == "segment" and "4" in p["sites"]]
    assert segments and segments[0]["growth"] == "plain"
    assert report.verdict == ("FAILING" if broken else "healthy"), _describe(report)
    assert not broken or any(f.category == "fm1" for f in _errors(report)), _describe(report)


@pytest.mark.parametrize("scale, broken", [(1.0, False), (10.0, True)])
def test_a_short_dense_block_is_judged_by_its_layers_gains(scale, broken):
    """Two dense layers: 3 links, too few for the rate over depth; the concatenation law reads the layers' gains
    (He × 10: each layer multiplies its input's length by 100, e^9.2 for the block)."""
    report = _check(lambda: dense_net(layers=2, scale=scale), _images)
    laws = [f for f in _errors(report) if "concatenation" in f.source]
    assert bool(laws) == broken and report.verdict == ("FAILING" if broken else "healthy"), _describe(report)
    if broken:
        assert laws[0].measured == pytest.approx(2 * math.log(100.0), abs=1.5)
