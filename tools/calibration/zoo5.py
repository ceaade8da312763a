"""The fifth held-out zoo of issue 18: families that are in none of :mod:`tools.calibration.cases`,
:mod:`tools.calibration.zoo` and the later zoos ``zoo2.py`` … ``zoo4.py``, chosen for architectural features those
lack (before and without looking at how ``check`` treats them), each as a stock model (library defaults or its
paper's init) and a variant meant to be broken.

Every case here has split ``"held-out-5"``: nobody tunes on it. It exists to score, once, the fixes made after the
fourth held-out zoo was seen. Like the other later zoos, its cases are *not* in
:data:`tools.calibration.zoo.ALL_CASES`; they are reached only through :data:`CASES5` (``python -m tools.calibration
--half held-out-5``). Labels come from :mod:`tools.calibration.label` with the rule unchanged (``label --zoo 5``).
"""
from __future__ import annotations

import torch

from tools.calibration import zoo5_models as zm
from tools.calibration.cases import _tokens
from tools.calibration.zoo import _LM, _pixels, _seq2seq, hf
from tools.calibration.zoo2 import _audio, _family

HELD_OUT_5 = "held-out-5"


# ------------------------------------------------------------------------------------------------- HF builders
def _reformer(**kw):
    return hf("ReformerModelWithLMHead", "ReformerConfig", vocab_size=1000, hidden_size=64, attention_head_size=16,
              num_attention_heads=4, attn_layers=["local"] * 4, feed_forward_size=128, axial_pos_embds=False,
              max_position_embeddings=64, local_attn_chunk_length=8, is_decoder=True, pad_token_id=0,
              eos_token_id=2, use_cache=False, **kw)


def _rwkv(**kw):
    return hf("RwkvForCausalLM", "RwkvConfig", vocab_size=1000, hidden_size=64, num_hidden_layers=4,
              attention_hidden_size=64, intermediate_size=256, context_length=64, bos_token_id=1, eos_token_id=2,
              use_cache=False, **kw)


def _gpt_neo(**kw):
    return hf("GPTNeoForCausalLM", "GPTNeoConfig", hidden_size=64, num_layers=4, num_heads=4,
              attention_types=[[["global", "local"], 2]], window_size=8, max_position_embeddings=64, **_LM, **kw)


def _clip(**kw):
    return hf("CLIPVisionModel", "CLIPVisionConfig", image_size=32, patch_size=4, hidden_size=64,
              intermediate_size=256, num_hidden_layers=4, num_attention_heads=4, **kw)


def _conformer(**kw):
    return hf("Wav2Vec2ConformerModel", "Wav2Vec2ConformerConfig", conv_dim=(32, 32, 32), conv_stride=(5, 4, 4),
              conv_kernel=(10, 8, 8), conv_bias=False, feat_extract_norm="group", hidden_size=64,
              num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, num_conv_pos_embeddings=16,
              num_conv_pos_embedding_groups=4, conv_depthwise_kernel_size=7, position_embeddings_type="relative",
              apply_spec_augment=False, mask_time_prob=0.0, layerdrop=0.0, **kw)


def _nystromformer(**kw):
    return hf("NystromformerModel", "NystromformerConfig", vocab_size=1000, hidden_size=64, num_hidden_layers=4,
              num_attention_heads=4, intermediate_size=128, max_position_embeddings=64, num_landmarks=8,
              segment_means_seq_len=32, conv_kernel_size=3, pad_token_id=0, **kw)


def _tokens32(g: torch.Generator) -> dict:
    """4 × 32 token ids: Nyströmformer's landmarks are means over fixed segments of ``segment_means_seq_len`` (32,
    the bigram task's length) tokens; transformers reshapes any other length silently, mixing the batch's rows."""
    return _tokens(g, seq=32)


def _convbert(**kw):
    return hf("ConvBertModel", "ConvBertConfig", vocab_size=1000, embedding_size=64, hidden_size=64,
              num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, max_position_embeddings=64,
              head_ratio=2, conv_kernel_size=9, num_groups=2, pad_token_id=0, **kw)


def _perceiver(**kw):
    return hf("PerceiverForMaskedLM", "PerceiverConfig", vocab_size=1000, num_latents=16, d_latents=64, d_model=64,
              num_blocks=1, num_self_attends_per_block=4, num_self_attention_heads=4, num_cross_attention_heads=1,
              max_position_embeddings=32, **kw)


def _switch(**kw):
    return hf("SwitchTransformersModel", "SwitchTransformersConfig", vocab_size=1000, d_model=64, d_kv=16, d_ff=128,
              expert_capacity=64, num_layers=4, num_sparse_encoder_layers=2, num_decoder_layers=4,
              num_sparse_decoder_layers=2, num_heads=4, num_experts=4, router_jitter_noise=0.0,
              decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, use_cache=False, **kw)


def _olmo(**kw):
    return hf("OlmoForCausalLM", "OlmoConfig", hidden_size=64, intermediate_size=128, num_hidden_layers=4,
              num_attention_heads=4, max_position_embeddings=64, **_LM, **kw)


def _recurrent_gemma(**kw):
    return hf("RecurrentGemmaForCausalLM", "RecurrentGemmaConfig", hidden_size=64, intermediate_size=128,
              num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=1, lru_width=64,
              attention_window_size=16, conv1d_width=4, **_LM, **kw)


def _bit(**kw):
    return hf("BitModel", "BitConfig", num_channels=3, embedding_size=32, hidden_sizes=[32, 64, 128],
              depths=[2, 2, 2], layer_type="preactivation", num_groups=8, **kw)


def _swinv2(**kw):
    return hf("Swinv2Model", "Swinv2Config", image_size=32, patch_size=2, embed_dim=32, depths=[2, 2],
              num_heads=[2, 4], window_size=4, **kw)


# ------------------------------------------------------------------------------------------------------- cases
_HF = "stock transformers init from the config"
_CASE5_LIST = [
    *_family("reformer", ("reformer-4x64", _reformer,
                          f"ReformerModelWithLMHead (Kitaev et al. 2020): reversible residual layers (two streams, "
                          f"activations recomputed in a custom autograd backward in train mode), chunked local "
                          f"causal attention, chunked feed-forward, pre-LN, {_HF} (std 0.02)"),
             ("reformer-4x64-std1", lambda: _reformer(initializer_range=1.0),
              "Reformer with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="ReformerLayer"),
    *_family("rwkv", ("rwkv-4x64", _rwkv,
                      f"RwkvForCausalLM (Peng et al. 2023, RWKV-4): time-mixing with the WKV linear recurrence and "
                      f"token shift, channel-mixing with squared ReLU, pre-LN plus an extra LayerNorm on the "
                      f"embedding, {_HF} (orthogonal linears; embedding orthogonal with gain 1e-4·√1000: the "
                      f"paper's small embedding init)"),
             ("rwkv-4x64-x10", lambda: zm.scaled(_rwkv(), 10.0, under="rwkv.blocks"),
              "RWKV with every linear weight in the blocks × 10 (orthogonal gain 10 instead of 1)"),
             inputs=_tokens, task="lm", blocks="RwkvBlock"),
    *_family("gpt-neo", ("gpt-neo-4x64", _gpt_neo,
                         f"GPTNeoForCausalLM (Black et al. 2021): layers alternating global and local (window 8) "
                         f"causal attention, unscaled attention logits, pre-LN, {_HF} (std 0.02)"),
             ("gpt-neo-4x64-std1", lambda: _gpt_neo(initializer_range=1.0),
              "GPT-Neo with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="GPTNeoBlock"),
    *_family("clip-vision", ("clip-vision-4x64", _clip,
                             f"CLIPVisionModel (Radford et al. 2021): patch conv without bias, class token, a "
                             f"LayerNorm before the encoder (pre_layrnorm) and pre-LN layers, quick-GELU, {_HF} "
                             f"(initializer_factor 1: attention std d^-½·(2L)^-½, positions 0.02)"),
             ("clip-vision-4x64-factor50", lambda: _clip(initializer_factor=50.0),
              "CLIP vision with initializer_factor 50 (every init std × 50)"),
             inputs=_pixels, blocks="CLIPEncoderLayer"),
    *_family("w2v2-conformer", ("w2v2-conformer-4x64", _conformer,
                                f"Wav2Vec2ConformerModel (Gulati et al. 2020 blocks in wav2vec 2.0) on raw audio: "
                                f"conv feature extractor with GroupNorm, macaron half-step feed-forwards, a "
                                f"convolution module (pointwise conv + GLU, depthwise conv, BatchNorm, SiLU), "
                                f"relative-position attention, a final LayerNorm per block, {_HF}"),
             ("w2v2-conformer-4x64-std1", lambda: _conformer(initializer_range=1.0),
              "wav2vec2-Conformer with initializer_range 1.0 (50×)"),
             inputs=_audio, task="audio", blocks="Wav2Vec2ConformerEncoderLayer"),
    *_family("nystromformer", ("nystromformer-4x64", _nystromformer,
                               f"NystromformerModel (Xiong et al. 2021): softmax attention approximated through 8 "
                               f"landmarks (means over 4-token segments) with an iterative pseudo-inverse, a "
                               f"depthwise conv on the values, post-LN, {_HF} (std 0.02)"),
             ("nystromformer-4x64-std2e-6", lambda: _nystromformer(initializer_range=2e-6),
              "Nyströmformer with initializer_range 2e-6 (0.02/1e4): the embedding LayerNorm's input far below eps"),
             inputs=_tokens32, task="lm", blocks="NystromformerLayer"),
    *_family("convbert", ("convbert-4x64", _convbert,
                          f"ConvBertModel (Jiang et al. 2020): mixed attention (half the heads self-attention, half "
                          f"span-based dynamic convolution, kernel 9), grouped linear feed-forward (2 groups), "
                          f"post-LN, {_HF} (std 0.02)"),
             ("convbert-4x64-std1", lambda: _convbert(initializer_range=1.0),
              "ConvBERT with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="ConvBertLayer"),
    *_family("perceiver", ("perceiver-4x64", _perceiver,
                           f"PerceiverForMaskedLM (Jaegle et al. 2021, Perceiver IO): 16 learned latents "
                           f"cross-attend to the token embeddings, 4 latent self-attention layers, a decoder whose "
                           f"position queries cross-attend to the latents, logits tied to the embedding, {_HF} "
                           f"(std 0.02)"),
             ("perceiver-4x64-std1", lambda: _perceiver(initializer_range=1.0),
              "Perceiver with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="PerceiverLayer"),
    *_family("switch", ("switch-4+4x64", _switch,
                        f"SwitchTransformersModel (Fedus et al. 2022): T5-style encoder-decoder whose every other "
                        f"feed-forward is a top-1 routed mixture of 4 experts (router without jitter), RMSNorm "
                        f"pre-norm, relative position buckets, {_HF} (initializer_factor 1)"),
             ("switch-4+4x64-factor100", lambda: _switch(initializer_factor=100.0),
              "Switch Transformer with initializer_factor 100"),
             inputs=_seq2seq, task="seq2seq", blocks="SwitchTransformersBlock", blocks_under="decoder"),
    *_family("olmo", ("olmo-4x64", _olmo,
                      f"OlmoForCausalLM (Groeneveld et al. 2024): LayerNorm with no learnable weight or bias, "
                      f"pre-norm, SwiGLU, rotary, no biases, {_HF} (std 0.02)"),
             ("olmo-4x64-std1", lambda: _olmo(initializer_range=1.0), "OLMo with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="OlmoDecoderLayer"),
    *_family("recurrent-gemma", ("recurrentgemma-4x64", _recurrent_gemma,
                                 f"RecurrentGemmaForCausalLM (Griffin, De et al. 2024): two RG-LRU recurrent blocks "
                                 f"(gated linear recurrence after a causal conv1d) per local-attention block, "
                                 f"RMSNorm (1 + w) pre-norm, embedding × √d, soft-capped logits, {_HF} (variance "
                                 f"scales 1: std 1/√fan_in)"),
             ("recurrentgemma-4x64-var2500", lambda: _recurrent_gemma(w_init_variance_scale=2500.0,
                                                                      final_w_init_variance_scale=2500.0),
              "RecurrentGemma with w_init_variance_scale and final_w_init_variance_scale 2500 (std × 50)"),
             inputs=_tokens, task="lm", blocks="RecurrentGemmaDecoderLayer"),
    *_family("bit", ("bit-2+2+2", _bit,
                     f"BitModel (Kolesnikov et al. 2020, Big Transfer): pre-activation bottlenecks whose convs are "
                     f"weight-standardized (each filter to zero mean, unit variance at every call), GroupNorm "
                     f"(8 groups) instead of BatchNorm, {_HF}"),
             ("bit-2+2+2-nogn", lambda: zm.without_group_norm(_bit()),
              "the same BiT with every GroupNorm removed (activations kept): nothing normalizes the "
              "weight-standardized convs"),
             inputs=_pixels, blocks="BitPreActivationBottleneckLayer"),
    *_family("swinv2", ("swinv2-2+2x32", _swinv2,
                        f"Swinv2Model (Liu et al. 2022): residual post-norm (x + LN(branch(x))), scaled cosine "
                        f"attention with a learned logit scale, a log-spaced continuous position bias MLP, shifted "
                        f"windows, {_HF} (std 0.02)"),
             ("swinv2-2+2x32-std2e-6", lambda: _swinv2(initializer_range=2e-6),
              "Swin-V2 with initializer_range 2e-6 (0.02/1e4): the branch LayerNorms' inputs far below eps"),
             inputs=_pixels, blocks="Swinv2Layer"),
    *_family("patchtst", ("patchtst-3x64", zm.patchtst,
                          f"PatchTSTModel (Nie et al. 2023) on the audio task's waveforms as one-channel series "
                          f"(zoo5_models.SeriesModel): instance standardization, patches of 16, sin-cos positions, "
                          f"pre-norm layers with BatchNorm, {_HF} (init_std 0.02)"),
             ("patchtst-3x64-std1", lambda: zm.patchtst(init_std=1.0), "PatchTST with init_std 1.0 (50×)"),
             inputs=_audio, task="audio", blocks="PatchTSTEncoderLayer"),
]
CASES5 = {c.name: c for c in _CASE5_LIST}
SPLIT5: dict[str, str] = {name: HELD_OUT_5 for name in CASES5}
