"""The fourth held-out zoo of issue 18: families that are in none of :mod:`tools.calibration.cases`,
:mod:`tools.calibration.zoo`, :mod:`tools.calibration.zoo2` and :mod:`tools.calibration.zoo3`, chosen for
architectural features those lack (before and without looking at how ``check`` treats them), each as a stock model
(library defaults or its paper's init) and a variant meant to be broken.

Every case here has split ``"held-out-4"``: nobody tunes on it. It exists to score, once, the fixes made after the
third held-out zoo was seen. Like :mod:`tools.calibration.zoo3`, its cases are *not* in
:data:`tools.calibration.zoo.ALL_CASES`; they are reached only through :data:`CASES4` (``python -m tools.calibration
--half held-out-4``). Labels come from :mod:`tools.calibration.label` with the rule unchanged (``label --zoo 4``).
"""
from __future__ import annotations

import torch
from torch import nn

from tools.calibration import zoo4_models as zm
from tools.calibration.cases import _tokens
from tools.calibration.zoo import _LM, _images, _pixels, _seq2seq, _speech, hf
from tools.calibration.zoo2 import _family

HELD_OUT_4 = "held-out-4"


# ------------------------------------------------------------------------------------------------- HF builders
def _falcon(**kw):
    return hf("FalconForCausalLM", "FalconConfig", hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
              multi_query=True, parallel_attn=True, new_decoder_architecture=False, alibi=False, bias=False,
              max_position_embeddings=64, **_LM, **kw)


def _stablelm(**kw):
    return hf("StableLmForCausalLM", "StableLmConfig", hidden_size=64, intermediate_size=128, num_hidden_layers=4,
              num_attention_heads=4, num_key_value_heads=4, partial_rotary_factor=0.25, qk_layernorm=True,
              use_parallel_residual=False, max_position_embeddings=64, **_LM, **kw)


def _electra(**kw):
    return hf("ElectraModel", "ElectraConfig", vocab_size=1000, embedding_size=32, hidden_size=64,
              num_hidden_layers=4, num_attention_heads=4, intermediate_size=256, max_position_embeddings=64,
              pad_token_id=0, **kw)


def _roberta_preln(**kw):
    return hf("RobertaPreLayerNormModel", "RobertaPreLayerNormConfig", vocab_size=1000, hidden_size=64,
              num_hidden_layers=6, num_attention_heads=4, intermediate_size=256, max_position_embeddings=64,
              pad_token_id=1, bos_token_id=0, eos_token_id=2, **kw)


def _regnet(**kw):
    return hf("RegNetModel", "RegNetConfig", num_channels=3, embedding_size=16, hidden_sizes=[16, 32, 64],
              depths=[1, 2, 3], groups_width=8, layer_type="y", **kw)


def _without_bn(model: nn.Module, conv_scale: float) -> nn.Module:
    """``model`` with every BatchNorm2d an identity and every conv weight × ``conv_scale``."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(conv_scale)
    return model


def _resnet(**kw):
    return hf("ResNetModel", "ResNetConfig", num_channels=3, embedding_size=16, hidden_sizes=[32, 64, 128],
              depths=[2, 2, 2], layer_type="bottleneck", **kw)


def _speech2text(**kw):
    return hf("Speech2TextModel", "Speech2TextConfig", vocab_size=1000, d_model=64, encoder_layers=2,
              decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
              decoder_ffn_dim=128, input_feat_per_channel=32, input_channels=1, conv_channels=64,
              max_source_positions=64, max_target_positions=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
              decoder_start_token_id=1, use_cache=False, **kw)


def _marian(**kw):
    return hf("MarianModel", "MarianConfig", vocab_size=1000, decoder_vocab_size=1000, d_model=64, encoder_layers=2,
              decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
              decoder_ffn_dim=128, max_position_embeddings=64, pad_token_id=0, eos_token_id=1,
              decoder_start_token_id=0, forced_eos_token_id=1, use_cache=False, **kw)


def _levit(**kw):
    return hf("LevitModel", "LevitConfig", image_size=32, num_channels=3, patch_size=16, hidden_sizes=[64, 128],
              num_attention_heads=[2, 4], depths=[2, 2], key_dim=[16, 16], mlp_ratio=[2, 2], attention_ratio=[2, 2],
              down_ops=[["Subsample", 16, 2, 4, 2, 2]], **kw)


def _mobilevit(**kw):
    return hf("MobileViTModel", "MobileViTConfig", image_size=32, num_channels=3, patch_size=2,
              hidden_sizes=[48, 64, 80], neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320], num_attention_heads=4,
              expand_ratio=2.0, **kw)


# ------------------------------------------------------------------------------------------------------- cases
_HF = "stock transformers init from the config"
_CASE4_LIST = [
    *_family("falcon", ("falcon-4x64", _falcon, f"FalconForCausalLM (Almazrouei et al. 2023): parallel attention "
                                                f"and MLP from one LayerNorm, multi-query attention, rotary, no "
                                                f"biases, {_HF} (std 0.02)"),
             ("falcon-4x64-std1", lambda: _falcon(initializer_range=1.0), "Falcon with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="FalconDecoderLayer"),
    *_family("stablelm", ("stablelm-4x64", _stablelm,
                          f"StableLmForCausalLM: partial rotary (a quarter of the head dims), per-head q/k "
                          f"LayerNorm, pre-LN, SwiGLU MLP, {_HF} (std 0.02)"),
             ("stablelm-4x64-std2e-6", lambda: _stablelm(initializer_range=2e-6),
              "StableLM with initializer_range 2e-6 (0.02/1e4): LayerNorm inputs far below eps"),
             inputs=_tokens, task="lm", blocks="StableLmDecoderLayer"),
    *_family("electra", ("electra-4x64", _electra, f"ElectraModel (Clark et al. 2020) discriminator: embedding "
                                                   f"size 32 projected to 64, post-LN, GELU, {_HF} (std 0.02)"),
             ("electra-4x64-std1", lambda: _electra(initializer_range=1.0),
              "ELECTRA with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="ElectraLayer"),
    *_family("roberta-preln", ("roberta-preln-6x64", _roberta_preln,
                               f"RobertaPreLayerNormModel: BERT-style encoder with pre-LN blocks and a final "
                               f"LayerNorm, positions offset by the padding index, {_HF} (std 0.02)"),
             ("roberta-preln-6x64-std1", lambda: _roberta_preln(initializer_range=1.0),
              "RoBERTa-PreLayerNorm with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="RobertaPreLayerNormLayer"),
    *_family("regnet", ("regnety-1+2+3", _regnet,
                        f"RegNetModel, Y type (Radosavovic et al. 2020): bottleneck blocks with grouped 3×3 convs "
                        f"(group width 8) and squeeze-excitation, BN, {_HF} (kaiming_normal_, fan_out)"),
             ("regnety-1+2+3-nobn-x4", lambda: _without_bn(_regnet(), 4.0),
              "the same RegNetY with every BN an identity and every conv weight × 4"),
             inputs=_pixels, blocks="RegNetYLayer"),
    *_family("levit", ("levit-2+2", _levit, f"LevitModel (Graham et al. 2021): conv stem (16× downsampling), "
                                            f"attention with BatchNorm'd linears and a learned attention bias, "
                                            f"Hardswish, a subsampling attention between stages, no LayerNorm, "
                                            f"{_HF}"),
             ("levit-2+2-std1", lambda: _levit(initializer_range=1.0), "LeViT with initializer_range 1.0 (50×)"),
             inputs=_pixels, blocks="LevitResidualLayer"),
    *_family("mobilevit", ("mobilevit-s", _mobilevit,
                           f"MobileViTModel (Mehta & Rastegari 2022): MobileNetV2 inverted residuals (BN, SiLU), "
                           f"then blocks that unfold 2×2 patches, run pre-LN transformer layers over them, fold "
                           f"back and fuse with a conv, {_HF} (std 0.02)"),
             ("mobilevit-s-std1", lambda: _mobilevit(initializer_range=1.0),
              "MobileViT with initializer_range 1.0 (50×)"),
             inputs=_pixels, blocks="MobileViTTransformerLayer"),
    *_family("squeezenet", ("squeezenet-6fire", zm.squeezenet,
                            "SqueezeNet 1.1 (Iandola et al. 2016): fire modules (1×1 squeeze, parallel 1×1 and 3×3 "
                            "expand, concatenated), no normalization and no residual, torchvision init"),
             ("squeezenet-6fire-x3", lambda: zm.squeezenet(weight_scale=3.0),
              "the same SqueezeNet with every conv but the last × 3 (variance × 9 per conv, 14 convs deep)"),
             inputs=_images, blocks="Fire"),
    *_family("gated-conv", ("gated-conv-lm-8x64", zm.gated_conv_lm,
                            "gated convolutional LM (Dauphin et al. 2017): causal conv1d with GLU gates, a residual "
                            "every block, no normalization, He init"),
             ("gated-conv-lm-8x64-std1", lambda: zm.gated_conv_lm(conv_std=1.0),
              "the same gated conv LM with conv weights N(0, 1) (16× the He std; fan_in 256)"),
             inputs=_tokens, task="lm", blocks="GatedConvBlock"),
    # added after the first 18 were labelled (2 of them disputed), before any check run on this zoo
    *_family("resnet-bottleneck", ("resnet-bottleneck-2+2+2", _resnet,
                                   f"ResNetModel (He et al. 2016): bottleneck blocks 1×1 → 3×3 → 1×1 with 4× "
                                   f"reduction, BN, projection shortcuts, stem conv 7×7 + max-pool, {_HF} "
                                   f"(kaiming_normal_, fan_out)"),
             ("resnet-bottleneck-2+2+2-nobn-x2", lambda: _without_bn(_resnet(), 2.0),
              "the same bottleneck ResNet with every BN an identity and every conv weight × 2"),
             inputs=_pixels, blocks="ResNetBottleNeckLayer"),
    *_family("speech2text", ("speech2text-2+2x64", _speech2text,
                             f"Speech2TextModel (Wang et al. 2020) on filterbank features: a conv1d subsampler "
                             f"with GLU (time ÷ 4), sinusoidal positions, pre-LN encoder-decoder, {_HF} "
                             f"(init_std 0.02)"),
             ("speech2text-2+2x64-std1", lambda: _speech2text(init_std=1.0),
              "Speech2Text with init_std 1.0 (50×)"),
             inputs=_speech, task="speech", blocks="Speech2TextDecoderLayer", blocks_under="decoder"),
    *_family("marian", ("marian-2+2x64", _marian,
                        f"MarianModel (Junczys-Dowmunt et al. 2018) encoder-decoder: sinusoidal positions, no "
                        f"embedding LayerNorm, post-LN, swish MLP, {_HF} (init_std 0.02)"),
             ("marian-2+2x64-std1", lambda: _marian(init_std=1.0), "Marian with init_std 1.0 (50×)"),
             inputs=_seq2seq, task="seq2seq", blocks="MarianDecoderLayer", blocks_under="decoder"),
]
CASES4 = {c.name: c for c in _CASE4_LIST}
SPLIT4: dict[str, str] = {name: HELD_OUT_4 for name in CASES4}
