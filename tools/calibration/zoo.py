"""The held-out zoo of issue 18: families that were not in the first zoo (:mod:`tools.calibration.cases`), each as a
stock model (library defaults or its paper's init) and a variant meant to be broken.

``intended`` is only what the variant was built for; the *label* that ``check`` is scored against is measured
(:mod:`tools.calibration.label`: hook truth + a short training run, rule fixed before any ``check`` run) and
stored in ``tools/calibration/labels.json`` with the split. ``SPLIT`` assigns whole families (stock and broken
together) to the tuning or the held-out half by a seeded shuffle (:func:`split`), so held-out families are
architectures the thresholds were never tuned on. The first zoo's 19 cases are all in the tuning half.
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from tools.calibration import zoo_models as zm
from tools.calibration.cases import ANY_ERROR, CASES, Case, _tokens

SPLIT_SEED = 18  # issue 18; fixed before any check run on this zoo


@dataclass(frozen=True)
class ZooCase(Case):
    """A :class:`Case` with what labelling needs: the training ``task`` ("cifar", "lm", "seq2seq", "speech", "audio"),
    the class name of the repeated block whose outputs the hook truth reads (``blocks``, optionally only under the
    module prefix ``blocks_under``; None: found automatically) and what the variant was built to be."""

    task: str = "cifar"
    blocks: str | None = None
    blocks_under: str = ""
    intended: str = "stock"


# ------------------------------------------------------------------------------------------------- HF builders
def _zero_dropout(cfg) -> None:
    for key, value in list(cfg.to_dict().items()):
        if isinstance(value, float) and any(s in key for s in ("dropout", "pdrop", "drop_path", "drop_rate")):
            setattr(cfg, key, 0.0)


def hf(model_cls: str, config_cls: str, **config) -> nn.Module:
    """``transformers.<model_cls>(<config_cls>(**config))`` in train mode: every dropout 0, eager attention, never
    a download (configs only)."""
    import transformers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # config/deprecation notices from transformers are not about init
        cfg = getattr(transformers, config_cls)(**config)
        _zero_dropout(cfg)
        cfg._attn_implementation = "eager"
        model = getattr(transformers, model_cls)(cfg)
    return model.train()


_LM = dict(vocab_size=1000, bos_token_id=1, eos_token_id=2, pad_token_id=0, use_cache=False)


def _neox(**kw):
    return hf("GPTNeoXForCausalLM", "GPTNeoXConfig", hidden_size=128, num_hidden_layers=6, num_attention_heads=4,
              intermediate_size=512, use_parallel_residual=True, max_position_embeddings=64, **_LM, **kw)


def _gptj(**kw):
    return hf("GPTJForCausalLM", "GPTJConfig", n_embd=128, n_layer=6, n_head=4, rotary_dim=16, n_positions=64,
              **_LM, **kw)


def _mixtral(**kw):
    return hf("MixtralForCausalLM", "MixtralConfig", hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
              num_key_value_heads=2, intermediate_size=256, num_local_experts=4, num_experts_per_tok=2,
              max_position_embeddings=64, **_LM, **kw)


def _deberta(**kw):
    return hf("DebertaV2Model", "DebertaV2Config", vocab_size=1000, hidden_size=128, num_hidden_layers=4,
              num_attention_heads=4, intermediate_size=256, relative_attention=True, position_buckets=32,
              max_relative_positions=64, pad_token_id=0, **kw)


def _t5(**kw):
    return hf("T5Model", "T5Config", vocab_size=1000, d_model=128, d_kv=32, d_ff=256, num_layers=4, num_heads=4,
              decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, use_cache=False, **kw)


def _whisper(**kw):
    return hf("WhisperModel", "WhisperConfig", vocab_size=1000, num_mel_bins=16, d_model=128, encoder_layers=3,
              decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=256,
              decoder_ffn_dim=256, max_source_positions=16, max_target_positions=64, pad_token_id=0, bos_token_id=1,
              eos_token_id=2, decoder_start_token_id=1, use_cache=False, **kw)


def _convnext(**kw):
    return hf("ConvNextModel", "ConvNextConfig", num_channels=3, hidden_sizes=[32, 64], depths=[3, 3], num_stages=2,
              patch_size=2, image_size=32, **kw)


def _swin(**kw):
    return hf("SwinModel", "SwinConfig", image_size=32, patch_size=2, embed_dim=32, depths=[2, 2], num_heads=[2, 4],
              window_size=4, **kw)


def _beit(**kw):
    return hf("BeitModel", "BeitConfig", image_size=32, patch_size=4, hidden_size=128, num_hidden_layers=6,
              num_attention_heads=4, intermediate_size=256, use_relative_position_bias=True, **kw)


# ------------------------------------------------------------------------------------------------------ inputs
def _images(g: torch.Generator) -> torch.Tensor:
    return torch.randn(4, 3, 32, 32, generator=g)


def _pixels(g: torch.Generator) -> dict:
    return {"pixel_values": _images(g)}


def _seq2seq(g: torch.Generator) -> dict:
    return {**_tokens(g), "decoder_input_ids": torch.randint(0, 1000, (4, 16), generator=g)}


def _speech(g: torch.Generator) -> dict:
    return {"input_features": torch.randn(4, 16, 32, generator=g),
            "decoder_input_ids": torch.randint(0, 1000, (4, 16), generator=g)}


# ------------------------------------------------------------------------------------------------------- cases
def _pair(family: str, stock: tuple, broken: tuple, **common) -> list[ZooCase]:
    """A family's stock case and its broken variant: each ``(name, build, why)``."""
    return [ZooCase(stock[0], family, stock[1], expect=(), why=stock[2], intended="stock", **common),
            ZooCase(broken[0], family, broken[1], expect=ANY_ERROR, why=broken[2], intended="broken", **common)]


_HF = "stock transformers init from the config"
_NEW = [
    *_pair("gpt-neox", ("neox-6x128", _neox, f"GPTNeoXForCausalLM, parallel attention+MLP blocks, {_HF} (std 0.02)"),
           ("neox-6x128-std1", lambda: _neox(initializer_range=1.0),
            "GPT-NeoX with initializer_range 1.0 (50× the stock 0.02)"),
           inputs=_tokens, task="lm", blocks="GPTNeoXLayer"),
    *_pair("gpt-j", ("gptj-6x128", _gptj, f"GPTJForCausalLM, parallel blocks sharing one LayerNorm, {_HF}"),
           ("gptj-6x128-std2e-6", lambda: _gptj(initializer_range=2e-6),
            "GPT-J with initializer_range 2e-6 (0.02/1e4): LayerNorm inputs far below eps"),
           inputs=_tokens, task="lm", blocks="GPTJBlock"),
    *_pair("mixtral-moe", ("mixtral-4x128", _mixtral,
                           f"MixtralForCausalLM, 4 experts top-2 MoE MLPs, RMSNorm pre-norm, {_HF}"),
           ("mixtral-4x128-std1", lambda: _mixtral(initializer_range=1.0), "Mixtral with initializer_range 1.0"),
           inputs=_tokens, task="lm", blocks="MixtralDecoderLayer"),
    *_pair("deberta", ("deberta-v2-4x128", _deberta,
                       f"DebertaV2Model, disentangled relative-position attention, post-LN, {_HF}"),
           ("deberta-v2-4x128-std1e-6", lambda: _deberta(initializer_range=1e-6),
            "DeBERTa-v2 with initializer_range 1e-6: embedding LayerNorm input ~1e-12 vs eps 1e-7"),
           inputs=_tokens, task="lm", blocks="DebertaV2Layer"),
    *_pair("t5", ("t5-4+4x128", _t5, f"T5Model encoder-decoder, relative position buckets, RMSNorm, {_HF} "
                                     "(initializer_factor 1)"),
           ("t5-4+4x128-factor100", lambda: _t5(initializer_factor=100.0), "T5 with initializer_factor 100"),
           inputs=_seq2seq, task="seq2seq", blocks="T5Block", blocks_under="decoder"),
    *_pair("whisper", ("whisper-3+3x128", _whisper, f"WhisperModel encoder-decoder (conv front end), {_HF}"),
           ("whisper-3+3x128-std1", lambda: _whisper(init_std=1.0), "Whisper with init_std 1.0 (50× 0.02)"),
           inputs=_speech, task="speech", blocks="WhisperDecoderLayer"),
    *_pair("convnext", ("convnext-3+3", _convnext,
                        f"ConvNextModel (Liu et al. 2022): depthwise conv → LN → MLP, layer scale 1e-6, {_HF}"),
           ("convnext-3+3-std1-ls1", lambda: _convnext(initializer_range=1.0, layer_scale_init_value=1.0),
            "ConvNeXt with initializer_range 1.0 and layer scale 1 (instead of 0.02 and 1e-6)"),
           inputs=_pixels, blocks="ConvNextLayer"),
    *_pair("swin", ("swin-2+2x32", _swin, f"SwinModel (Liu et al. 2021), shifted windows, relative position bias, "
                                          f"num_heads per stage, {_HF}"),
           ("swin-2+2x32-std1", lambda: _swin(initializer_range=1.0), "Swin with initializer_range 1.0"),
           inputs=_pixels, blocks="SwinLayer"),
    *_pair("beit", ("beit-6x128", _beit, f"BeitModel (Bao et al. 2022), relative position bias, layer scale 0.1, "
                                         f"{_HF}"),
           ("beit-6x128-ls10-std0.5", lambda: _beit(layer_scale_init_value=10.0, initializer_range=0.5),
            "BEiT with layer scale 10 and initializer_range 0.5"),
           inputs=_pixels, blocks="BeitLayer"),
    *_pair("fixup", ("fixup-resnet-16x16", zm.fixup_resnet,
                     "Fixup ResNet (Zhang et al. 2019), 16 blocks, no normalization, scalar biases and multipliers"),
           ("fixup-resnet-16x16-off", lambda: zm.fixup_resnet(fixup=False),
            "the Fixup architecture with both convs He-initialized and no rescaling: variance ×2 per block"),
           inputs=_images, blocks="FixupBlock"),
    *_pair("skipinit", ("skipinit-resnet-16x16", zm.skipinit_resnet,
                        "SkipInit ResNet (De & Smith 2020), α = 0, He branches, no normalization"),
           ("skipinit-resnet-16x16-alpha1", lambda: zm.skipinit_resnet(alpha=1.0),
            "SkipInit architecture with α = 1: He branches add to an unnormalized stream, variance ×2 per block"),
           inputs=_images, blocks="SkipInitBlock"),
    *_pair("mbconv-se", ("mbconv-se-6x24", zm.mbconv_net,
                         "EfficientNet-style MBConv blocks with squeeze-excitation and BN, torchvision init"),
           ("mbconv-se-6x24-nobn-std1", lambda: zm.mbconv_net(bn=False, weight_std=1.0),
            "the same MBConv-SE net without BN, conv weights N(0, 1) (≈ √fan_in × too large)"),
           inputs=_images, blocks="MBConv"),
    *_pair("densenet", ("densenet-8x12", zm.densenet, "DenseNet (Huang et al. 2017) BN-ReLU-conv layers, "
                                                      "growth 12, concatenation, He init"),
           ("densenet-8x12-nobn-x10", lambda: zm.densenet(bn=False, weight_scale=10.0),
            "the same DenseNet without BN, conv weights He × 10"),
           inputs=_images, blocks="DenseLayer"),
    *_pair("unet", ("unet-16", zm.unet, "U-Net (Ronneberger et al. 2015) with BN, PyTorch default init"),
           ("unet-16-nobn", lambda: zm.unet(bn=False),
            "the same U-Net without BN at PyTorch's default init (σ_w² = 1/3 with ReLU: M × 1/6 per conv)"),
           inputs=_images),
    ZooCase("unet-16-nobn-x0.1", "unet", lambda: zm.unet(bn=False, weight_scale=0.1), _images, ANY_ERROR,
            "the U-Net without BN, conv weights 0.1 × PyTorch's default (std 10× too small)", intended="broken"),
    *_pair("lstm", ("lstm-lm-2x128", lambda: zm.recurrent_lm("lstm"), "2-layer nn.LSTM LM, PyTorch default init"),
           ("lstm-lm-2x128-x10", lambda: zm.recurrent_lm("lstm", scale=10.0),
            "2-layer nn.LSTM LM, recurrent weights × 10 (saturated gates)"),
           inputs=_tokens, task="lm"),
    *_pair("gru", ("gru-lm-2x128", lambda: zm.recurrent_lm("gru"), "2-layer nn.GRU LM, PyTorch default init"),
           ("gru-lm-2x128-x0.1", lambda: zm.recurrent_lm("gru", scale=0.1),
            "2-layer nn.GRU LM, recurrent weights × 0.1"),
           inputs=_tokens, task="lm"),
    *_pair("tanh-rnn", ("rnn-lm-4x128-orth", lambda: zm.recurrent_lm("rnn", 4, orthogonal=True),
                        "4-layer stacked tanh nn.RNN LM, orthogonal weight_hh, Glorot weight_ih (Le et al. 2015)"),
           ("rnn-lm-4x128-orth-x0.3", lambda: zm.recurrent_lm("rnn", 4, scale=0.3, orthogonal=True),
            "the same stacked tanh RNN with every recurrent weight × 0.3: the signal shrinks across layers"),
           inputs=_tokens, task="lm"),
    ZooCase("rnn-lm-4x128-default", "tanh-rnn", lambda: zm.recurrent_lm("rnn", 4), _tokens, (),
            "4-layer stacked tanh nn.RNN LM at PyTorch's default init U(±1/√H) (σ² = 1/(3H) per weight)",
            task="lm", intended="unknown"),
]
NEW_CASES: dict[str, ZooCase] = {c.name: c for c in _NEW}
ALL_CASES: dict[str, Case] = {**CASES, **NEW_CASES}


def split(seed: int = SPLIT_SEED) -> dict[str, str]:
    """``{case name: "tuning" | "held-out"}``: the new zoo's families, sorted, shuffled by ``random.Random(seed)``;
    the first ⌈n/2⌉ families tune, the rest are held out; every case of the first zoo tunes."""
    families = sorted({c.family for c in NEW_CASES.values()})
    random.Random(seed).shuffle(families)
    tuning = set(families[: (len(families) + 1) // 2])
    out = {name: "tuning" for name in CASES}
    out.update({c.name: "tuning" if c.family in tuning else "held-out" for c in NEW_CASES.values()})
    return out


SPLIT = split()
