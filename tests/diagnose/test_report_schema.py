"""The JSON document of a report: one schema (``report.schema.json``) with and without a fix, a top-level verdict that
agrees with the CLI's exit code, and readers refusing documents newer than they know."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from deepstart.cli.check import exit_code
from deepstart.diagnose import check, fix_
from deepstart.diagnose.report import SCHEMA_VERSION, VERDICTS, Report, schema
from part_models import relu_mlp

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def validator():
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


@pytest.fixture(scope="module")
def glorot_fix():
    """A 16-layer Glorot ReLU MLP (E M halves per layer: FM1) and its verified fix (He)."""
    g = torch.Generator().manual_seed(21)
    model = relu_mlp(16, 32, 1.0, g)
    return fix_(model, torch.randn(16, 32, generator=g), n_inits=4, generator=g, jacobian=False)


def _doc(report, fix=None) -> dict:
    return json.loads(report.to_json(fix=fix))  # through strict JSON text, as a reader gets it


def test_report_with_and_without_fix_validate_against_one_schema(validator, glorot_fix):
    before = glorot_fix.before
    plain, fixed = _doc(before), _doc(before, glorot_fix)
    validator.validate(plain)
    validator.validate(fixed)
    assert set(plain) == set(fixed) and plain["fix"] is None  # the shape does not change with the fix
    assert plain["schema_version"] == fixed["schema_version"] == SCHEMA_VERSION
    fix = fixed["fix"]
    assert fix["applied"] and fix["verified"] and fix["recommendation"]["scheme"] == "he"
    assert fix["report"]["verdict"] == "healthy" and fix["report"]["fix"] is None
    assert fixed["verdict"] == "FAILING" and {f["category"] for f in fixed["findings"]} >= {"fm1"}
    assert fixed["recommendations"][0]["scheme"] == "he"
    # nothing to change: the fix object says so and carries no second report
    nothing = replace(glorot_fix, after=glorot_fix.before, recommendation=None, applied=False, verified=False)
    doc = _doc(before, nothing)
    validator.validate(doc)
    assert doc["fix"]["report"] is None and doc["fix"]["recommendation"] is None


def test_schema_rejects_documents_that_break_it(validator, glorot_fix):
    doc = _doc(glorot_fix.before, glorot_fix)
    for broken in ({k: v for k, v in doc.items() if k != "verdict"}, {**doc, "verdict": "ok"},
                   {**doc, "fix": {k: v for k, v in doc["fix"].items() if k != "applied"}},
                   {**doc, "fix": {**doc["fix"], "report": {**doc["fix"]["report"], "fix": doc["fix"]}}},
                   {**doc, "sq": [[["1.0"]]]}, {**doc, "schema_version": SCHEMA_VERSION + 1}):
        assert not validator.is_valid(broken)


def test_verdict_is_failing_exactly_when_the_cli_exits_1(glorot_fix, validator):
    g = torch.Generator().manual_seed(7)
    healthy = check(relu_mlp(8, 32, math.sqrt(2), g), torch.randn(16, 32, generator=g), n_inits=4, generator=g,
                    jacobian=False)
    # the same numbers judged harder: any drift of the mean length is an error
    strict = replace(healthy, thresholds={**healthy.thresholds, "fm1_nats": 0.0, "significance": 0.0})
    reports = (healthy, strict, glorot_fix.before, glorot_fix.after)
    verdicts = [_doc(r)["verdict"] for r in reports]
    assert verdicts == ["healthy", "FAILING", "FAILING", "healthy"]
    for r, v in zip(reports, verdicts):
        assert v in VERDICTS
        assert (exit_code(r, "error", None) == 1) == (v == "FAILING")


def test_documents_round_trip_and_newer_ones_are_refused(glorot_fix):
    doc = _doc(glorot_fix.before, glorot_fix)
    back = Report.from_dict(doc)
    assert [f.to_dict() for f in back.findings] == doc["findings"] and back.verdict == doc["verdict"]
    old = {k: v for k, v in doc.items() if k not in ("schema_version", "verdict", "recommendations", "fix")}
    assert Report.from_dict(old).verdict == doc["verdict"]  # documents written before the schema still read
    with pytest.raises(ValueError, match="upgrade deepstart"):
        Report.from_dict({**doc, "schema_version": SCHEMA_VERSION + 1})


def test_cli_json_has_the_same_shape_with_fix(tmp_path, capsys, validator):
    from deepstart.cli import main

    args = ["check", "mlp:depth=12,width=16,init=glorot", "--n-inits", "3", "--quiet", "--no-jacobian"]
    assert main(args + ["--json", "-"]) == 1
    plain = json.loads(capsys.readouterr().out)
    assert main(args + ["--fix", "--json", "-"]) == 1
    fixed = json.loads(capsys.readouterr().out)
    assert main(args + ["--fix", "--json", str(tmp_path / "r.json")]) == 1
    on_disk = json.loads((tmp_path / "r.json").read_text())
    for doc in (plain, fixed, on_disk):
        validator.validate(doc)
    assert set(plain) == set(fixed) == set(on_disk) and plain["fix"] is None
    assert fixed["fix"]["verified"] and on_disk["fix"]["report"]["model"].endswith("init=he")


def test_a_transformer_document_carries_its_part_laws(validator):
    g = torch.Generator().manual_seed(4)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True)
    report = check(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), torch.randn(2, 6, 16, generator=g),
                   n_inits=1, generator=g, jacobian=False)
    doc = _doc(report)
    validator.validate(doc)
    panels = {p["key"]: p for p in doc["panels"]}
    assert {"branch_gain", "stream_length", "token_cos"} <= set(panels)
    main = [s["name"] for s in doc["sites"] if s["main"]]
    for p in panels.values():  # x is the main-path index j = 1..D of the part (or of the block containing it)
        assert all(1 <= x <= len(main) for x in p["x"])
    assert [main[x - 1] for x in panels["token_cos"]["x"]] == panels["token_cos"]["names"]
    broken = {**panels["branch_gain"], "limits": [[4.0, "sideways", "error"]]}
    assert not validator.is_valid({**doc, "panels": [broken]})
    assert _doc(check(relu_mlp(4, 16, math.sqrt(2), g), torch.randn(8, 16, generator=g), n_inits=2, generator=g,
                      jacobian=False))["panels"] == []  # a plain net has no part law beyond the mean field
