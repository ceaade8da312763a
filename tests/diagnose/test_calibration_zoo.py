"""The calibration zoo itself (not ``check``): cases build, run, reproduce under ``torch.manual_seed``, and their
hook-measured truth matches their labels."""
from __future__ import annotations

import functools
import math

import pytest
import torch

from tools.calibration import cases as calibration
from tools.calibration import label as labelling
from tools.calibration import zoos
from tools.calibration.cases import CASES, broken, stock, truth
from tools.calibration.zoo import ALL_CASES, NEW_CASES, SPLIT, split

LATER = zoos.all_cases()

N_INITS = 2  # truth is deterministic (seeds 0, 1); two inits keep the file fast


def _assert_causal(model, atol: float = 0.0):
    """An LM's logits at step t do not change when tokens after t change (within ``atol``: an FFT's rounding), and
    do change when the token at t does (tokens 3..999 of 16, the bigram task's vocabulary)."""
    ids = torch.randint(3, 1000, (2, 16), generator=torch.Generator().manual_seed(0))
    later, now = ids.clone(), ids.clone()
    later[:, 9:] = (later[:, 9:] + 1) % 1000
    now[:, 8] = (now[:, 8] + 1) % 1000
    with torch.no_grad():
        a, b, c = model(ids), model(later), model(now)
    assert torch.allclose(a[:, :9], b[:, :9], rtol=0.0, atol=atol) and not torch.allclose(a[:, 9:], b[:, 9:])
    assert not torch.allclose(a[:, 8], c[:, 8])


def _build(case, seed: int):
    """``case.build()`` after ``torch.manual_seed(seed)``; skips HF cases when transformers is missing."""
    torch.manual_seed(seed)
    try:
        return case.build()
    except ModuleNotFoundError as e:
        if e.name != "transformers":
            raise
        pytest.importorskip("transformers")


def _run(model, inputs):
    if isinstance(inputs, dict):
        return model(**inputs)
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


@functools.lru_cache(maxsize=None)
def _truth(name: str) -> dict:
    case = CASES[name]
    _build(case, 0)  # skip (outside the cache) when transformers is missing
    return truth(case, N_INITS)


def _poly(t: dict) -> float:
    """Band for growth at most like depth² (coherent branches): 2·log(D + 1) + 1.5 nats over D links."""
    return 2 * math.log(len(t["points"])) + 1.5


def _params(cases):
    return [pytest.param(c.name, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


def test_labels_partition_the_zoo():
    assert {c.name for c in stock()} | {c.name for c in broken()} == set(CASES)
    assert not {c.name for c in stock()} & {c.name for c in broken()}
    for c in CASES.values():
        assert set(c.expect) <= set(calibration.ANY_ERROR), c.name
        assert c.why and "\n" not in c.why, c.name
        assert c.family in ("plain", "pre-ln", "post-ln", "batchnorm", "transformer-other"), c.name


def _built_reproducibly(case):
    """``case`` built in train mode under seed 1, after asserting that seed 1 again gives bitwise the same
    parameters and seed 2 different ones."""
    a, b, c = _build(case, 1), _build(case, 1), _build(case, 2)
    assert a.training
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "same seed must give bitwise the same parameters"
    assert any(not torch.equal(sa[k], sc[k]) for k in sa), "different seeds must give different parameters"
    return a

@pytest.mark.parametrize("name", _params(ALL_CASES.values()))
def test_case_builds_runs_and_reproduces(name):
    case = ALL_CASES[name]
    a = _built_reproducibly(case)
    with torch.no_grad():
        out = _run(a, case.inputs(torch.Generator().manual_seed(0)))
    out = calibration._as_tensor(out)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", _params(stock()))
def test_stock_stream_and_gradients_bounded(name):
    t = _truth(name)
    if t["kind"] == "layers":  # plain nets at criticality: M constant within e^±1
        assert abs(t["stream_growth"]) < 1.0 and abs(t["grad_log_ratio"]) < 1.0, t
    else:  # residual streams grow at most polynomially (pre-LN: M ∝ L²)
        assert abs(t["stream_growth"]) < _poly(t) and abs(t["grad_log_ratio"]) < _poly(t), t
    assert t["norm_over_eps_min"] > 10, t


@pytest.mark.parametrize("name", _params(broken()))
def test_broken_cases_are_broken(name):
    t = _truth(name)
    exponential = abs(t["stream_growth"]) > _poly(t)
    assert exponential or t["first_gain"] > 5 or t["norm_over_eps_min"] < 1e-3, t


@pytest.mark.parametrize("name, nats", [("frelu-mlp-30x256", -38.8),        # 28 links × log(1/4)
                                        ("glorot-relu-mlp-50x64", -33.3),   # 48 links × log(1/2)
                                        ("hardswish-he-mlp-30x256", -18.0)])  # measured, see Case.why
def test_collapsing_mlps_shrink_stream_and_gradients(name, nats):
    t = _truth(name)
    assert t["stream_growth"] < -10 and t["grad_log_ratio"] < -10, t
    assert abs(t["stream_growth"] - nats) < 3, t  # per-init spread of these sums is ~1-2 nats


def test_gpt2_x50_branches_dwarf_the_stream():
    big, ok = _truth("gpt2-6x128-std-x50"), _truth("gpt2-12x256")
    assert big["first_gain"] > 5 > 1.5 > ok["first_gain"], (big, ok)  # log(1 + branch/stream) of the first block


def test_gpt2_div1e4_layernorms_below_eps():
    tiny, ok = _truth("gpt2-6x128-std-div1e4"), _truth("gpt2-12x256")
    assert tiny["norm_over_eps_min"] < 1e-3 and ok["norm_over_eps_min"] > 10, (tiny, ok)


def test_pre_ln_x10_branches_run_away():
    hot, ok = _truth("pre-ln-12x64-branch-x10"), _truth("pre-ln-6x64")
    assert hot["first_gain"] > 1.5 > 0.5 > ok["first_gain"], (hot, ok)
    assert hot["stream_growth"] > 6.0 > 2.0 > ok["stream_growth"], (hot, ok)


def test_truth_leaves_global_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    truth(CASES["he-cnn-6x32"], 1)
    assert torch.equal(torch.rand(3), expected)
    with pytest.raises(ValueError, match="n_inits"):
        truth(CASES["he-cnn-6x32"], 0)


def test_runner_refuses_without_transformers(monkeypatch, capsys):
    """Without transformers the runner exits 2 with one line of advice before any work (issue 21)."""
    from tools.calibration import run

    real = run.importlib.util.find_spec
    monkeypatch.setattr(run.importlib.util, "find_spec", lambda name: None if name == "transformers" else real(name))
    monkeypatch.setattr(run, "calibrate", lambda *a, **k: pytest.fail("no work before the refusal"))
    with pytest.raises(SystemExit) as e:
        run.main([])
    assert e.value.code == 2
    assert "--without-hf" in capsys.readouterr().err


def test_runner_writes_a_temp_folder_by_default(monkeypatch, tmp_path, capsys):
    """The default --out is a new temporary folder, never the tracked docs/calibration.md; a folder is refused."""
    from tools.calibration import run

    monkeypatch.setattr(run.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "t"))
    (tmp_path / "t").mkdir()
    seen = []
    monkeypatch.setattr(run, "calibrate", lambda cases, **k: seen.append(len(cases)) or [])
    assert run.main(["--quick"]) == 0
    assert (tmp_path / "t" / "calibration.md").read_text().startswith("# Calibration")
    assert seen and seen[0] == sum(not c.slow for c in ALL_CASES.values())
    with pytest.raises(SystemExit) as e:
        run.main(["--out", str(tmp_path)])
    assert e.value.code == 2


# ------------------------------------------------------------------------------------------ the held-out zoo
def _stored() -> dict:
    path = labelling.LABELS
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `python -m tools.calibration label --out {path}`")
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def test_split_is_seeded_by_family_and_stored():
    """Whole families go to one half (a seeded shuffle of the sorted family names); the first zoo tunes; the split
    stored beside the labels is the one the code makes, and another seed makes another split."""
    assert split() == SPLIT and split(19) != SPLIT
    for family in {c.family for c in NEW_CASES.values()}:
        assert len({SPLIT[c.name] for c in NEW_CASES.values() if c.family == family}) == 1, family
    assert all(SPLIT[name] == "tuning" for name in CASES)
    halves = [SPLIT[c.name] for c in NEW_CASES.values()]
    assert 0.35 < halves.count("held-out") / len(halves) < 0.65
    stored = _stored()
    assert stored["split_seed"] == 18
    assert set(stored["cases"]) == set(NEW_CASES) | set(LATER)
    assert all(e["split"] == {**SPLIT, **zoos.all_splits()}[name] for name, e in stored["cases"].items())
    assert len(ALL_CASES) >= 40


def test_stored_labels_follow_the_rule():
    """Each stored label is what the rule of tools/calibration/label.py gives from the stored evidence."""
    stored = _stored()["cases"]
    for name, e in stored.items():
        sibling = None if e["intended"] == "stock" else next(
            (v["training"] for v in stored.values() if v["family"] == e["family"] and v["intended"] == "stock"), None)
        assert labelling.decide(_from_json(e["truth"]), e["training"], sibling)[0] == e["label"], name


def test_label_rule_flips_with_the_numbers():
    """Moving one number across its threshold flips the label: the rule is not a constant."""
    t = {"kind": "blocks", "n_points": 7, "stream_growth": 1.0, "grad_log_ratio": 0.0, "first_gain": 0.5,
         "norm_over_eps_min": 100.0, "finite": True}
    good = {"task": "cifar", "finite": True, "last": 1.9, "reference": math.log(10)}
    bad = {**good, "last": 2.25}
    b = labelling.band(7)
    assert labelling.decide(t, good, None)[0] == "healthy"
    assert labelling.decide({**t, "stream_growth": b + 0.1}, bad, good)[0] == "broken"
    assert labelling.decide({**t, "stream_growth": b - 0.1}, bad, good)[0] == "disputed"
    assert labelling.decide({**t, "first_gain": 5.1}, bad, good)[0] == "broken"
    assert labelling.decide({**t, "norm_over_eps_min": 9e-4}, bad, good)[0] == "broken"
    assert labelling.decide({**t, "grad_log_ratio": -b - 0.1}, good, good)[0] == "disputed"
    # trains, but gains less than half of its stock sibling's 0.40 nats over chance: not "as well"
    assert labelling.decide({**t, "stream_growth": b + 0.1}, {**good, "last": 2.12}, good)[0] == "broken"


def _from_json(t: dict) -> dict:
    """Stored truth with JSON's null read back: inf for the norm ratio (no norm), NaN elsewhere (non-finite)."""
    return {k: (math.inf if k == "norm_over_eps_min" else math.nan) if v is None else v for k, v in t.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NEW_CASES) + sorted(LATER))
def test_stored_hook_truth_reproduces(name):
    """The hook truth behind each stored label is what the code measures now (no stale label is reused)."""
    case = {**NEW_CASES, **LATER}[name]
    _build(case, 0)
    e = _stored()["cases"][name]
    t, stored = truth(case, labelling.N_INITS), _from_json(e["truth"])
    for key in ("stream_growth", "grad_log_ratio", "first_gain"):
        assert t[key] == pytest.approx(stored[key], abs=1e-3, nan_ok=True), key
    assert labelling.pathologies(t) == e["pathologies"]


def test_bigram_task_has_its_stated_entropy():
    """The LM labelling task: 4 successors per active token with p = 0.4/0.3/0.2/0.1 (conditional entropy
    1.2799 nats); empirical successor frequencies match p within 4 standard errors."""
    from tools.calibration.train import SUCCESSORS, BigramTask

    task = BigramTask()
    g = torch.Generator().manual_seed(0)
    seqs = torch.cat([task.sample(g) for _ in range(40)])
    prev, nxt = seqs[:, :-1].flatten(), seqs[:, 1:].flatten()
    index = {int(t): i for i, t in enumerate(task.tokens)}
    rank = torch.tensor([(task.next[index[int(a)]] == index[int(b)]).nonzero().item() for a, b in zip(prev, nxt)])
    freq = torch.bincount(rank, minlength=4).double() / len(rank)
    p = torch.tensor(SUCCESSORS, dtype=torch.float64)
    assert torch.all((freq - p).abs() < 4 * (p * (1 - p) / len(rank)).sqrt()), freq
    assert float(-(p * p.log()).sum()) == pytest.approx(1.2799, abs=1e-4)


def test_short_training_is_deterministic():
    """Two short runs of one model give bitwise the same losses (seeded build and batches)."""
    from tools.calibration.train import short_training

    case = NEW_CASES["rnn-lm-4x128-orth"]
    a, b = short_training(case, steps=3), short_training(case, steps=3)
    assert a["first"] == b["first"] and a["last"] == b["last"] and a["finite"]
