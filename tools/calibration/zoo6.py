"""The sixth held-out zoo of issue 18: hand-written families that are in none of :mod:`tools.calibration.cases`,
:mod:`tools.calibration.zoo` and the later zoos ``zoo2.py`` … ``zoo5.py``, chosen for architectural features those
lack (before and without looking at how ``check`` treats them), each as a stock model (its paper's init, or
PyTorch's defaults where the paper states none) and one or two variants meant to be broken.

Every case here has split ``"held-out-6"``: nobody tunes on it. It exists to score, once, the fixes made after the
fifth held-out zoo was seen. Like the other later zoos its cases are *not* in :data:`tools.calibration.zoo.ALL_CASES`;
they are reached only through :data:`CASES6` (``python -m tools.calibration --half held-out-6``). Labels come from
:mod:`tools.calibration.label` with the rule unchanged (``label --zoo 6``).
"""
from __future__ import annotations

from tools.calibration import zoo6_mlp_models as mm
from tools.calibration import zoo6_models as vm
from tools.calibration import zoo6_seq_models as sm
from tools.calibration.cases import _tokens
from tools.calibration.zoo import _images
from tools.calibration.zoo2 import _family

HELD_OUT_6 = "held-out-6"

_CASE6_LIST = [
    *_family("wavenet", ("wavenet-lm-8x32", sm.wavenet,
                         "WaveNet LM (van den Oord et al. 2016): dilated causal conv1d (kernel 2, dilations 1-8 twice) "
                         "with gated tanh·sigmoid units, residual and skip 1×1 convs, skips summed into a ReLU-conv "
                         "output stack, no normalization, PyTorch default init (the paper states none)"),
             ("wavenet-lm-8x32-std1", lambda: sm.wavenet(weight_std=1.0),
              "the same WaveNet with every conv weight N(0, 1) (nn.init.normal_ without a std)"),
             inputs=_tokens, task="lm", blocks="WaveNetLayer"),
    *_family("gmlp", ("gmlp-6x64", mm.gmlp,
                      "gMLP (Liu et al. 2021): pre-LN blocks whose spatial gating unit splits the channels, normalizes "
                      "one half and mixes it across tokens with W ≈ 0, b = 1 (identity gate at init), timm init"),
             ("gmlp-6x64-std1", lambda: mm.gmlp(weight_std=1.0),
              "gMLP with every channel linear N(0, 1) (≈ √fan_in × too large)"),
             inputs=_images, blocks="GMLPBlock"),
    *_family("resmlp", ("resmlp-8x64", mm.resmlp,
                        "ResMLP (Touvron et al. 2022): Affine (α ⊙ x + β, no statistics) instead of a norm, "
                        "cross-patch linear and channel MLP branches × layer scale 0.1, linears N(0, 0.02²)"),
             ("resmlp-8x64-ls1-he", lambda: mm.resmlp(init_values=1.0, he=True),
              "ResMLP without layer scale (1.0) and with He-initialized linears: nothing normalizes the stream"),
             inputs=_images, blocks="ResMLPBlock"),
    *_family("convmixer", ("convmixer-64x6", vm.convmixer,
                           "ConvMixer-64/6 (Trockman & Kolter 2022): patch conv, then a residual depthwise 5×5 conv "
                           "and a pointwise conv per layer (GELU, then BN), PyTorch default init"),
             ("convmixer-64x6-nobn", lambda: vm.convmixer(bn=False),
              "the same ConvMixer with every BN an identity, PyTorch's default convs (σ_w² = 1/(3·fan_in))"),
             ("convmixer-64x6-nobn-x4", lambda: vm.convmixer(bn=False, weight_scale=4.0),
              "the same ConvMixer without BN, every conv weight × 4"),
             inputs=_images, blocks="ConvMixerLayer"),
    *_family("shufflenetv2", ("shufflenetv2-2+3+2", vm.shufflenet_v2,
                              "ShuffleNetV2 0.5× (Ma et al. 2018) for CIFAR: channel split, a 1×1 → depthwise 3×3 → "
                              "1×1 branch on one half, concatenation, channel shuffle; BN, torchvision (default) init"),
             ("shufflenetv2-2+3+2-nobn", lambda: vm.shufflenet_v2(bn=False),
              "the same ShuffleNetV2 with every BN an identity at PyTorch's default conv init"),
             ("shufflenetv2-2+3+2-nobn-x3", lambda: vm.shufflenet_v2(bn=False, weight_scale=3.0),
              "the same ShuffleNetV2 without BN, every conv weight × 3"),
             inputs=_images, blocks="ShuffleUnit"),
    *_family("resnext", ("resnext-3x2-8x4d", vm.resnext,
                         "ResNeXt (Xie et al. 2017) for CIFAR: bottlenecks with grouped 3×3 convs (cardinality 8), "
                         "BN, projection shortcuts, torchvision init (kaiming_normal_ fan_out)"),
             ("resnext-3x2-8x4d-nobn-x2", lambda: vm.resnext(bn=False, weight_scale=2.0),
              "the same ResNeXt with every BN an identity and every conv weight × 2"),
             inputs=_images, blocks="ResNeXtBottleneck"),
    *_family("nf-resnet", ("nf-resnet-3x4", vm.nf_resnet,
                           "NF-ResNet (Brock et al. 2021a): no normalization; scaled weight standardization with a "
                           "gain, γ-scaled ReLU, h + α·f(h/β) with α = 0.2 and β the predicted std, variance reset at "
                           "transitions"),
             ("nf-resnet-3x4-a1-unscaled", lambda: vm.nf_resnet(alpha=1.0, scaled=False),
              "the same NF-ResNet with α = 1 and β = 1 (the paper's residual scaling left out)"),
             inputs=_images, blocks="NFBlock"),
    *_family("rezero", ("rezero-lm-6x64", sm.rezero_lm,
                        "ReZero causal transformer LM (Bachlechner et al. 2020): x + α·F(x) with one scalar α = 0 "
                        "per layer, no LayerNorm, PyTorch default init"),
             ("rezero-lm-6x64-a1-he", lambda: sm.rezero_lm(alpha=1.0, he_ffn=True),
              "the ReZero LM with α initialized to 1 and He-initialized FFNs (no norm holds the stream)"),
             inputs=_tokens, task="lm", blocks="ReZeroLayer"),
    *_family("t-fixup", ("tfixup-lm-12x64", sm.tfixup_lm,
                         "T-Fixup causal transformer LM (Huang et al. 2020): no LayerNorm, Xavier linears, embedding "
                         "N(0, d^-1/2), v/o/FFN weights and embedding × (9M)^-1/4, 12 layers"),
             ("tfixup-lm-12x64-unscaled", lambda: sm.tfixup_lm(scaled=False),
              "the T-Fixup LM without the (9M)^-1/4 scaling: Xavier linears, no norm"),
             inputs=_tokens, task="lm", blocks="TFixupLayer"),
    *_family("selu-mlp", ("selu-mlp-16x256", mm.selu_mlp,
                          "self-normalizing network (Klambauer et al. 2017) on flattened CIFAR: 16 SELU layers of 256, "
                          "LeCun normal init (σ_w² = 1/fan_in), biases 0"),
             ("selu-mlp-16x256-default", lambda: mm.selu_mlp(default_init=True),
              "the same SELU MLP at PyTorch's default Linear init (σ_w² = 1/(3·fan_in))"),
             ("selu-mlp-16x256-x2", lambda: mm.selu_mlp(std_scale=2.0),
              "the same SELU MLP with weights N(0, 4/fan_in) (2 × LeCun's std)"),
             inputs=_images),
    *_family("weightnorm", ("weightnorm-cnn-12x16", mm.weightnorm_cnn,
                            "plain 12-layer ReLU CNN with weight normalization (Salimans & Kingma 2016): w = g·v/‖v‖, "
                            "v ~ N(0, 0.05²), the paper's data-dependent init of g and b on a fixed batch"),
             ("weightnorm-cnn-12x16-g1", lambda: mm.weightnorm_cnn(data_init=False),
              "the same weight-normed CNN with g = 1, b = 0 (unit-norm filters, no data-dependent init)"),
             inputs=_images),
    *_family("lstm-projection", ("lstmp-lm-3x128p64", sm.lstmp_lm,
                                 "stacked LSTM with projections (Sak et al. 2014, LSTMP): nn.LSTM(proj_size=64), 3 "
                                 "layers of 128 cells, PyTorch default init U(±1/√128)"),
             ("lstmp-lm-3x128p64-std1", lambda: sm.lstmp_lm(weight_std=1.0),
              "the same LSTMP LM with every recurrent weight N(0, 1) (saturated gates)"),
             inputs=_tokens, task="lm"),
    # added after the first 27 were labelled (6 disputed), before any check run on this zoo
    *_family("mobilenet-v1", ("mobilenet-v1-0.5x", vm.mobilenet_v1,
                              "MobileNetV1 at width 0.5 (Howard et al. 2017) for CIFAR: 9 depthwise separable layers "
                              "(depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU), no residual, PyTorch defaults"),
             ("mobilenet-v1-0.5x-nobn", lambda: vm.mobilenet_v1(bn=False),
              "the same MobileNetV1 with every BN an identity at PyTorch's default conv init"),
             inputs=_images, blocks="DepthwiseSeparable"),
    *_family("res2net", ("res2net-3x2-4s", vm.res2net,
                         "Res2Net (Gao et al. 2021) for CIFAR: bottlenecks whose 3×3 stage is split into 4 groups "
                         "chained by hierarchical residual-like connections, BN, kaiming_normal_ fan_out"),
             ("res2net-3x2-4s-nobn-x2", lambda: vm.res2net(bn=False, weight_scale=2.0),
              "the same Res2Net with every BN an identity and every conv weight × 2"),
             inputs=_images, blocks="Res2NetBottleneck"),
    *_family("ghostnet", ("ghostnet-8", vm.ghostnet,
                          "GhostNet (Han et al. 2020) for CIFAR: ghost modules (a primary 1×1 conv and a cheap "
                          "depthwise 3×3 conv on its output, concatenated) in residual bottlenecks, BN, PyTorch "
                          "defaults"),
             ("ghostnet-8-nobn-x3", lambda: vm.ghostnet(bn=False, weight_scale=3.0),
              "the same GhostNet with every BN an identity and every conv weight × 3"),
             inputs=_images, blocks="GhostBottleneck"),
    *_family("normformer", ("normformer-lm-6x64", sm.normformer_lm,
                            "NormFormer causal LM (Shleifer et al. 2021): pre-LN plus a LayerNorm after attention and "
                            "after the FFN activation, learned per-head scales, fairseq init"),
             ("normformer-lm-6x64-std1", lambda: sm.normformer_lm(weight_std=1.0),
              "NormFormer with every linear weight in the layers N(0, 1)"),
             inputs=_tokens, task="lm", blocks="NormFormerLayer"),
]
CASES6 = {c.name: c for c in _CASE6_LIST}
SPLIT6: dict[str, str] = {name: HELD_OUT_6 for name in CASES6}
