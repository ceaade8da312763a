"""The seventh held-out zoo of issue 18: families in none of :mod:`tools.calibration.cases`,
:mod:`tools.calibration.zoo` and the later zoos ``zoo2.py`` … ``zoo6.py``, chosen for architectural features those
lack (before and without looking at how ``check`` treats them), each as a stock model (library defaults or its
paper's init) and a variant meant to be broken: Hugging Face configs (focal modulation, EfficientNet/MobileNetV2
inverted residuals, WavLM's gated relative position bias, SEW's squeezed sequence, Longformer's sliding-window
attention, CANINE's character downsampling, Persimmon's squared ReLU and qk-LayerNorm, Qwen2-MoE's shared expert)
and hand-written ones (:mod:`tools.calibration.zoo7_models`: PyramidNet, IndRNN, Performer).

Every case here has split ``"held-out-7"``: nobody tunes on it. It is the reserve zoo, scored once if the fixes
made after the sixth held-out zoo need an unseen zoo. Like the other later zoos its cases are *not* in
:data:`tools.calibration.zoo.ALL_CASES`; they are reached only through :data:`CASES7` (``python -m
tools.calibration --half held-out-7``). Labels come from :mod:`tools.calibration.label` with the rule unchanged
(``label --zoo 7``).
"""
from __future__ import annotations

from tools.calibration import zoo7_models as zm
from tools.calibration.cases import _tokens
from tools.calibration.zoo import _LM, _images, _pixels, hf
from tools.calibration.zoo2 import _audio, _family

HELD_OUT_7 = "held-out-7"


# ------------------------------------------------------------------------------------------------- HF builders
def _focalnet(**kw):
    return hf("FocalNetModel", "FocalNetConfig", image_size=32, patch_size=2, embed_dim=32, depths=[2, 2],
              focal_levels=[2, 2], focal_windows=[3, 3], **kw)


def _efficientnet(**kw):
    """EfficientNet-B0's stages at width 0.25, depth 0.3, for CIFAR: the second stage's stride 1 instead of 2 (32×32
    inputs end on 2×2 maps, not 1×1); no drop-connect (stochastic depth, which ``hf`` does not zero by name)."""
    return hf("EfficientNetModel", "EfficientNetConfig", image_size=32, width_coefficient=0.25,
              depth_coefficient=0.3, hidden_dim=320, strides=[1, 1, 2, 2, 1, 2, 1], drop_connect_rate=0.0, **kw)


def _mobilenet_v2(**kw):
    """MobileNetV2 at depth multiplier 0.35 for CIFAR: output stride 8 (the later stages dilated instead of strided,
    the paper's §6 option; 32×32 inputs end on 4×4 maps, not 1×1)."""
    return hf("MobileNetV2Model", "MobileNetV2Config", image_size=32, depth_multiplier=0.35, output_stride=8, **kw)


_SPEECH = dict(conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8), hidden_size=64,
               num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, num_conv_pos_embeddings=16,
               num_conv_pos_embedding_groups=4, apply_spec_augment=False, mask_time_prob=0.0, layerdrop=0.0)


def _wavlm(**kw):
    return hf("WavLMModel", "WavLMConfig", **_SPEECH, **kw)


def _sew(**kw):
    return hf("SEWModel", "SEWConfig", squeeze_factor=2, **_SPEECH, **kw)


def _longformer(**kw):
    return hf("LongformerModel", "LongformerConfig", vocab_size=1000, hidden_size=64, num_hidden_layers=4,
              num_attention_heads=4, intermediate_size=128, max_position_embeddings=80, attention_window=8,
              pad_token_id=1, **kw)


def _canine(**kw):
    return hf("CanineModel", "CanineConfig", hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=128, max_position_embeddings=128, downsampling_rate=4, num_hash_buckets=64,
              num_hash_functions=4, **kw)


def _persimmon(**kw):
    return hf("PersimmonForCausalLM", "PersimmonConfig", hidden_size=64, intermediate_size=256, num_hidden_layers=4,
              num_attention_heads=4, max_position_embeddings=64, **_LM, **kw)


def _qwen2_moe(**kw):
    return hf("Qwen2MoeForCausalLM", "Qwen2MoeConfig", hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
              shared_expert_intermediate_size=64, num_experts=4, num_experts_per_tok=2, num_hidden_layers=4,
              num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64, **_LM, **kw)


# ------------------------------------------------------------------------------------------------------- cases
_HF = "stock transformers init from the config"
_CASE7_LIST = [
    *_family("focalnet", ("focalnet-2+2x32", _focalnet,
                          f"FocalNetModel (Yang et al. 2022): focal modulation instead of attention (a linear to "
                          f"query, context and gates, hierarchical depthwise convs with GELU, gated aggregation, a "
                          f"1×1 modulator multiplied into the query), pre-LN, patch merging, {_HF} (std 0.02)"),
             ("focalnet-2+2x32-std1", lambda: _focalnet(initializer_range=1.0),
              "FocalNet with initializer_range 1.0 (50×)"),
             inputs=_pixels, blocks="FocalNetLayer"),
    *_family("efficientnet", ("efficientnet-w0.25", lambda: zm.reference_init(_efficientnet()),
                              "EfficientNetModel (Tan & Le 2019) at width 0.25, depth 0.3, total stride 16: MBConv blocks (1×1 "
                              "expansion, depthwise conv, squeeze-excitation, linear 1×1 projection, identity "
                              "shortcut where shapes match), BatchNorm, swish; the reference init "
                              "(zoo7_models.reference_init: convs kaiming_normal_ fan_out, BN weight 1)"),
             ("efficientnet-w0.25-hfinit", _efficientnet,
              "the same EfficientNet at transformers' own init: every conv and BN weight N(0, 0.02²) (BN scales "
              "≈ 0.02 instead of 1)"),
             ("efficientnet-w0.25-nobn", lambda: zm.without_batch_norm(zm.reference_init(_efficientnet())),
              "the same EfficientNet (reference init) with every BatchNorm an identity"),
             inputs=_pixels, blocks="EfficientNetBlock"),
    *_family("mobilenet-v2", ("mobilenet-v2-0.35", _mobilenet_v2,
                              f"MobileNetV2Model (Sandler et al. 2018) at depth multiplier 0.35, output stride 8: inverted residuals "
                              f"with linear bottlenecks (1×1 expansion → ReLU6 → depthwise 3×3 → ReLU6 → linear 1×1), "
                              f"BatchNorm, TF-style padding, {_HF} (convs N(0, 0.02²), BN weight 1)"),
             ("mobilenet-v2-0.35-nobn", lambda: zm.without_batch_norm(_mobilenet_v2()),
              "the same MobileNetV2 with every BatchNorm an identity at the stock conv init N(0, 0.02²)"),
             inputs=_pixels, blocks="MobileNetV2InvertedResidual"),
    *_family("wavlm", ("wavlm-4x64", _wavlm,
                       f"WavLMModel (Chen et al. 2022) on raw audio: conv feature extractor with GroupNorm, a "
                       f"convolutional position embedding, post-LN layers with gated relative position bias (bucketed "
                       f"relative positions, gates from the query), {_HF} (std 0.02)"),
             ("wavlm-4x64-std1", lambda: _wavlm(initializer_range=1.0), "WavLM with initializer_range 1.0 (50×)"),
             inputs=_audio, task="audio", blocks="WavLMEncoderLayer"),
    *_family("sew", ("sew-4x64", _sew,
                     f"SEWModel (Wu et al. 2022, Squeezed and Efficient Wav2vec) on raw audio: conv feature "
                     f"extractor, the sequence pooled 2× before the post-LN transformer and upsampled after it, "
                     f"{_HF} (std 0.02)"),
             ("sew-4x64-std1", lambda: _sew(initializer_range=1.0), "SEW with initializer_range 1.0 (50×)"),
             inputs=_audio, task="audio", blocks="SEWEncoderLayer"),
    *_family("longformer", ("longformer-4x64", _longformer,
                            f"LongformerModel (Beltagy et al. 2020): sliding-window attention (window 8, chunked, "
                            f"sequences padded to a window multiple) with separate global projections, post-LN, "
                            f"{_HF} (std 0.02)"),
             ("longformer-4x64-std1", lambda: _longformer(initializer_range=1.0),
              "Longformer with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="LongformerLayer"),
    *_family("canine", ("canine-4x64", _canine,
                        f"CanineModel (Clark et al. 2022): hashed character embeddings (4 hashes × 64 buckets), a "
                        f"local-attention initial encoder, a strided conv downsampling 4×, a deep post-LN "
                        f"transformer, upsampling by concatenation and a conv, a final layer, {_HF} (std 0.02)"),
             ("canine-4x64-std1", lambda: _canine(initializer_range=1.0), "CANINE with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="CanineLayer", blocks_under="encoder"),
    *_family("persimmon", ("persimmon-4x64", _persimmon,
                           f"PersimmonForCausalLM (Adept 2023): squared-ReLU MLP, LayerNorm on queries and keys, "
                           f"partial rotary, pre-LN, {_HF} (std 0.02)"),
             ("persimmon-4x64-std1", lambda: _persimmon(initializer_range=1.0),
              "Persimmon with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="PersimmonDecoderLayer"),
    *_family("qwen2-moe", ("qwen2-moe-4x64", _qwen2_moe,
                           f"Qwen2MoeForCausalLM (Qwen team 2024): every feed-forward a top-2 mixture of 4 SwiGLU "
                           f"experts plus a shared expert behind a sigmoid gate, RMSNorm pre-norm, rotary, {_HF} "
                           f"(std 0.02)"),
             ("qwen2-moe-4x64-std1", lambda: _qwen2_moe(initializer_range=1.0),
              "Qwen2-MoE with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="Qwen2MoeDecoderLayer"),
    *_family("pyramidnet", ("pyramidnet-3x2-a48", zm.pyramidnet,
                            "PyramidNet (Han et al. 2017) for CIFAR: basic blocks BN → conv → BN → ReLU → conv → BN, "
                            "width growing additively (α = 48 over 6 blocks), shortcuts average-pooled and "
                            "zero-padded to the new width, He normal init (fan_out)"),
             ("pyramidnet-3x2-a48-nobn-x2", lambda: zm.pyramidnet(bn=False, weight_scale=2.0),
              "the same PyramidNet with every BN an identity and every conv weight × 2"),
             inputs=_images, blocks="PyramidBlock"),
    *_family("indrnn", ("indrnn-lm-3x128", zm.indrnn_lm,
                        "stacked IndRNN LM (Li et al. 2018): 3 layers of 128 independently recurrent ReLU units "
                        "h_t = ReLU(BN(W x_t) + u ⊙ h_{t-1}) (BN of the drive, as in the paper's deep models), "
                        "He-normal W, u ~ U(0, 1), embedding N(0, 1)"),
             ("indrnn-lm-3x128-u2", lambda: zm.indrnn_lm(u_max=2.0),
              "the same IndRNN LM with u ~ U(0, 2): half the units' recurrent weights above 1 (the paper's bound "
              "|u| ≤ 2^(1/T) left out)"),
             inputs=_tokens, task="lm", blocks="IndRNNLayer"),
    *_family("performer", ("performer-lm-4x64", zm.performer_lm,
                           "Performer causal LM (Choromanski et al. 2021): pre-LN layers with FAVOR+ attention "
                           "(positive orthogonal random features, 32 per head, prefix sums), GELU FFN, PyTorch's "
                           "default init throughout"),
             ("performer-lm-4x64-std1", lambda: zm.performer_lm(weight_std=1.0),
              "the Performer LM with every linear weight in the layers N(0, 1)"),
             inputs=_tokens, task="lm", blocks="PerformerLayer"),
]
CASES7 = {c.name: c for c in _CASE7_LIST}
SPLIT7: dict[str, str] = {name: HELD_OUT_7 for name in CASES7}
