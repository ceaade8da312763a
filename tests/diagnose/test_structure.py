"""What ``check`` reads from the recorded graph (:mod:`deepstart.diagnose.structure`): layers, activations, widths,
residual blocks and the normalization family; that it reads them from the computation, not the weights' values; and
that odd forwards (data-dependent control flow, ModelOutput/dict outputs, token ids, in-place ops) are handled
without touching the model."""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from deepstart.diagnose import check
from tools.calibration.cases import _encoder, _FunctionalReluMLP
from deepstart.diagnose.law import infer_laws
from deepstart.diagnose.measure import as_numpy, infer_family
from deepstart.diagnose.stream import init_sources
from deepstart.experiments.models import resnet

SEED = 1234  # every generator and torch.manual_seed below; reports are deterministic


def _gen(offset: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(SEED + offset)


def _hf(kind: str, **config) -> nn.Module:
    pytest.importorskip("transformers")
    from tools.calibration.cases import _hf as build

    torch.manual_seed(SEED)
    return build(kind, **config)


def _tokens(batch: int = 3, seq: int = 12) -> dict:
    return {"input_ids": torch.randint(0, 1000, (batch, seq), generator=_gen(7))}


def _sites(report, kind=None) -> list:
    return [s for s in report.sites if kind is None or s["kind"] == kind]


# ------------------------------------------------------------------------------------------------ (a) F.relu
class _ReluEverywhere(nn.Module):
    """Linear layers, each followed by ``F.relu`` written in ``forward`` (no activation modules, no head)."""

    def __init__(self, depth: int = 8, width: int = 64):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        for lin in self.layers:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)

    def forward(self, x):
        for lin in self.layers:
            x = F.relu(lin(x))
        return x


def test_functional_relu_mlp_every_link_read_and_relu_on_every_layer():
    torch.manual_seed(SEED)
    model = _ReluEverywhere()
    report = check(model, torch.randn(8, 64, generator=_gen()), n_inits=3, generator=_gen(1), jacobian=False)
    layers = _sites(report, "layer")
    assert [s["name"] for s in layers] == [f"layers.{i}" for i in range(8)]
    assert all(s["main"] for s in report.sites)
    assert [s["activation"] for s in layers] == ["relu"] * 8
    assert report.links.size == 8 and report.stats["links_read"] == report.links.size
    assert [s["source"] for s in layers] == ["input"] + [f"layers.{i}" for i in range(7)]


def test_functional_relu_mlp_with_linear_head_reads_every_hidden_link():
    """The calibration zoo's F.relu MLP ends in a linear head; FM1 is a rate per hidden layer, so the head's link is
    left out by design (verdicts.chain_links) and every other link is read."""
    torch.manual_seed(SEED)
    model = _FunctionalReluMLP(depth=10, width=64, weight_var=2.0)
    report = check(model, torch.randn(8, 64, generator=_gen()), n_inits=3, generator=_gen(1), jacobian=False)
    layers = _sites(report, "layer")
    assert [s["activation"] for s in layers] == ["relu"] * 9 + [None]
    links = report.links
    assert links.size == 10 and links[:-1].all() and not links[-1]
    assert report.stats["links_read"] == links.size - 1


# -------------------------------------------------------------------------------------- (b) black-box activations
class _Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


def _one_hidden(act: nn.Module, width: int = 256) -> nn.Module:
    """Linear(width, width) with W ~ N(0, 1/width), zero bias, then ``act``, then a linear read-out."""
    first, head = nn.Linear(width, width), nn.Linear(width, 10)
    nn.init.normal_(first.weight, 0.0, 1.0 / math.sqrt(width))
    nn.init.zeros_(first.bias)
    return nn.Sequential(first, act, head)


class _Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


@pytest.mark.parametrize("act, phi, label", [
    (_Sine, torch.sin, "blackbox:_Sine"),
    (_Swish, lambda z: z * torch.sigmoid(z), "blackbox:_Swish"),
], ids=["sine", "x-sigmoid-x"])
def test_blackbox_activation_gain_matches_monte_carlo(act, phi, label):
    """Inputs with M(x) = 1 exactly and W ~ N(0, 1/n) make every pre-activation h ~ N(0, 1) given x, so the measured
    gain E φ(h)²/E h² must equal E φ(Z)² for Z ~ N(0, 1)."""
    width, batch, n_inits = 256, 16, 16
    x = torch.randn(batch, width, generator=_gen())
    x = x / x.pow(2).mean(1, keepdim=True).sqrt()  # M(x_b) = 1 for every input

    def build():
        return _one_hidden(act(), width)

    torch.manual_seed(SEED)
    report = check(build(), x, n_inits=n_inits, factory=build, generator=_gen(1), jacobian=False)
    first = report.sites[0]
    assert first["kind"] == "layer" and first["activation"].startswith("blackbox:"), first["activation"]
    assert first["activation"] == label
    gain = report.activation_gain[0]
    assert np.isfinite(gain)
    # the report's gain is the mean over inits of the ratio of batch means of M after / M before the activation
    per_init = report.sq[:, :, 0].mean(1) / report.pre_sq[:, :, 0].mean(1)
    assert gain == pytest.approx(per_init.mean(), rel=1e-12)
    se_check = per_init.std(ddof=1) / math.sqrt(n_inits)
    # direct Monte Carlo of E φ(Z)² / E Z², delta-method SE of the ratio of means
    z = torch.randn(2_000_000, generator=_gen(2), dtype=torch.float64)
    a, b = phi(z).pow(2), z.pow(2)
    ma, mb = a.mean().item(), b.mean().item()
    cov = torch.cov(torch.stack([a, b])).numpy() / z.numel()
    r = ma / mb
    se_mc = math.sqrt(cov[0, 0] / mb**2 - 2 * r * cov[0, 1] / mb**2 + r**2 * cov[1, 1] / mb**2)
    tol = 5 * math.hypot(se_check, se_mc)
    assert abs(gain - r) < tol, f"measured {gain:.5f} vs Monte Carlo {r:.5f} (tolerance 5 SE = {tol:.2g}, seed {SEED})"


# --------------------------------------------------------------------------------------------- (c) families
def test_gpt2_block_widths_are_n_embd_and_family_pre_ln():
    n_layer, n_embd, seq = 3, 32, 12  # seq ≠ n_embd so a width read off the wrong axis shows
    model = _hf("gpt2", n_layer=n_layer, n_embd=n_embd, n_head=4)
    report = check(model, _tokens(seq=seq), n_inits=2, generator=_gen(1), jacobian=False)
    assert report.family == "pre-ln"
    blocks = _sites(report, "block")
    assert len(blocks) == 2 * n_layer
    assert all(b["main"] for b in blocks)
    assert [b["width"] for b in blocks] == [n_embd] * (2 * n_layer)
    assert [s["width"] for s in _sites(report, "norm")] == [n_embd] * (2 * n_layer + 1)  # ln_1, ln_2, ln_f
    assert sum(b["attention"] for b in blocks) == n_layer  # every other block is an attention branch


def test_gpt2_mlp_activation_is_read():
    model = _hf("gpt2", n_layer=1, n_embd=32, n_head=4)
    report = check(model, _tokens(), n_inits=2, generator=_gen(1), jacobian=False)
    c_fc = next(s for s in report.sites if s["name"].endswith("mlp.c_fc"))
    assert c_fc["activation"] is not None  # GPT-2's gelu_new (NewGELUActivation)


def test_gpt2_sites_keep_per_input_lengths():
    model = _hf("gpt2", n_layer=1, n_embd=32, n_head=4)
    report = check(model, _tokens(batch=3), n_inits=2, generator=_gen(1), jacobian=False)
    same = [s["name"] for j, s in enumerate(report.sites)
            if s["name"] != "transformer.wpe" and np.ptp(report.sq[0, :, j]) == 0]  # wpe: no batch axis, by design
    assert not same, f"sites with one length for all inputs: {same}"


def test_bert_is_post_ln():
    model = _hf("bert", num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64)
    report = check(model, _tokens(), n_inits=2, generator=_gen(1), jacobian=False)
    assert report.family == "post-ln"
    assert len(_sites(report, "block")) == 4
    assert [b["width"] for b in _sites(report, "block")] == [32] * 4


@pytest.mark.parametrize("norm_first, family", [(True, "pre-ln"), (False, "post-ln")])
def test_transformer_encoder_norm_first(norm_first, family):
    torch.manual_seed(SEED)
    model = _encoder(3, norm_first)
    report = check(model, torch.randn(3, 12, 64, generator=_gen()), n_inits=2, generator=_gen(1), jacobian=False)
    assert report.family == family
    assert [b["width"] for b in _sites(report, "block")] == [64] * 6


def test_conv_bn_relu_is_plain_bn():
    torch.manual_seed(SEED)
    layers, c = [], 3
    for _ in range(3):
        layers += [nn.Conv2d(c, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
        c = 8
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    report = check(model, torch.randn(4, 3, 8, 8, generator=_gen()), n_inits=2, generator=_gen(1), jacobian=False)
    assert report.family == "plain-bn"
    assert not _sites(report, "block")
    assert [s["norm"] for s in _sites(report, "norm")] == ["batch_norm"] * 3
    assert [s["width"] for s in _sites(report, "norm")] == [8] * 3  # channels, not H or W


@pytest.mark.parametrize("kind, shape", [("mlp", (8, 16)), ("conv", (4, 3, 8, 8))])
def test_hanin_rolnick_resnet_is_residual_with_its_eta(kind, shape):
    etas = [0.5, 0.25, 0.125, 1 / 16]
    model = resnet(shape[1], 10, depth=4, width=16, eta=etas, kind=kind, generator=_gen())
    report = check(model, torch.randn(*shape, generator=_gen(1)), n_inits=2, generator=_gen(2), jacobian=False)
    assert report.family == "residual"
    blocks = _sites(report, "block")
    assert [b["module_name"] for b in blocks] == ["1", "2", "3", "4"]
    assert [b["eta"] for b in blocks] == pytest.approx(etas, rel=1e-5)  # least squares on float32 tensors


def test_norm_then_dropout_before_a_block_stays_on_the_main_path():
    from deepstart.nn import ScaledResidual

    torch.manual_seed(SEED)
    branch = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
    model = nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16), nn.Dropout(0.0), ScaledResidual(branch, 0.5),
                          nn.Linear(16, 4))
    report = check(model, torch.randn(8, 16, generator=_gen()), n_inits=2, generator=_gen(1), jacobian=False)
    norm = _sites(report, "norm")[0]
    assert norm["main"] and norm["parent"] is None


# ------------------------------------------------------------------------------------- (d) scale invariance
def test_gpt2_structure_does_not_depend_on_weight_scale():
    def structure(initializer_range):
        model = _hf("gpt2", n_layer=2, n_embd=32, n_head=4, initializer_range=initializer_range)
        report = check(model, _tokens(), n_inits=2, generator=_gen(1), jacobian=False)
        return report.family, [(s["name"], s["kind"], s["main"], s["parent"], s["source"], s["activation"],
                                s["width"], s["attention"]) for s in report.sites]

    stock, tiny = structure(0.02), structure(1e-4)
    assert stock == tiny
    assert sum(1 for s in stock[1] if s[1] == "block") == 4


# ------------------------------------------------------------------------------ (e) resample keeps clones equal
def test_resample_keeps_cloned_encoder_layers_equal_within_each_init():
    torch.manual_seed(SEED)
    depth, n_inits = 3, 4
    model = _encoder(depth, True)  # nn.TransformerEncoder deep-copies one layer: all layers start equal
    given = {k: as_numpy(v) for k, v in model.named_parameters()}
    families = {k: infer_family(a) for k, a in given.items()}
    laws = infer_laws(model, {k: a[None] for k, a in given.items()}, families)
    _, source = init_sources(model, n_inits, "resample", None, _gen(), families, laws)
    inits = list(source)
    assert len(inits) == n_inits
    suffixes = [k[len("layers.0."):] for k in given if k.startswith("layers.0.")]
    for i, params in enumerate(inits):
        for k in range(1, depth):
            for s in suffixes:
                assert torch.equal(params[f"layers.0.{s}"], params[f"layers.{k}.{s}"]), (i, k, s)
    random = [s for s in suffixes if families[f"layers.0.{s}"] in ("normal", "uniform")]
    assert "linear1.weight" in random and "self_attn.in_proj_weight" in random
    for i, j in itertools.combinations(range(n_inits), 2):
        for s in random:
            assert not torch.equal(inits[i][f"layers.0.{s}"], inits[j][f"layers.0.{s}"]), (i, j, s)
    for s in suffixes:  # init 0 is the model as given
        assert torch.equal(inits[0][f"layers.0.{s}"], dict(model.named_parameters())[f"layers.0.{s}"])


# ------------------------------------------------------------------------------------ (f) control flow
class _SignBranch(nn.Module):
    """The op sequence depends on the sign of an intermediate sum: one more layer and a ReLU when it is positive."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x):
        y = self.fc1(x)
        if y.sum() > 0:
            y = F.relu(self.fc2(y))
        return self.out(y)


def _snapshot(model):
    return ({k: v.detach().clone() for k, v in model.state_dict().items()}, torch.get_rng_state(),
            [m.training for m in model.modules()])


def _assert_unchanged(model, snap):
    state, rng, modes = snap
    now = model.state_dict()
    assert state.keys() == now.keys()
    for k, v in state.items():
        assert v.dtype == now[k].dtype and torch.equal(v, now[k]), f"{k} changed"
    assert torch.equal(rng, torch.get_rng_state()), "the global RNG state changed"
    assert modes == [m.training for m in model.modules()], "train/eval modes changed"


def test_inits_with_other_control_flow_are_left_out_with_a_note():
    """12 resampled inits: the sign of the sum flips for some (p = 1 − 2^-11 that one does). Those inits ran other
    ops than the recorded forward, so their sites cannot be matched: they are left out, the note says how many and
    which op differed, the report counts the inits measured, and the model is untouched (was: ControlFlowError)."""
    torch.manual_seed(SEED)
    model = _SignBranch()
    snap = _snapshot(model)
    report = check(model, torch.randn(8, 16, generator=_gen()), n_inits=12, generator=_gen(1), jacobian=False)
    note = next(n for n in report.notes if n.startswith("control flow depends on the weights"))
    left_out = int(note.split(": ", 1)[1].split(" of ")[0])
    assert 1 <= left_out < 12 and f"{left_out} of 12 inits" in note and "initialization" in note and "reinit=" in note
    assert report.n_inits == 12 - left_out == report.sq.shape[0]
    _assert_unchanged(model, snap)


def test_a_factory_flipping_the_control_flow_leaves_one_init_measured():
    """A factory returning one fixed model with fc1 negated on every other call flips the sign of the sum, and so
    the op sequence, between init 0 and init 1 deterministically: init 1 is left out, init 0 (the weights as given)
    is measured, and the note says the spread across inits is not measured."""
    torch.manual_seed(SEED)
    base = _SignBranch()
    calls = itertools.count()

    def factory():
        model = copy.deepcopy(base)
        if next(calls) % 2:
            with torch.no_grad():
                model.fc1.weight.neg_()
                model.fc1.bias.neg_()
        return model

    model = factory()
    report = check(model, torch.randn(8, 16, generator=_gen()), n_inits=2, factory=factory, generator=_gen(1),
                   jacobian=False)
    note = next(n for n in report.notes if n.startswith("control flow depends on the weights"))
    assert "1 of 2 inits" in note and "FM2" in note and report.n_inits == 1


# ------------------------------------------------------------------------ (g) odd forwards, model untouched
class _DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x):
        h = F.relu(self.fc(x))
        return {"logits": self.head(h), "features": h, "n": 3}


class _Tokens(nn.Module):
    """Embedding front: integer inputs."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.fc, self.head = nn.Linear(32, 32), nn.Linear(32, 4)

    def forward(self, ids):
        return self.head(F.relu(self.fc(self.embed(ids))))


class _InplaceResidual(nn.Module):
    """torchvision's BasicBlock pattern: ``out += identity`` on the stream, then ``nn.ReLU(inplace=True)``.
    (A literal ``h += fc(h)`` cannot backpropagate in PyTorch at all: fc saved h for its weight gradient.)"""

    def __init__(self, depth: int = 3, width: int = 16):
        super().__init__()
        self.stem, self.head = nn.Linear(width, width), nn.Linear(width, 4)
        self.fcs = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.relu(self.stem(x))
        for fc in self.fcs:
            out = fc(h)
            out += h
            h = self.relu(out)
        return self.head(h)


class _InplaceBranch(nn.Module):
    """``x += f(x)`` on a stream that no weight op saved: the branch reads a scaled copy of the stream."""

    def __init__(self, depth: int = 3, width: int = 16):
        super().__init__()
        self.stem, self.head = nn.Linear(width, width), nn.Linear(width, 4)
        self.fcs = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        h = self.stem(x)
        for fc in self.fcs:
            h += fc(0.5 * h)
        return self.head(h)


def _bn_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


_ODD = {
    "dict-output": (_DictOut, lambda: torch.randn(8, 16, generator=_gen())),
    "token-ids": (_Tokens, lambda: torch.randint(0, 100, (4, 7), generator=_gen())),
    "inplace-add-relu": (_InplaceResidual, lambda: torch.randn(8, 16, generator=_gen())),
    "inplace-stream": (_InplaceBranch, lambda: torch.randn(8, 16, generator=_gen())),
    "batchnorm-train": (_bn_net, lambda: torch.randn(4, 3, 6, 6, generator=_gen())),
}


@pytest.mark.parametrize("name", list(_ODD))
@pytest.mark.parametrize("jacobian", [False, True], ids=["no-jac", "jac"])
def test_odd_forwards_run_and_leave_the_model_unchanged(name, jacobian):
    build, inputs = _ODD[name]
    torch.manual_seed(SEED)
    model = build()
    x = inputs()
    x0 = x.clone()
    snap = _snapshot(model)
    report = check(model, x, n_inits=3, generator=_gen(1), jacobian=jacobian)
    _assert_unchanged(model, snap)
    assert torch.equal(x, x0), "the input tensor was modified"
    assert report.sites and np.isfinite(report.sq).all() and np.isfinite(report.grad).all()
    if name.startswith("inplace"):
        blocks = _sites(report, "block")
        assert len(blocks) == 3 and report.family == "residual"


def test_token_ids_notes_and_lengths_start_at_the_embedding():
    torch.manual_seed(SEED)
    model = _Tokens()
    report = check(model, torch.randint(0, 100, (4, 7), generator=_gen()), n_inits=3, generator=_gen(1))
    assert np.isnan(report.m0).all()
    assert report.jacobian is None
    assert any("Jacobian is not defined" in n and "embedding output" in n for n in report.notes), report.notes
    first = report.main_sites[0]
    assert first["module_name"] == "embed" and first["kind"] == "layer" and first["width"] == 32


def test_gpt2_model_output_runs_and_leaves_the_model_unchanged():
    model = _hf("gpt2", n_layer=2, n_embd=32, n_head=4)
    ids = _tokens()
    snap = _snapshot(model)
    out = model(**ids)
    assert not isinstance(out, (torch.Tensor, tuple)) and "logits" in out  # a transformers ModelOutput
    report = check(model, ids, n_inits=3, generator=_gen(1))
    _assert_unchanged(model, snap)
    assert np.isfinite(report.sq).all() and np.isfinite(report.grad).all()
    assert any("Jacobian is not defined" in n for n in report.notes)
    assert report.main_sites[0]["module_type"] == "Embedding"


@pytest.mark.parametrize("module, spec", [
    (nn.GELU(approximate="tanh"), "gelu_tanh"), (nn.Mish(), "mish"), (nn.Hardswish(), "hardswish"),
    (nn.Hardsigmoid(), "hardsigmoid"), (nn.ReLU6(), "hard_tanh(min_val=0.0, max_val=6.0)"),
    (nn.CELU(0.5), "celu(alpha=0.5)"), (nn.Softsign(), "softsign"), (nn.LogSigmoid(), "logsigmoid"),
    (nn.Tanhshrink(), "tanhshrink"), (nn.Softshrink(0.3), "softshrink(lambd=0.3)"),
    (nn.Hardshrink(0.2), "hardshrink(lambd=0.2)"), (nn.Threshold(0.1, 0.0), "threshold(threshold=0.1, value=0.0)"),
    (nn.Hardtanh(-2.0, 2.0), "hard_tanh(min_val=-2.0, max_val=2.0)"),
    (nn.RReLU(), "rrelu_train(lower=0.125, upper=0.3333333333333333)"), (nn.PReLU(init=0.3), "prelu(init=0.3)"),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_torch_activations_map_to_the_theory_and_predict_the_first_layer(module, spec):
    """Every elementwise activation of torch.nn is read as its theory activation (issue 11), and the mean-field
    prediction of the first hidden layer's E M_1 = E φ(√q z)², q = σ_w² M_0, matches the measurement within 5 SE."""
    from deepstart.theory import get_activation, q_map

    width, n_inits = 256, 16
    x = torch.randn(16, width, generator=_gen())
    x = x / x.pow(2).mean(1, keepdim=True).sqrt()

    def build():
        return _one_hidden(module, width)

    torch.manual_seed(SEED)
    report = check(build(), x, n_inits=n_inits, factory=build, generator=_gen(1), jacobian=False)
    first = report.sites[0]
    assert first["activation"] == spec
    q = first["sigma_w"] ** 2 + first["sigma_b"] ** 2  # M_0 = 1 exactly
    predicted = float(q_map(get_activation(spec), q, 1.0, 0.0))
    per_init = report.sq[:, :, 0].mean(1)
    se = per_init.std(ddof=1) / math.sqrt(n_inits)
    assert abs(per_init.mean() - predicted) < 5 * se + 1e-3 * predicted, (per_init.mean(), predicted, se)
