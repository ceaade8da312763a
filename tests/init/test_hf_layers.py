"""apply_ on Hugging Face layers: Conv1D (``[in, out]`` weights), embeddings (fan_in 1, padding row) and tied weights.

The Conv1D tests run twice: with a duck-typed stand-in (no transformers needed) and, where transformers is
installed, with ``transformers.pytorch_utils.Conv1D`` and a small GPT-2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from deepstart.init import (
    InitRecord, Scheme, apply_, compute_fans, critical_, fractional_moment_, he_normal_, layout_of)
from deepstart.init.fans import is_transposed_linear
from deepstart.init.papers import critical_parameters, fractional_moment_std, orthogonal_gain

SEED = 20181128  # tests/conftest.py's seed
Z = 5.0  # Monte Carlo tolerance: this many standard errors (STYLE.md)


class Conv1D(nn.Module):
    """Stand-in for ``transformers.pytorch_utils.Conv1D``: y = x @ W + b with W ``[nx, nf]`` = ``[in, out]``."""

    def __init__(self, nf: int, nx: int, dtype=None):
        super().__init__()
        self.nf, self.nx = nf, nx
        self.weight = nn.Parameter(torch.full((nx, nf), 0.02, dtype=dtype))
        self.bias = nn.Parameter(torch.full((nf,), 0.5, dtype=dtype))

    def forward(self, x):
        return x @ self.weight + self.bias


def _hf_conv1d(nf, nx):
    pytest.importorskip("transformers")
    from transformers.pytorch_utils import Conv1D as HFConv1D

    return HFConv1D(nf, nx)


CONV1D = {"duck-typed": Conv1D, "transformers": _hf_conv1d}


def _gpt2():
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)  # transformers' own init reads the global RNG; fixed so the "before" state is fixed
    config = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=100, n_positions=32, bos_token_id=0,
                        eos_token_id=0)  # token ids inside the 100-token vocabulary (else transformers warns)
    return GPT2LMHeadModel(config)


def _assert_variance(w: torch.Tensor, var: float, what: str):
    """Sample second moment of zero-mean entries vs ``var``, within Z standard errors computed from the sample."""
    sq = w.detach().double().flatten() ** 2
    se = float(sq.std()) / math.sqrt(sq.numel())
    assert abs(float(sq.mean()) - var) < Z * se, f"{what}: mean w² {float(sq.mean()):.5g} vs {var:.5g} (SE {se:.2g})"


def _gen(seed=SEED):
    return torch.Generator().manual_seed(seed)


# --- fans and recognition -----------------------------------------------------------------------------------------

def test_new_layouts_fans():
    assert compute_fans((48, 300), "linear_transposed") == (48, 300)
    assert compute_fans((300, 48), "linear") == (48, 300)  # the same layer stored as nn.Linear
    assert compute_fans((1000, 32), "embedding") == (1, 32)
    for layout in ("linear_transposed", "embedding"):
        with pytest.raises(ValueError, match=f"layout '{layout}' needs a 2-D"):
            compute_fans((4, 4, 3), layout)


@pytest.mark.parametrize("kind", list(CONV1D))
def test_conv1d_is_recognised(kind):
    layer = CONV1D[kind](nf=30, nx=12)
    assert is_transposed_linear(layer) and layout_of(layer) == "linear_transposed"
    assert compute_fans(layer.weight, layout_of(layer)) == (12, 30)


def test_duck_typing_needs_name_nf_and_shape():
    wrong_nf = Conv1D(nf=30, nx=12)
    wrong_nf.nf = 12  # weight is [12, 30]: shape[1] != nf, so not a transposed linear
    assert layout_of(wrong_nf) == "auto"
    Other = type("Dense", (Conv1D,), {})  # same attributes, another class name
    assert layout_of(Other(nf=30, nx=12)) == "auto"
    Named = type("Conv1D", (nn.Linear,), {})  # an nn.Linear called Conv1D with nf = out_features stays [out, in]
    square = Named(8, 8)
    square.nf = 8
    assert layout_of(square) == "auto" and not is_transposed_linear(square)
    assert layout_of(nn.Embedding(5, 3)) == "embedding" and layout_of(nn.Linear(3, 5)) == "auto"


# --- Conv1D --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(CONV1D))
def test_he_on_conv1d_has_variance_two_over_in_features(kind):
    n_in, n_out = 48, 300  # far apart, so 2/out (the fans swapped) is many standard errors away
    net = nn.Sequential(CONV1D[kind](nf=n_out, nx=n_in), nn.ReLU())
    rec = apply_(net, "he", generator=_gen())
    w = net[0].weight
    assert rec.names == ("0.weight", "0.bias")
    assert rec["0.weight"].fan_in == n_in and rec["0.weight"].std == pytest.approx(math.sqrt(2 / n_in))
    _assert_variance(w, 2 / n_in, f"{kind} Conv1D weight [in={n_in}, out={n_out}]")
    sq = w.detach().double() ** 2
    assert abs(float(sq.mean()) - 2 / n_out) > 20 * float(sq.std()) / math.sqrt(sq.numel()), "fans look swapped"
    assert torch.equal(net[0].bias, torch.zeros(n_out))


SCHEMES = ["he", "lecun(uniform)", "glorot", "variance-scaling(scale=1.5, mode=fan_out)", "orthogonal(gain=1.3)",
           "delta-orthogonal", "critical(activation=tanh, q_star=1/64)", "fractional-moment(0.8)",
           "random-walk(tanh)", "residual-scaled(base=he, eta=0.5, branches='0')"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n_in, n_out", [(24, 40), (40, 24)])
def test_conv1d_is_recorded_as_the_same_layer_stored_as_linear(scheme, n_in, n_out):
    """A Conv1D and an nn.Linear with the same in/out get the same fan_in and per-entry std from every scheme."""
    conv = nn.Sequential(Conv1D(nf=n_out, nx=n_in))
    lin = nn.Sequential(nn.Linear(n_in, n_out))
    rc, rl = apply_(conv, scheme, generator=_gen()), apply_(lin, scheme, generator=_gen())
    assert (rc["0.weight"].fan_in, rc["0.weight"].std) == (rl["0.weight"].fan_in, pytest.approx(rl["0.weight"].std))
    assert rc["0.weight"].fan_in == n_in


def test_conv1d_fractional_moment_uses_out_features():
    # n_out enters the fractional-moment variance; the transposed storage must not swap it with fan_in
    a = fractional_moment_std(torch.empty(48, 300), 0.8, "relu", layout="linear_transposed")
    b = fractional_moment_std(torch.empty(300, 48), 0.8, "relu", layout="linear")
    assert a == b and a != fractional_moment_std(torch.empty(48, 300), 0.8, "relu", layout="linear")
    w = fractional_moment_(torch.empty(48, 300), 0.8, "relu", generator=_gen(), layout="linear_transposed")
    _assert_variance(w, a ** 2, "fractional-moment on [in, out]")


def test_critical_orthogonal_conv1d_preserves_the_mean_square_exactly():
    """W [in=32, out=96] × gain σ_w√(96/32) has WWᵀ = gain²·I, so mean (xW)² = σ_w²·mean x² for every x."""
    n_in, n_out = 32, 96
    assert orthogonal_gain(torch.empty(n_in, n_out), 1.0, "linear_transposed") == pytest.approx(math.sqrt(3))
    assert orthogonal_gain(torch.empty(n_out, n_in), 1.0, "linear") == pytest.approx(math.sqrt(3))
    assert orthogonal_gain(torch.empty(n_in, n_out), 1.0, "linear") == 1.0  # [out=32, in=96]: no gain needed
    w = critical_(torch.empty(n_in, n_out, dtype=torch.float64), "tanh", q_star=1 / 64, generator=_gen(),
                  layout="linear_transposed")
    sigma_w, _ = critical_parameters("tanh", q_star=1 / 64)
    x = torch.randn(5, n_in, generator=_gen(1), dtype=torch.float64)
    ratio = (x @ w).pow(2).mean(1) / x.pow(2).mean(1)
    assert torch.allclose(ratio, torch.full((5,), sigma_w ** 2, dtype=torch.float64), rtol=1e-10)


def test_pytorch_default_gives_conv1d_the_linear_law():
    n_in, n_out = 50, 400
    net = nn.Sequential(Conv1D(nf=n_out, nx=n_in))
    rec = apply_(net, "pytorch-default", generator=_gen())
    bound = 1 / math.sqrt(n_in)  # nn.Linear: kaiming_uniform_(a=√5) and bias, both U(±1/√fan_in)
    for p in (net[0].weight, net[0].bias):
        top = float(p.detach().abs().max())
        assert 0.95 * bound < top <= bound
    _assert_variance(net[0].weight, bound ** 2 / 3, "pytorch-default Conv1D")
    assert rec["0.weight"].fan_in == n_in and rec.names == ("0.weight", "0.bias")
    again = nn.Sequential(Conv1D(nf=n_out, nx=n_in))
    apply_(again, "pytorch-default", generator=_gen())
    assert torch.equal(again[0].weight, net[0].weight)


# --- embeddings ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme, var", [
    ("lecun", 1.0),                                   # fan_in 1: N(0, 1), nn.Embedding's own default
    ("he", 2.0),
    ("glorot", 2 / (1 + 32)),                         # 2/(fan_in + fan_out) with fan_out = dim
    ("variance-scaling(scale=1.0, mode=fan_out)", 1 / 32),  # Flax's default_embed_init
    ("critical(activation=relu, sigma_b=0, weights=gaussian)", 2.0),  # σ_w² / fan_in with σ_w² = 2
])
def test_embedding_variance_uses_fan_in_one(scheme, var):
    emb = nn.Embedding(400, 32)
    rec = apply_(nn.Sequential(emb), scheme, generator=_gen())
    assert rec.names == ("0.weight",) and rec["0.weight"].fan_in == 1
    assert rec["0.weight"].std == pytest.approx(math.sqrt(var))
    _assert_variance(emb.weight, var, f"{scheme} on Embedding(400, 32)")


def test_critical_orthogonal_embedding_has_the_gaussian_entry_variance():
    emb = nn.Embedding(100, 64)
    scheme = "critical(activation=tanh, q_star=1/64)"
    rec = apply_(emb, scheme, generator=_gen())
    sigma_w = rec["weight"].std  # fan_in 1
    w = emb.weight.detach().double()
    assert sigma_w == pytest.approx(critical_parameters("tanh", q_star=1 / 64)[0])
    gain2 = sigma_w ** 2 * 100  # gain σ_w·√max(100, 64): WᵀW = gain²·I (float32 table, hence atol)
    assert torch.allclose(w.T @ w / gain2, torch.eye(64, dtype=torch.float64), atol=1e-5)
    assert float(w.pow(2).mean()) == pytest.approx(sigma_w ** 2, rel=1e-5)


@pytest.mark.parametrize("scheme", ["he", "lecun", "orthogonal", "critical(activation=tanh, q_star=1/64)",
                                    "pytorch-default", "random-walk(relu)"])
@pytest.mark.parametrize("padding_idx", [0, 7, -1])
def test_padding_row_stays_zero(scheme, padding_idx):
    emb = nn.Embedding(50, 16, padding_idx=padding_idx)
    with torch.no_grad():
        emb.weight.fill_(3.0)
    rec = apply_(nn.Sequential(emb), scheme, generator=_gen())
    row = emb.padding_idx  # nn.Embedding stores a negative index as 50 + index
    assert torch.equal(emb.weight[row], torch.zeros(16))
    others = torch.cat([emb.weight[:row], emb.weight[row + 1:]])
    assert bool((others != 0).all()) and not bool((others == 3.0).any())
    assert rec["0.weight"].note == f"padding_idx={row}"


def test_embedding_without_padding_has_no_zero_row_and_no_note():
    emb = nn.Embedding(50, 16)
    rec = apply_(emb, "lecun", generator=_gen())
    assert bool((emb.weight != 0).all()) and rec["weight"].note == ""


def test_random_walk_tanh_on_an_embedding_names_the_layer():
    net = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 16), nn.Tanh())
    with pytest.raises(ValueError, match=r"'0' \(Embedding, layout 'embedding'\).*width 1.*include="):
        apply_(net, "random-walk(tanh)", generator=_gen())
    rec = apply_(net, "random-walk(tanh)", include=nn.Linear, generator=_gen())
    assert rec.names == ("1.weight", "1.bias")


# --- tied weights --------------------------------------------------------------------------------------------------

class TiedLM(nn.Module):
    """Embedding → Linear → output Linear sharing the embedding table (GPT-2's wte / lm_head)."""

    def __init__(self, vocab=60, dim=24, head_bias=False):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.mid = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab, bias=head_bias)
        self.head.weight = self.emb.weight


@dataclass(frozen=True)
class _Counting(Scheme):
    """Fills weights with 1 and logs (id, layout) of every weight it is asked to initialize."""

    name: ClassVar[str] = "counting"
    calls: list = None

    def init_weight_(self, weight, *, layout="auto", groups=1, generator=None):
        self.calls.append((id(weight), layout))
        weight.fill_(1.0)
        return 1.0


def test_tied_weight_is_initialized_once_in_the_first_owners_layout():
    model = TiedLM()
    table = model.emb.weight
    calls = []
    rec = apply_(model, _Counting(calls), generator=_gen())
    assert calls.count((id(table), "embedding")) == 1 and len(calls) == 2, calls  # emb + mid, never head
    assert model.head.weight is model.emb.weight is table
    assert rec.names == ("emb.weight", "mid.weight", "mid.bias")
    assert rec["emb.weight"].note == "tied: head.weight" and rec["emb.weight"].fan_in == 1


def test_tied_weight_is_not_redrawn_by_its_second_owner():
    tied, untied = TiedLM(), TiedLM()
    untied.head.weight = nn.Parameter(torch.zeros(60, 24))
    apply_(tied, "he", generator=_gen())
    apply_(untied, "he", include=lambda name, m: name in ("emb", "mid"), generator=_gen())
    assert torch.equal(tied.emb.weight, untied.emb.weight)  # the embedding draw (var 2), not a Linear redraw
    assert torch.equal(tied.mid.weight, untied.mid.weight)


def test_tied_weight_counts_once_and_own_bias_of_second_owner_is_initialized():
    model = TiedLM(head_bias=True)  # BERT's decoder: tied weight, own bias
    with torch.no_grad():
        model.head.bias.fill_(5.0)
    rec = apply_(model, "lecun", generator=_gen())
    assert rec.names == ("emb.weight", "mid.weight", "mid.bias", "head.bias")  # named_modules order
    assert torch.equal(model.head.bias, torch.zeros(60)) and rec["head.bias"].fan_in == 24
    rec = apply_(model, "lecun", bias=0.25, generator=_gen())
    _assert_variance(model.head.bias, 0.25 ** 2, "bias=0.25 on the tied head's own bias")
    assert rec["head.bias"].std == 0.25
    assert model.head.weight is model.emb.weight
    ids = [id(model.get_parameter(n)) for n in rec.names]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert len(list(model.named_parameters(remove_duplicate=False))) == len(rec) + 1  # head.weight is an alias


def test_shared_module_is_initialized_once_and_noted():
    shared = nn.Linear(8, 8)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    calls = []
    rec = apply_(net, _Counting(calls), generator=_gen())
    assert len(calls) == 1 and rec.names == ("0.weight", "0.bias")
    assert rec["0.weight"].note == "tied: 2.weight" and rec["0.bias"].note == "tied: 2.bias"


def test_tied_record_round_trips():
    rec = apply_(TiedLM(), "he", generator=_gen())
    assert InitRecord.from_json(rec.to_json()) == rec and "tied: head.weight" in rec.table()


# --- a real GPT-2 --------------------------------------------------------------------------------------------------

def test_gpt2_every_conv1d_and_embedding_is_initialized_with_its_fan_in():
    model = _gpt2()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rec = apply_(model, "he", generator=_gen())
    conv1d = {n: m for n, m in model.named_modules() if layout_of(m) == "linear_transposed"}
    assert len(conv1d) == 8  # c_attn, attn.c_proj, c_fc, mlp.c_proj in each of 2 blocks
    for name, m in conv1d.items():
        n_in, n_out = m.weight.shape
        assert n_out == m.nf and rec[f"{name}.weight"].fan_in == n_in
        assert not torch.equal(m.weight, before[f"{name}.weight"]), name
        _assert_variance(m.weight, 2 / n_in, f"GPT-2 {name} [in={n_in}, out={n_out}]")
        assert torch.equal(m.bias, torch.zeros(n_out))
    for name in ("transformer.wte", "transformer.wpe"):
        w = model.get_submodule(name).weight
        assert not torch.equal(w, before[f"{name}.weight"]) and rec[f"{name}.weight"].fan_in == 1
        _assert_variance(w, 2.0, f"GPT-2 {name}")
    for name, p in model.named_parameters():  # LayerNorms untouched
        if ".ln_" in name or name.startswith("transformer.ln_f"):
            assert torch.equal(p, before[name]), name


def test_gpt2_tied_head_counted_once():
    model = _gpt2()
    table = model.transformer.wte.weight
    rec = apply_(model, "he", generator=_gen())
    assert model.lm_head.weight is model.transformer.wte.weight is table
    assert "lm_head.weight" not in rec.names and rec["transformer.wte.weight"].note == "tied: lm_head.weight"
    tensors = [model.get_parameter(n) for n in rec.names]
    assert len({id(t) for t in tensors}) == len(rec) == 2 + 8 * 2  # wte, wpe, 8 Conv1D weights and biases
    out = model(torch.arange(8).unsqueeze(0)).logits
    assert out.shape == (1, 8, 100) and bool(torch.isfinite(out).all())


# --- nn.Linear unchanged -------------------------------------------------------------------------------------------

def test_plain_linear_is_unchanged():
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    ref = [torch.empty(16, 8), torch.empty(4, 16)]
    gen = _gen()
    for w in ref:  # what apply_ did before Conv1D/embedding support: he_normal_ on [out, in], in module order
        he_normal_(w, generator=gen)
    rec = apply_(net, "he", generator=_gen())
    assert torch.equal(net[0].weight, ref[0]) and torch.equal(net[2].weight, ref[1])
    assert rec.names == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert [rec["0.weight"].fan_in, rec["2.weight"].fan_in] == [8, 16]
    assert all(e.note == "" for e in rec)
