"""A labelled zoo of real models for calibrating :func:`deepstart.check`, with a hook-only ground truth.

Each :class:`Case` builds a fresh model from torch's *global* RNG (so a checker can reseed it with
``torch.manual_seed``), says which inputs to feed it, and is labelled: stock models (library defaults or a published
init) must get no error-level finding; broken ones list the finding categories at least one of which must be an error.

:func:`truth` measures, with plain forward hooks and no deepstart code, what a reader can check by hand:

* residual models (a repeated block class is found, see :func:`_blocks`): the mean squared length per unit
  ``M = ‖x‖²/d`` (per token for sequences, i.e. the mean of x²) of the stream at the input of the first block and at
  every block output, and the squared gradient norms ``G`` at the first and last block outputs under the loss
  ``<u, output>`` with a fixed Gaussian ``u`` (Hanin & Rolnick 2018, §1; Schoenholz et al. 2017 for χ₁);
* plain MLP/CNN: the same at every activation output, read as the input of each weight layer after the first.

HF models come from ``transformers`` configs (never downloaded weights), with dropout 0 and eager attention so that
a train-mode forward is deterministic; ``transformers`` is imported only by the builders that need it.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Case", "CASES", "stock", "broken", "truth"]

# deepstart.diagnose.verdicts.CATEGORIES, written out so this module does not depend on the checker's internals.
ANY_ERROR = ("fm1", "fm2", "gradients", "isometry", "dead", "nonfinite", "structure", "branches", "attention")


@dataclass(frozen=True)
class Case:
    """One labelled model: ``expect == ()`` for stock models, else the categories one of which must be an error."""

    name: str
    family: str
    build: Callable[[], nn.Module]
    inputs: Callable[[torch.Generator], object]
    expect: tuple[str, ...]
    why: str
    slow: bool = False


# ---------------------------------------------------------------------------------------------------- builders
def _encoder(depth: int, norm_first: bool, branch_scale: float = 1.0) -> nn.Module:
    """``nn.TransformerEncoder`` (d 64, 4 heads, ff 128, dropout 0); ``branch_scale`` multiplies the two branch
    output projections (``self_attn.out_proj.weight``, ``linear2.weight``) of every layer."""
    layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True,
                                       norm_first=norm_first)
    model = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
    if branch_scale != 1.0:
        with torch.no_grad():
            for lay in model.layers:
                lay.self_attn.out_proj.weight.mul_(branch_scale)
                lay.linear2.weight.mul_(branch_scale)
    return model


def _transformer() -> nn.Module:
    with warnings.catch_warnings():  # nested-tensor fast-path notices are not about init
        warnings.simplefilter("ignore", UserWarning)
        return nn.Transformer(64, 4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=128, dropout=0.0,
                              batch_first=True)


def _hf(kind: str, **config) -> nn.Module:
    """A ``transformers`` model from its config: dropout 0, eager attention, special token ids inside the vocab."""
    import transformers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # config/deprecation notices from transformers are not about init
        if kind == "gpt2":
            cfg = transformers.GPT2Config(vocab_size=1000, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
                                          attn_pdrop=0.0, bos_token_id=0, eos_token_id=0, use_cache=False, **config)
            cls = transformers.GPT2LMHeadModel
        elif kind == "bert":
            cfg = transformers.BertConfig(vocab_size=1000, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                          pad_token_id=0, **config)
            cls = transformers.BertModel
        elif kind == "vit":
            cfg = transformers.ViTConfig(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **config)
            cls = transformers.ViTModel
        else:
            cfg = transformers.LlamaConfig(vocab_size=1000, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                                           use_cache=False, **config)
            cls = transformers.LlamaModel
        cfg._attn_implementation = "eager"
        model = cls(cfg)
    return model.train()


class _BasicBlock(nn.Module):
    """He et al. 2016 BasicBlock: conv-BN-ReLU-conv-BN, plus identity or a 1×1 conv + BN projection (option B)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _CifarResNet(nn.Module):
    def __init__(self, n: int = 9, classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        stages, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            stages.append(nn.Sequential(*[_BasicBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1)
                                          for i in range(n)]))
            c_in = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, classes)
        for m in self.modules():  # torchvision's resnet init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _resnet56() -> nn.Module:
    return _CifarResNet(9)


def _he_cnn() -> nn.Module:
    layers, c_in = [], 3
    for _ in range(6):
        conv = nn.Conv2d(c_in, 32, 3, padding=1)
        nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.ReLU()]
        c_in = 32
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _mlp(depth: int, width: int, act: Callable[[], nn.Module], init: Callable[[torch.Tensor], object],
         n_in: int | None = None, n_out: int | None = None) -> nn.Sequential:
    """``depth`` Linear layers with ``act()`` between them, weights ``init(w)``, zero biases."""
    sizes = [n_in or width] + [width] * (depth - 1) + [n_out or width]
    layers = []
    for i in range(depth):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            init(lin.weight)
            lin.bias.zero_()
        layers += [lin, act()] if i < depth - 1 else [lin]
    return nn.Sequential(*layers)


def _lsuv_mlp(depth: int = 20, width: int = 128, batch: int = 256, tol: float = 0.02, t_max: int = 10) -> nn.Module:
    """LSUV (Mishkin & Matas 2016, Alg. 1): orthogonal init, then for each layer in order rescale W until the
    variance of its output on a batch (global RNG, N(0, 1)) is within ``tol`` of 1."""
    model = _mlp(depth, width, nn.ReLU, nn.init.orthogonal_, n_out=10)
    x = torch.randn(batch, width)
    with torch.no_grad():
        for module in model:
            if isinstance(module, nn.Linear):
                for _ in range(t_max):
                    var = module(x).var().item()
                    if abs(var - 1.0) < tol:
                        break
                    module.weight.div_(math.sqrt(var))
            x = module(x)
    return model


class _FunctionalReluMLP(nn.Module):
    """Linear layers with ``F.relu`` in ``forward`` (no activation modules), W ~ N(0, σ_w²/fan_in), zero bias."""

    def __init__(self, depth: int = 30, width: int = 256, weight_var: float = 0.5):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        with torch.no_grad():
            for lin in self.layers:
                lin.weight.normal_(0.0, math.sqrt(weight_var / width))
                lin.bias.zero_()

    def forward(self, x):
        for lin in self.layers[:-1]:
            x = F.relu(lin(x))
        return self.layers[-1](x)


class SigmoidGELU(nn.Module):
    """φ(x) = x·sigmoid(1.702x), the sigmoid approximation of GELU (Hendrycks & Gimpel 2016), as a custom module."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def _he(w: torch.Tensor):
    return nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")  # σ_w² = 2


def _glorot(w: torch.Tensor):
    return nn.init.xavier_normal_(w)


# ------------------------------------------------------------------------------------------------------ inputs
def _tokens(g: torch.Generator, batch: int = 4, seq: int = 16) -> dict:
    return {"input_ids": torch.randint(0, 1000, (batch, seq), generator=g)}


def _seq(g: torch.Generator) -> torch.Tensor:
    return torch.randn(4, 16, 64, generator=g)


def _images(batch: int) -> Callable[[torch.Generator], torch.Tensor]:
    return lambda g: torch.randn(batch, 3, 32, 32, generator=g)


def _vectors(width: int, batch: int = 8) -> Callable[[torch.Generator], torch.Tensor]:
    return lambda g: torch.randn(batch, width, generator=g)


# ------------------------------------------------------------------------------------------------------- cases
_PT = "PyTorch default init"
_CASE_LIST = [
    Case("pre-ln-6x64", "pre-ln", lambda: _encoder(6, True), _seq, (),
         f"nn.TransformerEncoder norm_first=True, {_PT} (Xiong et al. 2020: pre-LN trains without warm-up)"),
    Case("pre-ln-48x64", "pre-ln", lambda: _encoder(48, True), _seq, (),
         f"deep pre-LN encoder, {_PT}; its layers are deep copies of one layer (torch _get_clones), so branches add "
         "coherently: √M grows linearly, M ∝ L² (polynomial, not exponential)", slow=True),
    Case("post-ln-6x64", "post-ln", lambda: _encoder(6, False), _seq, (),
         f"nn.TransformerEncoder norm_first=False, {_PT} (Vaswani et al. 2017): every block output is normalized"),
    Case("post-ln-48x64", "post-ln", lambda: _encoder(48, False), _seq, (),
         f"deep post-LN encoder, {_PT}: M = 1 at every block output (LayerNorm); G falls toward the input "
         "polynomially (Xiong et al. 2020, Thm 1)", slow=True),
    Case("transformer-2+2x64", "transformer-other", _transformer, lambda g: (_seq(g), _seq(g)), (),
         "nn.Transformer encoder-decoder, its own xavier_uniform_ init (torch.nn.Transformer._reset_parameters)"),
    Case("gpt2-12x256", "pre-ln", lambda: _hf("gpt2", n_layer=12, n_embd=256, n_head=4), _tokens, (),
         "GPT2LMHeadModel, stock init (std 0.02, c_proj std 0.02/√(2L); Radford et al. 2019), dropout 0"),
    Case("bert-6x256", "post-ln", lambda: _hf("bert", num_hidden_layers=6, hidden_size=256, num_attention_heads=4,
                                             intermediate_size=1024), _tokens, (),
         "BertModel, stock init (std 0.02; Devlin et al. 2019), post-LN, dropout 0"),
    Case("vit-6x192", "pre-ln", lambda: _hf("vit", num_hidden_layers=6, hidden_size=192, num_attention_heads=3,
                                           intermediate_size=768, image_size=32, patch_size=4),
         lambda g: {"pixel_values": torch.randn(4, 3, 32, 32, generator=g)}, (),
         "ViTModel, stock init (truncated normal std 0.02; Dosovitskiy et al. 2021), pre-LN, dropout 0"),
    Case("llama-8x256", "pre-ln", lambda: _hf("llama", num_hidden_layers=8, hidden_size=256, num_attention_heads=4,
                                             intermediate_size=512), _tokens, (),
         "LlamaModel, stock init (std 0.02, RMSNorm pre-norm, SwiGLU; Touvron et al. 2023)"),
    Case("resnet56-cifar", "batchnorm", _resnet56, _images(4), (),
         "CIFAR ResNet-56 (He et al. 2016 §4.2, projection shortcuts where the shape changes), torchvision "
         "kaiming_normal_ fan_out init, BN in train mode", slow=True),
    Case("he-cnn-6x32", "plain", _he_cnn, _images(8), (),
         "6 conv3×3 layers, 32 channels, ReLU, kaiming_normal_ fan_in (σ_w² = 2, He et al. 2015): M constant"),
    Case("lsuv-mlp-20x128", "plain", _lsuv_mlp, _vectors(128), (),
         "20-layer ReLU MLP, LSUV init (Mishkin & Matas 2016): orthogonal, each layer's output variance set to 1"),
    Case("gpt2-6x128-std-x50", "pre-ln", lambda: _hf("gpt2", n_layer=6, n_embd=128, n_head=4, initializer_range=1.0),
         _tokens, ANY_ERROR,
         "GPT-2 with initializer_range 0.02×50: the first block adds e^7.6 × the embedding's M, saturated attention "
         "softmax (any error)"),
    Case("gpt2-6x128-std-div1e4", "pre-ln",
         lambda: _hf("gpt2", n_layer=6, n_embd=128, n_head=4, initializer_range=2e-6), _tokens, ANY_ERROR,
         "GPT-2 with initializer_range 0.02/1e4: LayerNorm inputs ~1e-6 × eps, so no norm normalizes and the "
         "output is ~0 (any error)"),
    Case("glorot-relu-mlp-50x64", "plain", lambda: _mlp(50, 64, nn.ReLU, _glorot), _vectors(64),
         ("fm1", "gradients"),
         "xavier_normal_ (σ_w² = 1, Glorot & Bengio 2010) with ReLU halves M per layer: e^-34 over 49 links "
         "(He et al. 2015 §2.2)"),
    Case("frelu-mlp-30x256", "plain", _FunctionalReluMLP, _vectors(256), ("fm1", "gradients"),
         "F.relu in forward, W ~ N(0, 0.5/fan_in): M and G shrink ×1/4 per layer, e^-39 over 28 links "
         "(σ_w²/2 = 1/4, He et al. 2015)"),
    Case("hardswish-he-mlp-30x256", "plain", lambda: _mlp(30, 256, nn.Hardswish, _he), _vectors(256),
         ("fm1", "gradients"),
         "nn.Hardswish (Howard et al. 2019) with He weights σ_w² = 2: 2·E[hardswish(h)²] ≈ q/2 for small q, "
         "measured M collapse e^-18.3 over 28 links"),
    Case("sigmoid-gelu-he-mlp-30x256", "plain", lambda: _mlp(30, 256, SigmoidGELU, _he), _vectors(256),
         ("fm1", "gradients"),
         "custom x·sigmoid(1.702x) module with He weights σ_w² = 2: φ(x) ≈ x/2 near 0, so M → M/2 per layer, "
         "measured collapse e^-12 over 28 links (e^-8 to e^-14 across inits)"),
    Case("pre-ln-12x64-branch-x10", "pre-ln", lambda: _encoder(12, True, branch_scale=10.0), _seq,
         ("fm1", "gradients", "structure", "branches"),
         "pre-LN encoder with out_proj and linear2 weights ×10 (branch variance ×100): M grows e^7.7 over 12 blocks, "
         "past the L² of the stock encoder"),
]
CASES: dict[str, Case] = {c.name: c for c in _CASE_LIST}


def stock() -> list[Case]:
    """Cases that must get no error-level finding."""
    return [c for c in CASES.values() if not c.expect]


def broken() -> list[Case]:
    """Cases that must get an error in at least one of ``case.expect``."""
    return [c for c in CASES.values() if c.expect]


# ------------------------------------------------------------------------------------------------------- truth
from tools.calibration.truth import _as_tensor, truth  # noqa: E402,F401 (re-exported)
