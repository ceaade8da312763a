"""``check(..., probe=True)`` and ``deepstart check --probe``: the probe's section in the report, text and HTML."""
from __future__ import annotations

import json

import pytest

from deepstart.cli import main
from deepstart.diagnose import Report, check
from deepstart.probe import ProbeResult

torch = pytest.importorskip("torch")


def test_check_with_probe_attaches_a_section(plain_mlp):
    factory = plain_mlp(3, 16, 2.0)
    torch.manual_seed(0)
    report = check(factory(), factory=factory, n_inits=2, generator=torch.Generator().manual_seed(0),
                   probe={"lr": 1e-2, "steps": 30})
    assert report.probe["verdict"] == "starts" and len(report.probe["loss"]) == 2
    assert "probe of" in report.render()
    html = report.to_html()
    assert "Trainability probe" in html and "probe loss curves" in html
    doc = json.loads(report.to_json())
    jsonschema = pytest.importorskip("jsonschema")
    from deepstart.diagnose.report import schema

    jsonschema.Draft202012Validator(schema()).validate(doc)
    assert doc["probe"]["verdict"] == "starts"
    again = Report.from_dict(doc)
    assert again.probe["verdicts"] == report.probe["verdicts"]
    assert ProbeResult.from_dict(again.probe).summary() == ProbeResult.from_dict(report.probe).summary()


def test_check_without_probe_has_none(plain_mlp):
    torch.manual_seed(0)
    report = check(plain_mlp(2, 8, 2.0)(), n_inits=2, jacobian=False)
    assert report.probe is None and "Trainability probe" not in report.to_html()


def test_cli_check_probe_writes_the_curves_into_the_html(tmp_path, capsys):
    html = tmp_path / "r.html"
    code = main(["check", "mlp:depth=3,width=16", "--n-inits", "2", "--probe", "--no-progress", "--no-jacobian",
                 "--html", str(html)])
    assert code in (0, 1)
    assert "probe of" in capsys.readouterr().out
    text = html.read_text()
    assert "Trainability probe" in text and "probe loss curves" in text
