"""The second held-out zoo of issue 18: families that are in neither :mod:`tools.calibration.cases` nor
:mod:`tools.calibration.zoo`, chosen for architectural features those lack, each as a stock model (library defaults
or its paper's init) and one or two variants meant to be broken.

Every case here has split ``"held-out-2"``: nobody tunes on it. It exists to score, once, fixes made after the
first held-out half was seen. Its cases are *not* in :data:`tools.calibration.zoo.ALL_CASES` (whose users run
``check`` on every entry); they are reached only through :data:`CASES2` (``python -m tools.calibration --half
held-out-2``). Labels come from :mod:`tools.calibration.label` with the rule unchanged (``label --zoo 2``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tools.calibration import zoo2_models as zm
from tools.calibration.cases import ANY_ERROR, _tokens
from tools.calibration.zoo import _LM, ZooCase, _images, _pixels, _seq2seq, hf

HELD_OUT_2 = "held-out-2"


@dataclass(frozen=True)
class Zoo2Case(ZooCase):
    """A :class:`ZooCase`; ``shared``: the block module is called several times (weights shared across layers,
    ALBERT), so the hook truth reads one point per call instead of one per module."""

    shared: bool = False


# ------------------------------------------------------------------------------------------------- HF builders
def _bart(**kw):
    return hf("BartModel", "BartConfig", vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2,
              encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
              max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
              decoder_start_token_id=1, forced_eos_token_id=2, use_cache=False, **kw)


def _bloom(**kw):
    return hf("BloomForCausalLM", "BloomConfig", hidden_size=64, n_layer=4, n_head=4, **_LM, **kw)


def _phi(**kw):
    return hf("PhiForCausalLM", "PhiConfig", hidden_size=64, intermediate_size=256, num_hidden_layers=4,
              num_attention_heads=4, partial_rotary_factor=0.5, max_position_embeddings=64, **_LM, **kw)


def _albert(**kw):
    return hf("AlbertModel", "AlbertConfig", vocab_size=1000, embedding_size=32, hidden_size=64, num_hidden_layers=6,
              num_attention_heads=4, intermediate_size=256, max_position_embeddings=64, pad_token_id=0, **kw)


def _mobilebert(**kw):
    return hf("MobileBertModel", "MobileBertConfig", vocab_size=1000, hidden_size=64, embedding_size=32,
              true_hidden_size=32, intra_bottleneck_size=32, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=64, max_position_embeddings=64, pad_token_id=0, **kw)


def _convnextv2(**kw):
    return hf("ConvNextV2Model", "ConvNextV2Config", num_channels=3, hidden_sizes=[32, 64], depths=[3, 3],
              num_stages=2, patch_size=2, image_size=32, **kw)


def _dinov2(**kw):
    return hf("Dinov2Model", "Dinov2Config", image_size=32, patch_size=4, hidden_size=64, num_hidden_layers=6,
              num_attention_heads=4, mlp_ratio=4, use_swiglu_ffn=True, **kw)


def _mamba(**kw):
    return hf("MambaForCausalLM", "MambaConfig", hidden_size=64, state_size=8, num_hidden_layers=4, expand=2,
              conv_kernel=4, **_LM, **kw)


def _wav2vec2(**kw):
    return hf("Wav2Vec2Model", "Wav2Vec2Config", conv_dim=(32, 32, 32), conv_stride=(5, 4, 4),
              conv_kernel=(10, 8, 8), conv_bias=False, feat_extract_norm="group", hidden_size=64,
              num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, num_conv_pos_embeddings=16,
              num_conv_pos_embedding_groups=4, apply_spec_augment=False, mask_time_prob=0.0, layerdrop=0.0,
              **kw)


# ------------------------------------------------------------------------------------------------------ inputs
def _audio(g: torch.Generator) -> dict:
    return {"input_values": torch.randn(4, 1600, generator=g)}


# ------------------------------------------------------------------------------------------------------- cases
def _family(family: str, stock: tuple, *broken: tuple, **common) -> list[Zoo2Case]:
    """A family's stock case and its broken variants: each ``(name, build, why)``."""
    return [Zoo2Case(stock[0], family, stock[1], expect=(), why=stock[2], intended="stock", **common)] + [
        Zoo2Case(name, family, build, expect=ANY_ERROR, why=why, intended="broken", **common)
        for name, build, why in broken]


_HF = "stock transformers init from the config"
_CASE2_LIST = [
    *_family("bart", ("bart-2+2x64", _bart, f"BartModel encoder-decoder: learned positions (offset 2), embedding "
                                            f"LayerNorm, post-LN, GELU, {_HF} (init_std 0.02)"),
             ("bart-2+2x64-std1", lambda: _bart(init_std=1.0), "BART with init_std 1.0 (50× the stock 0.02)"),
             ("bart-2+2x64-std2e-6", lambda: _bart(init_std=2e-6),
              "BART with init_std 2e-6 (0.02/1e4): the embedding LayerNorm's input far below eps"),
             inputs=_seq2seq, task="seq2seq", blocks="BartDecoderLayer", blocks_under="decoder"),
    *_family("bloom", ("bloom-4x64", _bloom, f"BloomForCausalLM: ALiBi (no position embedding), embedding "
                                             f"LayerNorm, fused QKV, pre-LN, {_HF} (std 0.02)"),
             ("bloom-4x64-std1", lambda: _bloom(initializer_range=1.0), "BLOOM with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="BloomBlock"),
    *_family("phi", ("phi-4x64", _phi, f"PhiForCausalLM: parallel attention+MLP sharing one LayerNorm, partial "
                                       f"rotary (half the head dims), {_HF} (std 0.02)"),
             ("phi-4x64-std1", lambda: _phi(initializer_range=1.0), "Phi with initializer_range 1.0 (50×)"),
             ("phi-4x64-std2e-6", lambda: _phi(initializer_range=2e-6),
              "Phi with initializer_range 2e-6 (0.02/1e4): LayerNorm inputs far below eps"),
             inputs=_tokens, task="lm", blocks="PhiDecoderLayer"),
    *_family("albert", ("albert-6x64", _albert, f"AlbertModel: one layer's weights shared by all 6 layers, "
                                                f"factorized embedding 32 → 64, post-LN, {_HF} (std 0.02)"),
             ("albert-6x64-std1", lambda: _albert(initializer_range=1.0), "ALBERT with initializer_range 1.0"),
             inputs=_tokens, task="lm", blocks="AlbertLayer", shared=True),
    *_family("mobilebert", ("mobilebert-4x64", _mobilebert,
                            f"MobileBertModel: NoNorm (elementwise affine, no normalization), bottlenecks 64 → 32, "
                            f"4 stacked FFNs per layer, trigram embedding, {_HF} (std 0.02)"),
             ("mobilebert-4x64-std1", lambda: _mobilebert(initializer_range=1.0),
              "MobileBERT with initializer_range 1.0: nothing normalizes the stream"),
             inputs=_tokens, task="lm", blocks="MobileBertLayer"),
    *_family("convnextv2", ("convnextv2-3+3", _convnextv2,
                            f"ConvNextV2Model (Woo et al. 2023): depthwise conv → LN → MLP with global response "
                            f"normalization (GRN, itself residual), no layer scale, {_HF}"),
             ("convnextv2-3+3-std1", lambda: _convnextv2(initializer_range=1.0),
              "ConvNeXt-V2 with initializer_range 1.0 (50×): nothing scales the branches down"),
             inputs=_pixels, blocks="ConvNextV2Layer"),
    *_family("dinov2", ("dinov2-6x64", _dinov2, f"Dinov2Model (Oquab et al. 2023): layer scale 1, SwiGLU MLP, "
                                                f"CLS token, interpolated positions, pre-LN, {_HF}"),
             ("dinov2-6x64-std1", lambda: _dinov2(initializer_range=1.0), "DINOv2 with initializer_range 1.0"),
             inputs=_pixels, blocks="Dinov2Layer"),
    *_family("mamba", ("mamba-4x64", _mamba, f"MambaForCausalLM (Gu & Dao 2023): selective state-space scan, "
                                             f"causal depthwise conv1d, gated, RMSNorm pre-norm, {_HF}"),
             ("mamba-4x64-std1", lambda: _mamba(initializer_range=1.0), "Mamba with initializer_range 1.0"),
             inputs=_tokens, task="lm", blocks="MambaBlock"),
    *_family("wav2vec2", ("wav2vec2-4x64", _wav2vec2,
                          f"Wav2Vec2Model on raw audio: conv feature extractor with GroupNorm, weight-normed "
                          f"positional conv, post-LN encoder, {_HF}"),
             ("wav2vec2-4x64-std1", lambda: _wav2vec2(initializer_range=1.0),
              "wav2vec 2.0 with initializer_range 1.0 (50×)"),
             inputs=_audio, task="audio", blocks="Wav2Vec2EncoderLayer"),
    *_family("inception", ("inception-4", zm.inception_net,
                           "Inception-v1 modules (Szegedy et al. 2015): four parallel branches concatenated, BN, "
                           "torchvision GoogLeNet init (truncated normal std 0.01)"),
             ("inception-4-nobn", lambda: zm.inception_net(bn=False),
              "the same Inception net without BN: std 0.01 shrinks every conv's output variance ~100×"),
             inputs=_images, blocks="Inception"),
    *_family("mlp-mixer", ("mixer-8x64", zm.mixer, "MLP-Mixer (Tolstikhin et al. 2021): token-mixing MLPs across a "
                                                   "transpose, pre-LN, xavier_uniform_ MLPs, LeCun patch embedding"),
             ("mixer-8x64-std1", lambda: zm.mixer(weight_std=1.0),
              "MLP-Mixer with every MLP weight N(0, 1) (≈ √fan_in × too large)"),
             ("mixer-8x64-stem1e-5", lambda: zm.mixer(stem_scale=1e-5),
              "MLP-Mixer with the patch embedding × 1e-5: the first LayerNorm's input far below its eps"),
             inputs=_images, blocks="MixerBlock"),
    *_family("bigru", ("bigru-rows-3x64", zm.row_gru,
                       "3-layer bidirectional nn.GRU reading CIFAR rows, PyTorch default init"),
             ("bigru-rows-3x64-ih0.01", lambda: zm.row_gru(ih_scale=0.01),
              "the same bidirectional GRU with every input weight × 0.01: each layer passes 1e-4 of the variance"),
             inputs=_images),
    *_family("deepnet", ("deepnet-12x64", zm.deepnet_lm,
                         "DeepNet (Wang et al. 2022) post-LN LM: LN(α·x + G(x)), α = (2N)^¼, branches × β = "
                         "(8N)^-¼ at init, 12 layers"),
             ("deepnet-12x64-emb1e-6", lambda: zm.deepnet_lm(embed_std=1e-6),
              "DeepNet with token and position embeddings N(0, 1e-12): the first LayerNorm's input far below eps"),
             inputs=_tokens, task="lm", blocks="DeepNormLayer"),
]
CASES2: dict[str, Zoo2Case] = {c.name: c for c in _CASE2_LIST}
SPLIT2: dict[str, str] = {name: HELD_OUT_2 for name in CASES2}
