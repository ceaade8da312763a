"""The check-vs-probe table tool (tools/calibration/probe_table.py): the agreement rule, the cache that never reuses a
stale entry, held-out-2 skipped unless named, and the reference rule. Fast: check and probe are replaced by counters."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pt = pytest.importorskip("tools.calibration.probe_table")


@pytest.mark.parametrize("check, probe, expected", [
    ("FAILING", "stuck", "yes"), ("FAILING", "diverges", "yes"), ("FAILING", "slow", "yes"),
    ("FAILING", "starts", "no"), ("healthy", "starts", "yes"), ("healthy", "stuck", "no"),
    ("healthy", "slow", "no"), ("healthy", "inconclusive", "n/a"), ("FAILING", "inconclusive", "n/a"),
    ("NOT ASSESSED", "starts", "n/a"), ("CRASH", "stuck", "n/a"), ("healthy", "CRASH", "n/a")])
def test_agreement_rule(check, probe, expected):
    assert pt.agree(check, probe) == expected


@pytest.fixture
def counted(monkeypatch):
    """run_check/run_probe replaced by counters; two cheap first-zoo cases; code versions controllable."""
    calls = {"check": [], "probe": []}
    monkeypatch.setattr(pt, "run_check", lambda case, split, labels: calls["check"].append(case.name) or
                        {"label": "healthy", "verdict": "healthy"})
    monkeypatch.setattr(pt, "run_probe", lambda case: calls["probe"].append(case.name) or
                        {"verdict": "starts", "counts": {"starts": 2}, "ratio": 1.0, "ratio_se": 0.1})
    versions = {"probe": "p1", "check": "c1"}
    monkeypatch.setattr(pt, "code_versions", lambda: dict(versions))
    return calls, versions


ONLY = {"lsuv-mlp-20x128", "glorot-relu-mlp-50x64"}


def test_cache_computes_once_and_recomputes_only_the_stale_half(counted, tmp_path):
    calls, versions = counted
    cache = tmp_path / "cache.json"
    rows = pt.table(cache=cache, only=ONLY, log=lambda *_: None)
    assert sorted(calls["check"]) == sorted(calls["probe"]) == sorted(ONLY)
    assert {r["agree"] for r in rows} == {"yes"}
    pt.table(cache=cache, only=ONLY, log=lambda *_: None)
    assert len(calls["check"]) == len(calls["probe"]) == 2  # nothing recomputed
    versions["probe"] = "p2"  # the probe's code changed: a check-only run does not show the stale probe entry
    rows = pt.table(cache=cache, only=ONLY, do_probe=False, log=lambda *_: None)
    assert all(r["probe"] is None and r["stale_probe"] and r["agree"] == "n/a" for r in rows)
    assert "stale (code or model changed): rerun" in pt.to_markdown(rows)
    assert len(calls["probe"]) == 2
    shown = pt.table(cache=cache, only=ONLY, do_probe=False, show_stale=True, log=lambda *_: None)
    assert all(r["probe"] == "starts" and r["stale_probe"] for r in shown)
    text = pt.to_markdown(shown)
    assert "**starts** (starts 2) †" in text and "older probe code (version p1)" in text  # marked, with its version
    # only the probe reruns
    pt.table(cache=cache, only=ONLY, log=lambda *_: None)
    assert len(calls["check"]) == 2 and len(calls["probe"]) == 4
    versions["check"] = "c2"
    pt.table(cache=cache, only=ONLY, log=lambda *_: None)
    assert len(calls["check"]) == 4 and len(calls["probe"]) == 4
    rows = pt.table(cache=cache, only=ONLY, log=lambda *_: None)
    assert "| `lsuv-mlp-20x128` | tuning | healthy | healthy | **starts** (starts 2) |" in pt.to_markdown(rows)


def test_a_changed_model_is_a_stale_entry(counted, tmp_path, monkeypatch):
    from tools.calibration.zoo import ALL_CASES

    calls, _ = counted
    cache = tmp_path / "cache.json"
    pt.table(cache=cache, only={"lsuv-mlp-20x128"}, log=lambda *_: None)
    case = ALL_CASES["lsuv-mlp-20x128"]
    before = pt.case_fingerprint(case)
    assert pt.case_fingerprint(case) == before  # built under seed 0: stable
    changed = pt.case_fingerprint(ALL_CASES["glorot-relu-mlp-50x64"])
    monkeypatch.setattr(pt, "case_fingerprint", lambda c: changed)
    pt.table(cache=cache, only={"lsuv-mlp-20x128"}, log=lambda *_: None)
    assert calls["check"] == calls["probe"] == ["lsuv-mlp-20x128"] * 2


def test_held_out_2_is_skipped_unless_named(counted, tmp_path, monkeypatch):
    from tools.calibration import zoo

    calls, _ = counted
    monkeypatch.setitem(zoo.SPLIT, "lsuv-mlp-20x128", "held-out-2")
    pt.table(cache=tmp_path / "c.json", only=ONLY, log=lambda *_: None)
    assert calls["check"] == ["glorot-relu-mlp-50x64"]  # check never ran on the held-out-2 case
    pt.table(("held-out-2",), cache=tmp_path / "c.json", only=ONLY, log=lambda *_: None)
    assert calls["check"][-1] == "lsuv-mlp-20x128"


def test_reference_rule():
    from tools.calibration.zoo import ALL_CASES

    z = ALL_CASES
    assert pt.reference_for(z["fixup-resnet-16x16-off"]) is z["fixup-resnet-16x16"].build  # same parameters
    assert pt.reference_for(z["unet-16-nobn"]) == "auto"  # its stock sibling has BN: other parameters
    assert pt.reference_for(z["unet-16"]) is z["unet-16"].build  # a stock case: itself
    assert pt.reference_for(z["glorot-relu-mlp-50x64"]) == "auto"
    assert pt.reference_for(z["lsuv-mlp-20x128"]) is z["lsuv-mlp-20x128"].build


def test_the_table_goes_between_the_markers(tmp_path):
    doc = tmp_path / "probe.md"
    doc.write_text("# head\n" + pt.MARKERS[0] + "\nold table\n" + pt.MARKERS[1] + "\n## after\n", encoding="utf-8")
    pt.write(doc, "new table\n")
    assert doc.read_text(encoding="utf-8") == ("# head\n" + pt.MARKERS[0] + "\nnew table\n" + pt.MARKERS[1] +
                                               "\n## after\n")
