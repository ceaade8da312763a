"""Backbones in the probe (deepstart.probe.heads): a task from the input kind, and a linear readout shared by every
init and the reference. Seeds fixed; each run is CI-sized (tiny models, ≤ 100 steps).

Measured before the separation test was written (2 inits, Adam 1e-3, 100 steps, seed 1): a 2-layer 64-wide BertModel
(vocabulary 128) at the stock initializer_range 0.02 starts 2/2 (loss 5.0 → 2.1 against a baseline of 4.72), at 5.0
it stays at 4.8 (stuck 2/2); its stock reference starts 2/2 in both runs.
"""
from __future__ import annotations

import pytest

from deepstart.probe import heads, probe

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
nn = torch.nn


def _bert(initializer_range=0.02, cls="BertModel"):
    config = transformers.BertConfig(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=128, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0, initializer_range=initializer_range,
                                     attn_implementation="eager")
    return lambda: getattr(transformers, cls)(config)


def _run(factory, **kw):
    return probe(factory, lr=1e-3, generator=torch.Generator().manual_seed(1), **{"steps": 100, "n_inits": 2, **kw})


@pytest.mark.slow
def test_bert_backbone_gets_a_head_and_the_probe_separates_a_broken_init():
    stock, broken = _run(_bert(0.02)), _run(_bert(5.0))
    for r in (stock, broken):
        assert "head" in r.layers and any("readout head: Linear(64, 128) on every token" in n for n in r.notes)
        assert "right neighbour" in r.task
        assert all(v == "starts" for v in r.ref_verdicts), r.summary()  # the stock reference learns in both
    assert stock.verdict == "starts", stock.summary()
    assert broken.verdict == "stuck", broken.summary()
    assert broken.ratio - 2 * broken.ratio_se > 1.0, (broken.ratio, broken.ratio_se)


def test_the_head_is_one_draw_copied_into_every_member():
    model = _bert()()
    task = heads.backbone_task(None, model, None, 4, torch.Generator().manual_seed(0), None, None)
    read, note = heads.readout(model, task, "auto", seed=7)
    again, _ = heads.readout(model, task, "auto", seed=7)
    assert torch.equal(read.head.weight, again.head.weight) and "Linear(64, 128)" in note
    members = [({k: v.detach() for k, v in _bert()().named_parameters()}, {}) for _ in range(3)]
    out = heads.with_head(members, read.head)
    for params, _ in out:
        assert torch.equal(params["head.weight"], read.head.weight) and torch.equal(params["head.bias"], read.head.bias)
        assert set(params) == {f"backbone.{k}" for k, _ in model.named_parameters()} | {"head.weight", "head.bias"}
    assert out[0][0]["head.weight"].data_ptr() != out[1][0]["head.weight"].data_ptr()  # copies, not one tensor
    # a model whose output already is the task's logits gets no head with "auto", and one with "linear"
    lm = _bert(cls="BertLMHeadModel")()
    assert heads.readout(lm, task, "auto", seed=7)[0] is None
    assert heads.readout(lm, task, "linear", seed=7)[0] is not None


def test_input_kinds_are_recognised():
    gpt2 = transformers.GPT2Model(transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=1,
                                                          n_head=2, attn_implementation="eager"))
    t5 = transformers.T5Model(transformers.T5Config(vocab_size=64, d_model=32, d_kv=16, d_ff=64, num_layers=1,
                                                    num_heads=2, decoder_start_token_id=0, attn_implementation="eager"))
    vit = transformers.ViTModel(transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=64, image_size=16, patch_size=8, attn_implementation="eager"))
    lstm_lm = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 50))
    assert heads.input_kind(gpt2) == "causal"  # measured: the last token does not move earlier outputs
    assert heads.input_kind(_bert()()) == "bidirect"
    assert heads.input_kind(t5) == "seq2seq" and heads.input_kind(vit) == "image"
    assert heads.input_kind(lstm_lm) == "causal"
    assert heads.input_kind(nn.Linear(4, 4), (8, 16)) == "sequence"


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # nn.Transformer's SDPA under vmap
@pytest.mark.parametrize("kind", ["vit", "t5", "whisper", "transformer"])
def test_backbones_of_every_input_kind_train_with_a_head(kind):
    if kind == "vit":
        cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                     image_size=16, patch_size=8, attn_implementation="eager")
        factory, kw, width = (lambda: transformers.ViTModel(cfg)), {}, "Linear(32, 10) on the pooled"
    elif kind == "t5":
        cfg = transformers.T5Config(vocab_size=64, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2,
                                    decoder_start_token_id=0, attn_implementation="eager")
        factory, kw, width = (lambda: transformers.T5Model(cfg)), {}, "Linear(32, 64) on every token"
    elif kind == "whisper":
        cfg = transformers.WhisperConfig(vocab_size=64, num_mel_bins=8, d_model=32, encoder_layers=1,
                                         decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                                         encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=8,
                                         max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                         decoder_start_token_id=1, attn_implementation="eager")
        factory, kw, width = (lambda: transformers.WhisperModel(cfg)), {}, "Linear(32, 64) on every token"
    else:
        factory = lambda: nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=True)  # noqa: E731
        kw, width = {"input_shape": (4, 16), "reference": None}, "Linear(16, 10) on the pooled"
    r = probe(factory, lr=1e-3, steps=3, n_inits=1, batch_size=4, generator=torch.Generator().manual_seed(0), **kw)
    assert any(width in n for n in r.notes), r.notes
    assert torch.isfinite(torch.as_tensor(r.loss)).all() and r.layers[-1] == "head"


class _Unreadable(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return {"scores": self.lin(x)}  # a dict: neither a tensor nor an output object with named fields


def test_an_unreadable_output_is_a_clear_error():
    data = (torch.randn(16, 4), torch.randint(0, 3, (16,)))
    with pytest.raises(ValueError, match="cannot read features or logits from the model's output \\(dict\\)"):
        probe(_Unreadable, data, lr=1e-3, steps=2, n_inits=1)
    with pytest.raises(ValueError, match="head="):
        probe(_Unreadable, data, lr=1e-3, steps=2, n_inits=1, head="mlp")
