"""The eighth held-out zoo of issue 18: families in none of :mod:`tools.calibration.cases`,
:mod:`tools.calibration.zoo` and the later zoos, chosen for architectural features those lack (before and without
looking at how ``check`` treats them), each as a stock model (library defaults or its paper's init) and a variant
meant to be broken: Hugging Face configs (Granite's embedding/residual/attention multipliers, DiffLlama's
differential attention, PVTv2's spatial-reduction attention with a depthwise conv in the MLP, Nemotron's
zero-centred LayerNorm1P with squared ReLU) and hand-written ones (:mod:`tools.calibration.zoo8_models`: S4D, SRU,
Xception, FractalNet).

Every case here has split ``"held-out-8"``: nobody tunes on it. It is a reserve zoo, built beside the seventh
(whose families it avoids); like the other later zoos its cases are *not* in
:data:`tools.calibration.zoo.ALL_CASES`; they are reached only through :data:`CASES8` (``python -m
tools.calibration --half held-out-8``). Labels come from :mod:`tools.calibration.label` with the rule unchanged
(``label --zoo 8``).
"""
from __future__ import annotations

from tools.calibration import zoo8_models as zm
from tools.calibration.cases import _tokens
from tools.calibration.zoo import _LM, _images, _pixels, hf
from tools.calibration.zoo2 import _family

HELD_OUT_8 = "held-out-8"
_DEC = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=64, **_LM)


# ------------------------------------------------------------------------------------------------- HF builders
_GRANITE = dict(embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.0078125, logits_scaling=8.0)


def _granite(**kw):
    return hf("GraniteForCausalLM", "GraniteConfig", **_DEC, **{**_GRANITE, **kw})


def _diffllama(**kw):
    return hf("DiffLlamaForCausalLM", "DiffLlamaConfig", **_DEC, **kw)


def _nemotron(**kw):
    return hf("NemotronForCausalLM", "NemotronConfig", head_dim=16, **_DEC, **kw)


def _pvtv2(**kw):
    return hf("PvtV2Model", "PvtV2Config", image_size=32, hidden_sizes=[16, 32, 64, 96], depths=[1, 1, 2, 1],
              num_attention_heads=[1, 2, 4, 4], sr_ratios=[8, 4, 2, 1], **kw)


# ------------------------------------------------------------------------------------------------------- cases
_HF = "stock transformers init from the config"
_CASE8_LIST = [
    *_family("granite", ("granite-4x64", _granite,
                         f"GraniteForCausalLM (IBM 2024): Llama-style pre-RMSNorm SwiGLU decoder with µP-style "
                         f"multipliers (embeddings × 12, every branch × 0.22 before its addition, attention logits × "
                         f"1/128 instead of 1/√d, logits ÷ 8), {_HF} (std 0.02)"),
             ("granite-4x64-std1-res1", lambda: _granite(initializer_range=1.0, residual_multiplier=1.0),
              "Granite with initializer_range 1.0 (50×) and the residual multiplier left out (1.0)"),
             ("granite-4x64-std1-nomult", lambda: _granite(initializer_range=1.0, residual_multiplier=1.0,
                                                           embedding_multiplier=1.0),
              "Granite with initializer_range 1.0 and the residual and embedding multipliers left out"),
             inputs=_tokens, task="lm", blocks="GraniteDecoderLayer"),
    *_family("diffllama", ("diffllama-4x64", _diffllama,
                           f"DiffLlamaForCausalLM (Ye et al. 2024, Differential Transformer): each head the "
                           f"difference of two softmax attention maps weighted by a learned, depth-dependent λ, a "
                           f"GroupNorm-style head norm × (1 − λ_init), pre-RMSNorm SwiGLU, rotary, {_HF} (std 0.02)"),
             ("diffllama-4x64-std1", lambda: _diffllama(initializer_range=1.0),
              "DiffLlama with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="DiffLlamaDecoderLayer"),
    *_family("nemotron", ("nemotron-4x64", _nemotron,
                          f"NemotronForCausalLM (NVIDIA 2024): LayerNorm1P (zero-centred γ, the norm scales by "
                          f"1 + γ), squared-ReLU MLP without gate, partial rotary, pre-norm, {_HF} (std 0.02)"),
             ("nemotron-4x64-std1", lambda: _nemotron(initializer_range=1.0),
              "Nemotron with initializer_range 1.0 (50×)"),
             inputs=_tokens, task="lm", blocks="NemotronDecoderLayer"),
    *_family("pvtv2", ("pvtv2-1+1+2+1", _pvtv2,
                       f"PvtV2Model (Wang et al. 2022): overlapping patch embeddings (strided convs + LayerNorm) at "
                       f"4 stages, spatial-reduction attention (keys/values from a strided conv of ratio 8/4/2/1 "
                       f"and a LayerNorm), a depthwise 3×3 conv inside each MLP, pre-LN, {_HF} (std 0.02, convs "
                       f"normal fan_out)"),
             ("pvtv2-1+1+2+1-std1", lambda: _pvtv2(initializer_range=1.0), "PVTv2 with initializer_range 1.0 (50×)"),
             inputs=_pixels, blocks="PvtV2BlockLayer"),
    *_family("s4d", ("s4d-lm-4x64", zm.s4d_lm,
                     "S4D LM (Gu et al. 2022): 4 post-LN blocks of a diagonal state-space convolution (S4D-Lin init: "
                     "A_n = −½ + iπn, B = 1, C ~ CN(0, 1), log Δ ~ U(log 1e-3, log 0.1), zero-order hold, causal FFT "
                     "convolution) + D skip, GELU, 1×1 conv and GLU; PyTorch defaults elsewhere"),
             ("s4d-lm-4x64-nonorm-x10", lambda: zm.s4d_lm(norm=False, out_scale=10.0),
              "the S4D LM without its post-norms and with the 1×1 output convs × 10"),
             ("s4d-lm-4x64-nonorm-x30", lambda: zm.s4d_lm(norm=False, out_scale=30.0),
              "the S4D LM without its post-norms and with the 1×1 output convs × 30"),
             inputs=_tokens, task="lm", blocks="S4DLayer"),
    *_family("sru", ("sru-lm-4x128", zm.sru_lm,
                     "stacked SRU LM (Lei et al. 2018): 4 layers of 128 simple recurrent units (elementwise "
                     "recurrence of the cell with forget/reset gates, highway connection to the input), weights "
                     "U(±√(3/d)) (variance 1/d, §3.4), v and b zero, embedding N(0, 1)"),
             ("sru-lm-4x128-std1", lambda: zm.sru_lm(weight_std=1.0), "the SRU LM with every W ~ N(0, 1)"),
             inputs=_tokens, task="lm", blocks="SRULayer"),
    *_family("xception", ("xception-32-m4", zm.xception,
                          "CIFAR Xception (Chollet 2017): depthwise-separable convs (no bias) in residual blocks, "
                          "2 entry blocks with max-pool and 1×1 strided conv + BN shortcuts, 4 middle blocks of 3 "
                          "× [ReLU → separable conv → BN] with identity shortcuts, BN, kaiming_normal_ fan_out"),
             ("xception-32-m4-nobn-x3", lambda: zm.xception(bn=False, weight_scale=3.0),
              "the same Xception with every BN an identity and every conv weight × 3"),
             inputs=_images, blocks="XceptionBlock"),
    *_family("fractalnet", ("fractalnet-3x3", zm.fractalnet,
                            "FractalNet (Larsson et al. 2017) for CIFAR: 3 fractal blocks of 3 columns (f_{C+1}(z) = "
                            "mean(f_C ∘ f_C(z), conv(z)); conv → BN → ReLU units), each followed by a 2×2 max-pool, "
                            "Xavier-uniform convs (the paper's Caffe init), no drop-path at init"),
             ("fractalnet-3x3-nobn-x0.5", lambda: zm.fractalnet(bn=False, weight_scale=0.5),
              "the same FractalNet with every BN an identity and every conv weight × 0.5"),
             ("fractalnet-3x3-nobn-x3", lambda: zm.fractalnet(bn=False, weight_scale=3.0),
              "the same FractalNet with every BN an identity and every conv weight × 3"),
             inputs=_images, blocks="FractalBlock"),
]
CASES8 = {c.name: c for c in _CASE8_LIST}
SPLIT8: dict[str, str] = {name: HELD_OUT_8 for name in CASES8}
