"""The third held-out zoo of issue 18: families that are in none of :mod:`tools.calibration.cases`,
:mod:`tools.calibration.zoo` and :mod:`tools.calibration.zoo2`, chosen for architectural features those lack (before
and without looking at how ``check`` treats them), each as a stock model (library defaults or its paper's init) and
a variant meant to be broken.

Every case here has split ``"held-out-3"``: nobody tunes on it. It exists to score, once, the fixes made after the
second held-out zoo was seen. Like :mod:`tools.calibration.zoo2`, its cases are *not* in
:data:`tools.calibration.zoo.ALL_CASES`; they are reached only through :data:`CASES3` (``python -m tools.calibration
--half held-out-3``). Labels come from :mod:`tools.calibration.label` with the rule unchanged (``label --zoo 3``).
"""
from __future__ import annotations

from tools.calibration import zoo3_models as zm
from tools.calibration.cases import _tokens
from tools.calibration.zoo import _LM, _images, _pixels, _seq2seq, hf
from tools.calibration.zoo2 import _family

HELD_OUT_3 = "held-out-3"


# ------------------------------------------------------------------------------------------------- HF builders
def _opt(**kw):
    return hf("OPTForCausalLM", "OPTConfig", hidden_size=64, ffn_dim=256, num_hidden_layers=4, num_attention_heads=4,
              max_position_embeddings=64, word_embed_proj_dim=64, do_layer_norm_before=True, **_LM, **kw)


def _bigcode(**kw):
    return hf("GPTBigCodeForCausalLM", "GPTBigCodeConfig", n_embd=64, n_layer=4, n_head=4, n_positions=64,
              multi_query=True, **_LM, **kw)


def _gemma(**kw):
    return hf("GemmaForCausalLM", "GemmaConfig", hidden_size=64, intermediate_size=128, num_hidden_layers=4,
              num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=64, **_LM, **kw)


def _funnel(**kw):
    return hf("FunnelModel", "FunnelConfig", vocab_size=1000, block_sizes=[2, 2], block_repeats=[1, 1],
              num_decoder_layers=1, d_model=64, n_head=4, d_head=16, d_inner=128, pad_token_id=0, **kw)


def _fnet(**kw):
    return hf("FNetModel", "FNetConfig", vocab_size=1000, hidden_size=64, num_hidden_layers=4, intermediate_size=256,
              max_position_embeddings=64, use_tpu_fourier_optimizations=False, pad_token_id=0, **kw)


def _segformer(**kw):
    return hf("SegformerModel", "SegformerConfig", num_channels=3, num_encoder_blocks=2, depths=[2, 2],
              sr_ratios=[2, 1], hidden_sizes=[32, 64], patch_sizes=[7, 3], strides=[4, 2],
              num_attention_heads=[1, 2], mlp_ratios=[4, 4], **kw)


def _poolformer(**kw):
    return hf("PoolFormerModel", "PoolFormerConfig", num_channels=3, num_encoder_blocks=2, depths=[3, 3],
              hidden_sizes=[32, 64], patch_sizes=[7, 3], strides=[4, 2], padding=[2, 1], mlp_ratio=4.0, **kw)


def _pegasus(**kw):
    return hf("PegasusModel", "PegasusConfig", vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2,
              encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
              max_position_embeddings=64, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
              forced_eos_token_id=1, use_cache=False, **kw)


def _xlnet(**kw):
    return hf("XLNetModel", "XLNetConfig", vocab_size=1000, d_model=64, n_layer=4, n_head=4, d_head=16, d_inner=256,
              mem_len=None, pad_token_id=0, bos_token_id=1, eos_token_id=2, **kw)


def _cvt(**kw):
    return hf("CvtModel", "CvtConfig", num_channels=3, patch_sizes=[7, 3], patch_stride=[4, 2], patch_padding=[2, 1],
              embed_dim=[32, 64], num_heads=[1, 2], depth=[1, 3], mlp_ratio=[4.0, 4.0], attention_drop_rate=[0.0, 0.0],
              drop_rate=[0.0, 0.0], drop_path_rate=[0.0, 0.0], qkv_bias=[True, True], cls_token=[False, True],
              qkv_projection_method=["dw_bn", "dw_bn"], kernel_qkv=[3, 3], padding_kv=[1, 1], stride_kv=[2, 2],
              padding_q=[1, 1], stride_q=[1, 1], **kw)


# ------------------------------------------------------------------------------------------------------- cases
_HF = "stock transformers init from the config"
_CASE3_LIST = [
    *_family("opt", ("opt-4x64", _opt, f"OPTForCausalLM (Zhang et al. 2022): learned positions with offset 2, "
                                       f"pre-LN, ReLU MLP, {_HF} (init_std 0.02)"),
             ("opt-4x64-std1", lambda: _opt(init_std=1.0), "OPT with init_std 1.0 (50× the stock 0.02)"),
             inputs=_tokens, task="lm", blocks="OPTDecoderLayer"),
    *_family("gpt-bigcode", ("bigcode-4x64", _bigcode, f"GPTBigCodeForCausalLM (SantaCoder): multi-query attention "
                                                       f"(one key/value head), pre-LN, {_HF} (std 0.02)"),
             ("bigcode-4x64-std2e-6", lambda: _bigcode(initializer_range=2e-6),
              "GPT-BigCode with initializer_range 2e-6 (0.02/1e4): LayerNorm inputs far below eps"),
             inputs=_tokens, task="lm", blocks="GPTBigCodeBlock"),
    *_family("gemma", ("gemma-4x64", _gemma, f"GemmaForCausalLM: embedding × √d, RMSNorm with (1 + w), GeGLU, one "
                                             f"key/value head (GQA 4:1), rotary, {_HF} (std 0.02)"),
             ("gemma-4x64-std1", lambda: _gemma(initializer_range=1.0),
              "Gemma with initializer_range 1.0 (50×), embedding still × √d"),
             inputs=_tokens, task="lm", blocks="GemmaDecoderLayer"),
    *_family("funnel", ("funnel-2+2x64", _funnel,
                        f"FunnelModel (Dai et al. 2020): query mean-pooling between blocks (sequence 16 → 8), "
                        f"relative attention, post-LN, an upsampling decoder, {_HF} (linear std √(1/(fan_in + "
                        f"fan_out)), embedding std 1)"),
             ("funnel-2+2x64-std1e-7", lambda: _funnel(initializer_std=1e-7),
              "Funnel with initializer_std 1e-7 for every linear and the embedding: the embedding LayerNorm's input "
              "~1e-14 vs eps 1e-9"),
             inputs=_tokens, task="lm", blocks="FunnelLayer"),
    *_family("fnet", ("fnet-4x64", _fnet, f"FNetModel (Lee-Thorp et al. 2022): parameter-free Fourier token mixing "
                                          f"(real part of a 2-D FFT) instead of attention, post-LN, {_HF} (std 0.02)"),
             ("fnet-4x64-std1", lambda: _fnet(initializer_range=1.0), "FNet with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="FNetLayer"),
    *_family("segformer", ("segformer-2+2", _segformer,
                           f"SegformerModel (Xie et al. 2021): overlapping patch embeddings, attention with spatial "
                           f"reduction (keys/values from a strided conv + LN), Mix-FFN with a depthwise 3×3 conv, "
                           f"pre-LN, {_HF} (std 0.02)"),
             ("segformer-2+2-std1", lambda: _segformer(initializer_range=1.0),
              "SegFormer with initializer_range 1.0 (50×)"),
             inputs=_pixels, blocks="SegformerLayer"),
    *_family("poolformer", ("poolformer-3+3", _poolformer,
                            f"PoolFormerModel (Yu et al. 2022): average pooling minus identity as token mixer (no "
                            f"weights), GroupNorm(1) pre-norm, layer scale 1e-5, {_HF} (std 0.02)"),
             ("poolformer-3+3-std1-ls1", lambda: _poolformer(initializer_range=1.0, layer_scale_init_value=1.0),
              "PoolFormer with initializer_range 1.0 and layer scale 1 (instead of 0.02 and 1e-5)"),
             inputs=_pixels, blocks="PoolFormerLayer"),
    *_family("tcn", ("tcn-lm-6x64", zm.tcn_lm, "TCN LM (Bai et al. 2018): dilated causal conv1d (dilation 1 … 32) "
                                               "with weight normalization, ReLU(x + branch), N(0, 0.01²) init"),
             ("tcn-lm-6x64-std1", lambda: zm.tcn_lm(conv_std=1.0),
              "the same TCN with conv weights N(0, 1) (100× the reference std; fan_in 192)"),
             inputs=_tokens, task="lm", blocks="TemporalBlock"),
    *_family("preact-resnet", ("preact-resnet-12", zm.preact_resnet,
                               "pre-activation ResNet (He et al. 2016b): BN-ReLU-conv branches on an unnormalized "
                               "stream, 12 blocks, He init"),
             ("preact-resnet-12-nobn-x2", lambda: zm.preact_resnet(bn=False, weight_scale=2.0),
              "the same pre-activation ResNet without BN, convs 2 × He (variance ×4 per conv)"),
             inputs=_images, blocks="PreActBlock"),
    *_family("highway", ("highway-20x64", zm.highway_net,
                         "highway network (Srivastava et al. 2015): 20 gated layers, transform gate bias −2, "
                         "PyTorch default weights"),
             ("highway-20x64-gate+4", lambda: zm.highway_net(gate_bias=4.0),
              "the same highway net with gate bias +4: every layer transforms (T ≈ 0.98), a plain ReLU net at "
              "PyTorch's default init (M × ~1/6 per layer)"),
             inputs=_images, blocks="Highway"),
    # added after the first 20 were labelled (3 of them disputed), before any check run on this zoo
    *_family("pegasus", ("pegasus-2+2x64", _pegasus,
                         f"PegasusModel (Zhang et al. 2020) encoder-decoder: sinusoidal positions, pre-LN with a "
                         f"final LayerNorm in each stack, {_HF} (init_std 0.02)"),
             ("pegasus-2+2x64-std1", lambda: _pegasus(init_std=1.0), "Pegasus with init_std 1.0 (50×)"),
             inputs=_seq2seq, task="seq2seq", blocks="PegasusDecoderLayer", blocks_under="decoder"),
    *_family("xlnet", ("xlnet-4x64", _xlnet, f"XLNetModel (Yang et al. 2019): two-stream relative attention with "
                                             f"learned content/position biases, post-LN, {_HF} (std 0.02)"),
             ("xlnet-4x64-std1", lambda: _xlnet(initializer_range=1.0), "XLNet with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="XLNetLayer"),
    *_family("cvt", ("cvt-1+3", _cvt, f"CvtModel (Wu et al. 2021): convolutional token embedding, attention whose "
                                      f"q/k/v come from depthwise conv + BatchNorm (keys/values strided), CLS token in "
                                      f"the last stage, pre-LN, {_HF} (std 0.02)"),
             ("cvt-1+3-std1", lambda: _cvt(initializer_range=1.0), "CvT with initializer_range 1.0 (50×)"),
             inputs=_pixels, blocks="CvtLayer"),
    *_family("siren", ("siren-8x128", zm.siren, "SIREN (Sitzmann et al. 2020): 8 sine layers sin(30·(Wx + b)), the "
                                                "paper's init U(±√(6/n)/30): a plain net, periodic activation"),
             ("siren-8x128-bound1", lambda: zm.siren(hidden_bound=1.0),
              "SIREN with hidden weights U(±√(6/n)) (no 1/ω₀): ω₀·Wx has variance 1800·E[x²], chaotic"),
             inputs=_images),
]
CASES3 = {c.name: c for c in _CASE3_LIST}
SPLIT3: dict[str, str] = {name: HELD_OUT_3 for name in CASES3}
