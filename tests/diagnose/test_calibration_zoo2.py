"""The later held-out zoos (tools/calibration/zoo2.py, zoo3.py, …; tools/calibration/zoos.py), without ``check``:
every case builds, reproduces, runs forward on its inputs and has a stored label of split "held-out-N", in
families of no other zoo; the labelling machinery the second needed (truth per call of a
shared block, bidirectional recurrent layers, the audio task, merging labels) does what it says."""
from __future__ import annotations

import json

import pytest
import torch

from test_calibration_zoo import _assert_causal, _build, _built_reproducibly

from tools.calibration import label as labelling
from tools.calibration import zoos
from tools.calibration import truth as hook_truth
from tools.calibration.cases import CASES, _as_tensor
from tools.calibration.zoo import ALL_CASES, NEW_CASES
from tools.calibration.zoo2 import CASES2
from tools.calibration.zoo3 import CASES3
from tools.calibration.zoo4 import CASES4

ZOOS = {zoos.split_of(n): zoos.cases(n) for n in zoos.numbers()}
LATER = zoos.all_cases()


def _stored() -> dict:
    return json.loads(labelling.LABELS.read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("name", sorted(LATER))
def test_case_builds_runs_and_reproduces(name):
    case = LATER[name]
    a = _built_reproducibly(case)
    with torch.no_grad():
        out = _as_tensor(hook_truth._call(a, case.inputs(torch.Generator().manual_seed(0))))
    assert out.shape[0] == 4
    if not any("non-finite" in p for p in _stored()[name]["pathologies"]):
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("split", sorted(ZOOS))
def test_every_case_is_labelled_with_its_split_and_kept_apart(split):
    """Labels are stored for every case with the zoo's split; its families are in no other zoo; each has a stock
    model and a broken variant; the cases are not in ALL_CASES (which the default runners iterate)."""
    stored, cases = _stored(), ZOOS[split]
    for name, case in cases.items():
        e = stored[name]
        assert (e["split"], e["family"], e["intended"]) == (split, case.family, case.intended), name
        assert e["label"] in ("healthy", "broken", "disputed"), name
    assert not set(cases) & set(ALL_CASES)
    families = {c.family for c in cases.values()}
    others = [*CASES.values(), *NEW_CASES.values(), *(c for s, z in ZOOS.items() if s != split for c in z.values())]
    assert len(families) >= 8
    assert not families & {c.family for c in others}
    for f in families:
        assert {c.intended for c in cases.values() if c.family == f} == {"stock", "broken"}, f


def test_shared_block_truth_reads_every_call():
    """ALBERT calls one layer module six times: the truth has a point per call, and its M at each is the mean
    square of the hidden state the model itself returns after that layer."""
    case = CASES2["albert-6x64"]
    model = _build(case, 0)
    inputs = case.inputs(torch.Generator().manual_seed(0))
    t = hook_truth.truth(case, 1)
    assert len(t["points"]) == 1 + model.config.num_hidden_layers
    with torch.no_grad():
        states = model(**inputs, output_hidden_states=True).hidden_states
    expected = [s.double().pow(2).mean().item() for s in states]
    assert t["M"] == pytest.approx(expected, rel=1e-5)


def test_bidirectional_layers_compose_to_the_stacked_module():
    """The one-layer modules the truth runs (sharing the weights of a stacked bidirectional nn.GRU, both directions)
    chain to the stacked module's output."""
    rnn = _build(CASES2["bigru-rows-3x64"], 0).rnn
    x = torch.randn(2, 7, rnn.input_size, generator=torch.Generator().manual_seed(1))
    h = x
    layers = hook_truth._single_layers(rnn)
    for layer in layers:
        h = layer(h)[0]
    assert len(layers) == rnn.num_layers and all(layer.bidirectional for layer in layers)
    torch.testing.assert_close(h, rnn(x)[0], rtol=0, atol=1e-6)


def test_audio_task_tones_have_their_class_frequency():
    """Class c is a sine of 250·(c + 1) Hz: the periodogram's peak is at that frequency (bin width 10 Hz) in every
    example; the waveforms come from the generator passed (the same seed gives the same batch)."""
    from tools.calibration import train

    y = torch.arange(10).repeat(3)
    x = train.tones(y, torch.Generator().manual_seed(0))
    freqs = torch.fft.rfftfreq(train.AUDIO_LEN, 1 / train.AUDIO_RATE)
    peak = freqs[torch.fft.rfft(x).abs().argmax(1)]
    assert torch.equal(peak, 250.0 * (y + 1).float())
    assert torch.equal(train.tones(y, torch.Generator().manual_seed(0)), x)
    assert not torch.equal(train.tones(y, torch.Generator().manual_seed(1)), x)
    batches = train._batches("audio", 3)
    inputs, labels = next(batches)
    assert inputs["input_values"].shape == (train.CIFAR_BATCH, train.AUDIO_LEN) and labels.max() < 10


def test_merge_adds_cases_and_never_changes_stored_ones():
    stored = json.loads(labelling.LABELS.read_text(encoding="utf-8"))
    first = {k: v for k, v in stored["cases"].items() if k in NEW_CASES}
    old = {**stored, "cases": first, "steps": {k: v for k, v in stored["steps"].items() if k != "audio"}}
    new = {**stored, "cases": {"x": {"label": "healthy"}}, "steps": {"audio": 100}, "margin": {"audio": 0.15}}
    merged = labelling.merge(old, new)
    assert merged["cases"] == {**first, "x": {"label": "healthy"}} and merged["steps"]["audio"] == 100
    assert merged["steps"]["cifar"] == old["steps"]["cifar"]
    with pytest.raises(ValueError, match="already labelled"):
        labelling.merge(merged, new)
    with pytest.raises(ValueError, match="steps for cifar"):
        labelling.merge(old, {**new, "steps": {"cifar": 99}})
    with pytest.raises(ValueError, match="n_inits"):
        labelling.merge(old, {**new, "n_inits": 2})


@pytest.mark.parametrize("split", sorted(ZOOS))
def test_runner_reaches_each_later_zoo_only_by_name(monkeypatch, tmp_path, split):
    """``--half held-out-2`` (``-3``, ``-4``) checks exactly that zoo; ``all`` (the default) none of any."""
    from tools.calibration import run

    seen = []
    monkeypatch.setattr(run, "calibrate", lambda cases, **k: seen.append({c.name for c in cases}) or [])
    run.main(["--half", split, "--out", str(tmp_path / "a.md")])
    run.main(["--out", str(tmp_path / "b.md")])
    assert seen[0] == set(ZOOS[split]) and seen[1] == set(ALL_CASES)
    assert not seen[1] & set(LATER)


def test_results_of_each_zoo_keep_the_others():
    """Writing the held-out-2 table into calibration.md keeps the method text and the other results, and rewriting
    the other results keeps the held-out-2 table."""
    from tools.calibration.run import MARKER, MARKER2, place

    MARKER3, MARKER4 = zoos.marker(3), zoos.marker(4)

    doc = place("# Title\nmethod\n" + MARKER + "\n\nold results\n", "## H2\nsecond", True)
    assert doc.startswith("# Title\nmethod\n" + MARKER) and "old results" in doc
    assert doc.index("old results") < doc.index(MARKER2) < doc.index("## H2\nsecond")
    doc = place(doc, "## Results\nnew", False)
    assert "old results" not in doc and "## H2\nsecond" in doc and "## Results\nnew" in doc
    assert doc.index("## Results\nnew") < doc.index(MARKER2)
    assert place(doc, "## Results\nnew", False) == doc
    third = place(doc, "## H3\nthird", "held-out-3")  # below the second's table, keeping it and the others
    assert third.index("## Results\nnew") < third.index(MARKER2) < third.index("## H2\nsecond") < third.index(
        MARKER3) < third.index("## H3\nthird")
    again = place(place(third, "## H2\nnew second", True), "## Results\nx", False)
    assert "## H3\nthird" in again and "## H2\nnew second" in again and "## H2\nsecond" not in again
    assert again.index(MARKER2) < again.index(MARKER3)
    assert place(again, "## H3\nthird", "held-out-3") == again
    fourth = place(again, "## H4\nfourth", "held-out-4")  # below the third's table, keeping every other one
    assert fourth.index(MARKER3) < fourth.index("## H3\nthird") < fourth.index(MARKER4) < fourth.index("## H4\nfourth")
    assert place(place(fourth, "## H3\nnew third", "held-out-3"), "## H4\nfourth", "held-out-4").count("## H4") == 1
    assert "## H2\nnew second" in fourth and "## Results\nx" in fourth
    assert place("", "## Results\nx", False).startswith("# Calibration") and MARKER2 not in place("", "x", False)


@pytest.mark.parametrize("case", [CASES3["tcn-lm-6x64"], CASES4["gated-conv-lm-8x64"]], ids=lambda c: c.name)
def test_conv_lms_are_causal(case):
    """The hand-written conv LMs (the third zoo's TCN, the fourth's gated conv LM; their bigram task predicts the
    next token): the logits at step t do not change when tokens after t change, and do change when the token at t
    does."""
    _assert_causal(_build(case, 0))


def test_the_registry_finds_each_later_zoo_by_its_file():
    """zoos.numbers() lists exactly the zoo<N>.py files (N ≥ 2) beside it; a zoo that does not exist is named in a
    ValueError, not an ImportError deep in importlib."""
    from pathlib import Path

    folder = Path(zoos.__file__).parent
    found = zoos.numbers()
    assert {2, 3, 4} <= set(found) and list(found) == sorted(found) and min(found) == 2  # zoo.py, zoo2_models.py: no
    assert all((folder / f"zoo{n}.py").is_file() for n in found)
    assert zoos.cases(3) is CASES3 and set(zoos.splits(4).values()) == {"held-out-4"}
    missing = max(zoos.numbers()) + 1
    with pytest.raises(ValueError, match=f"no held-out zoo {missing}"):
        zoos.cases(missing)
