"""deepstart.check on bad input and unusual models: clear errors or findings, never a changed model."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from deepstart.diagnose import ModelForwardError, Report, check


@pytest.fixture(autouse=True)
def _seeded_default_init():
    """Models built with PyTorch's default init draw from the global RNG: seed it so every run is the same."""
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    yield
    torch.random.set_rng_state(state)


def small_mlp(generator, depth=3, width=16, n_in=8):
    layers, n = [], n_in
    for _ in range(depth):
        lin = nn.Linear(n, width)
        with torch.no_grad():
            lin.weight.normal_(0, math.sqrt(2 / n), generator=generator)
            lin.bias.zero_()
        layers += [lin, nn.ReLU()]
        n = width
    return nn.Sequential(*layers)


def snapshot(model):
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            {n: m.training for n, m in model.named_modules()})


def assert_unchanged(model, snap):
    state, modes = snap
    now = model.state_dict()
    assert state.keys() == now.keys()
    for k, v in state.items():
        assert torch.equal(v, now[k]), f"{k} changed"  # bitwise (NaNs compare by position below)
    assert {n: m.training for n, m in model.named_modules()} == modes
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(8, 16)
        self.broken = Broken()

    def forward(self, x):
        return self.broken(self.first(x))


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 4)

    def forward(self, x):
        raise RuntimeError("deliberately broken")


def test_forward_raises_names_module_and_shapes_and_leaves_model_unchanged(generator):
    model = Raises()
    model.broken.eval()  # mixed modes must be restored as they were
    snap = snapshot(model)
    with pytest.raises(ModelForwardError) as info:
        check(model, torch.randn(4, 8, generator=generator), generator=generator)
    text = str(info.value)
    assert "'broken'" in text and "Broken" in text and "(4, 16)" in text and "deliberately broken" in text
    assert isinstance(info.value, ValueError)
    assert_unchanged(model, snap)


def test_wrong_input_shape_says_what_the_first_layer_expects(generator):
    model = small_mlp(generator)
    with pytest.raises(ValueError, match=r"expects inputs of shape \[N, 8\]"):
        check(model, torch.randn(4, 5, generator=generator), generator=generator)
    with pytest.raises(ValueError, match=r"expects inputs of shape \[N, 8\]"):
        check(model, input_shape=(5,), generator=generator)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        check(conv, input_shape=(1, 8, 8), generator=generator)
    with pytest.raises(ValueError, match="input_shape"):
        check(conv, generator=generator)  # conv input shapes cannot be inferred


def test_no_parameters_is_an_info_finding(generator):
    report = check(nn.Sequential(nn.ReLU(), nn.Tanh()), input_shape=(5,), generator=generator)
    assert report.healthy
    assert [f.category for f in report.findings] == ["structure"]


def test_integer_inputs_embedding_model(generator):
    model = nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 16), nn.ReLU())
    tokens = torch.randint(0, 50, (4, 6), generator=generator)
    snap = snapshot(model)
    report = check(model, tokens, n_inits=3, generator=generator)
    assert "integer" not in report.inputs or "int64" in report.inputs
    assert np.all(np.isnan(report.m0))  # M_0 undefined for token ids
    assert report.jacobian is None and any("Jacobian: not applicable" in n for n in report.notes)
    assert np.all(np.isfinite(report.sq))
    assert_unchanged(model, snap)
    with pytest.raises(ValueError, match=r"integer inputs in \[0, 50\)"):
        check(model, torch.randint(50, 60, (4, 6), generator=generator), generator=generator)


def test_nan_and_inf_weights_are_findings_not_crashes(generator):
    model = small_mlp(generator)
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
        model[4].bias[1] = float("inf")
    snap = snapshot(model)
    report = check(model, input_shape=(8,), n_inits=3, generator=generator)
    bad = [f for f in report.findings if f.category == "nonfinite"]
    assert {"2.weight", "4.bias"} <= {f.layer for f in bad}
    assert not report.healthy
    state, modes = snap
    for k, v in model.state_dict().items():
        assert torch.equal(torch.nan_to_num(v), torch.nan_to_num(state[k]))
        assert torch.equal(torch.isnan(v), torch.isnan(state[k]))
    Report.from_dict(report.to_dict())  # NaNs survive the round trip


class Mystery(nn.Module):
    """A module type the theory does not know: measured as a black box."""

    def __init__(self, n):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return torch.sin(x) * self.scale


def test_unknown_elementwise_module_is_a_black_box_activation(generator):
    """Elementwise ops the theory doesn't know (here ReLU, sin and a per-unit scale) are the layer's activation,
    measured as a black box: the site is read after them and the theory says why it has no prediction."""
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), Mystery(8), nn.Linear(8, 8))
    report = check(model, input_shape=(8,), n_inits=3, generator=generator)
    first = report.sites[0]
    assert first["activation"].startswith("blackbox:") and "sin" in first["activation"]
    assert first["source"] == "input" and report.sites[1]["source"] == first["name"]
    assert any("not known to the theory" in n for n in report.notes)
    assert np.isnan(report.theory["m_pred"][0])
    assert np.all(np.isfinite(report.sq))
    gain = report.activation_gain[0]  # E φ(h)²/E h² of relu → sin → ×1 on N(0, q) pre-activations: < 1/2
    assert 0 < gain < 0.5


def test_check_never_changes_the_model(generator):
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4),
                          nn.BatchNorm1d(4))
    model[1].eval()  # mixed modes; model[5] stays in train mode and would update its running statistics
    snap = snapshot(model)
    state_rng = torch.random.get_rng_state()
    for reinit in (None, "reset", "he"):
        check(model, input_shape=(8,), n_inits=3, reinit=reinit, generator=generator)
        assert_unchanged(model, snap)
    assert torch.equal(state_rng, torch.random.get_rng_state())  # the global RNG is not touched


def test_round_trip_reproduces_verdicts(generator):
    model = small_mlp(generator, depth=12, width=16)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(0.6)
    report = check(model, input_shape=(8,), n_inits=4, generator=generator)
    assert not report.healthy
    again = Report.from_json(report.to_json())
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in report.findings]
    assert [r.to_dict() for r in again.recommend()] == [r.to_dict() for r in report.recommend()]
    assert again.stats.keys() == report.stats.keys()
    np.testing.assert_array_equal(again.sq, report.sq)


class TwoInputs(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.a = nn.Linear(8, 32)
        self.b = nn.Linear(4, 32)
        self.head = nn.Linear(32, 3)
        with torch.no_grad():
            for lin in (self.a, self.b, self.head):
                lin.weight.normal_(0, (1 / lin.in_features) ** 0.5, generator=generator)
                lin.bias.zero_()

    def forward(self, x, y=None, *, z=None):
        y = z if y is None else y
        h = torch.relu(self.a(x) + self.b(y))
        return {"logits": self.head(h), "hidden": (h,)}


def test_tuple_and_dict_inputs_and_dict_outputs(generator):
    x, y = torch.randn(4, 8, generator=generator), torch.randn(4, 4, generator=generator)
    model = TwoInputs(generator)
    by_tuple = check(model, (x, y), n_inits=3, generator=generator)
    by_dict = check(model, {"x": x, "z": y}, n_inits=3, generator=generator)
    by_call = check(model, lambda g: (torch.randn(4, 8, generator=g), torch.randn(4, 4, generator=g)),
                    n_inits=3, generator=generator)
    for r in (by_tuple, by_dict, by_call):
        assert {s["module_name"] for s in r.sites} == {"a", "b", "head"}
        assert np.all(np.isfinite(r.sq)) and np.all(r.grad > 0)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_normalization_models_say_which_mode_was_measured(generator, norm):
    layers = []
    for _ in range(6):
        layers += [nn.Linear(16, 16), nn.BatchNorm1d(16) if norm == "batch" else nn.LayerNorm(16), nn.ReLU()]
    model = nn.Sequential(*layers)
    train = check(model, input_shape=(16,), n_inits=3, generator=generator)
    model.eval()
    evald = check(model, input_shape=(16,), n_inits=3, generator=generator)
    assert train.mode == "train" and evald.mode == "eval"
    if norm == "batch":  # only batch statistics depend on the mode
        assert any("measured in train mode" in n for n in train.notes)
        assert any("measured in eval mode" in n for n in evald.notes)
    assert train.family == ("plain-bn" if norm == "batch" else "plain")
    assert all(model.training is False for model in model.modules())
    # normalization fixes the length at every norm layer: no FM1 in either mode
    assert "fm1" not in {f.category for f in train.findings}


def test_small_transformer_from_the_zoo(generator):
    from deepstart.diagnose import zoo_model

    built = zoo_model("transformer", depth=2, width=32, heads=4, seq=8)
    snap = snapshot(built.model)
    report = check(built.model, input_shape=built.input_shape, n_inits=3, generator=generator, batch_size=4)
    types = {s["module_type"] for s in report.sites}
    assert {"Linear", "LayerNorm", "MultiheadAttention"} <= types
    assert np.all(np.isfinite(report.sq))
    assert report.jacobian is not None
    assert_unchanged(built.model, snap)


class Concatenating(nn.Module):
    """Each layer reads [x, x] concatenated: no site's output feeds the next layer directly, so no link of the
    main path can be read as a length change of the net."""

    def __init__(self, depth=6, width=8):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(2 * width, width) for _ in range(depth))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(torch.cat([x, x], dim=1)))
        return x


def test_unreadable_main_path_is_not_assessed_never_healthy(generator):
    report = check(Concatenating(), input_shape=(8,), n_inits=3, generator=generator, jacobian=False)
    assert report.stats["links_read"] < 0.5 * report.links.size
    assert not report.healthy and not report.assessed and report.verdict == "NOT ASSESSED"
    assert any(f.category == "structure" and f.message.startswith("not assessed") for f in report.findings)
    assert not any(f.severity == "error" for f in report.findings)
    again = Report.from_dict(report.to_dict())
    assert again.verdict == "NOT ASSESSED"


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    hidden: tuple


class ReturnsDataclass(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return Output(self.b(h), (h,))


def test_dataclass_outputs_enter_the_loss_and_the_jacobian(generator):
    model = ReturnsDataclass()
    snap = snapshot(model)
    report = check(model, input_shape=(8,), n_inits=3, generator=generator)
    assert np.all(report.grad > 0)  # every float tensor of the dataclass entered ⟨u, output⟩
    assert report.jacobian is not None and report.jacobian["output_dim"] == 4 + 8  # logits and hidden, flattened
    assert_unchanged(model, snap)


def test_given_weights_mode_measures_the_model_as_it_is(generator):
    """n_inits=1: the given weights only; FM1 and gradients are still judged, FM2 is not available."""
    model = small_mlp(generator, depth=12, width=16)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(0.5)  # σ_w² = 0.5: M_j falls ×1/4 per layer, e^-16.6 over 12 layers
    snap = snapshot(model)
    report = check(model, input_shape=(8,), n_inits=1, generator=generator)
    assert report.sq.shape[0] == 1 and report.n_inits == 1
    assert np.isnan(report.stats["fm2_var"])  # across-init variance: not available
    cats = {f.category for f in report.findings if f.severity == "error"}
    assert "fm1" in cats and "fm2" not in cats
    assert any("given-weights mode" in n for n in report.notes)
    assert torch.equal(next(iter(snap[0].values())), next(iter(model.state_dict().values())))
    assert_unchanged(model, snap)
    healthy = check(small_mlp(generator, depth=12, width=16), input_shape=(8,), n_inits=1, generator=generator)
    assert not any(f.severity == "error" for f in healthy.findings)


def test_n_inits_below_one_is_refused_with_advice(generator):
    with pytest.raises(ValueError, match="given weights only"):
        check(small_mlp(generator), input_shape=(8,), n_inits=0, generator=generator)


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.lstm, self.head = nn.Embedding(100, 32), nn.LSTM(32, 64, 2, batch_first=True), nn.Linear(64, 5)

    def forward(self, tokens):
        h, _ = self.lstm(self.emb(tokens))
        return self.head(h[:, -1])


def test_shallow_stock_models_are_not_called_fm1(generator):
    """FM1 and vanishing gradients are rates over depth: a stock embedding–LSTM–head model (PyTorch's defaults)
    has 1 link on its main path and must not be FAILING; a deep version of the same mistake still is."""
    report = check(LSTMClassifier(), torch.randint(0, 100, (4, 10), generator=generator), n_inits=3,
                   generator=generator)
    assert report.stats["links_read"] < report.thresholds["min_links"]
    assert not any(f.severity == "error" for f in report.findings), [str(f) for f in report.findings]
    deep = small_mlp(generator, depth=12, width=16)
    with torch.no_grad():
        for m in deep:
            if isinstance(m, nn.Linear):
                m.weight.mul_(0.5)
    assert "fm1" in {f.category for f in check(deep, input_shape=(8,), n_inits=3, generator=generator).findings}
