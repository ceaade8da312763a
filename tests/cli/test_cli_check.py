"""`deepstart check` through ``deepstart.cli.main``: exit codes 0 / 1 / 2, the JSON report, and ``--fix``."""
from __future__ import annotations

import json

import pytest

from deepstart.cli import main
from deepstart.diagnose import Report

FAILING = "mlp:depth=20,width=32,activation=relu,init=glorot"
HEALTHY = "mlp:depth=8,width=32,activation=relu,init=he"


def test_healthy_model_exits_0_and_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["check", HEALTHY, "--n-inits", "4", "--quiet", "--json", str(out), "--no-jacobian"])
    assert code == 0
    d = json.loads(out.read_text())
    assert d["findings"] == [] or all(f["severity"] != "error" for f in d["findings"])
    assert d["model"].startswith("mlp:") and d["n_inits"] == 4
    assert Report.from_dict(d).healthy
    assert "healthy" in capsys.readouterr().out


def test_failing_model_exits_1_and_json_names_the_finding(tmp_path):
    out = tmp_path / "r.json"
    assert main(["check", FAILING, "--n-inits", "4", "--quiet", "--json", str(out), "--no-jacobian"]) == 1
    d = json.loads(out.read_text())
    fm1 = [f for f in d["findings"] if f["category"] == "fm1"]
    assert fm1 and fm1[0]["measured"] < -fm1[0]["threshold"] and fm1[0]["remedy"]
    # --fail-on by category: FM2 only, which this model does not have
    assert main(["check", FAILING, "--n-inits", "4", "--quiet", "--no-jacobian", "--fail-on", "fm2"]) == 0
    assert main(["check", FAILING, "--n-inits", "4", "--quiet", "--no-jacobian", "--fail-on", "fm1,fm2"]) == 1


def test_warning_level(tmp_path):
    # a He ReLU net has only the isometry warning: exit 0 at --fail-on error, 1 at --fail-on warning
    args = ["check", "mlp:depth=8,width=16", "--n-inits", "3", "--quiet"]
    assert main(args) == 0
    assert main(args + ["--fail-on", "warning"]) == 1
    assert main(args + ["--fail-on", "isometry"]) == 1


@pytest.mark.parametrize("argv", [
    ["check", "nosuchmodel:depth=3"],
    ["check", "mlp:depth=0"],
    ["check", "mlp:depth=3,colour=red"],
    ["check", "mlp:depth=3", "--fail-on", "fm9"],
    ["check", "mlp:depth=3", "--n-inits", "1"],
    ["check", "mlp:depth=3", "--input-shape", "a,b"],
    ["check", "mlp:depth=3,width=8", "--input-shape", "5"],
    ["check", "no.such.module:factory"],
    ["check"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_fix_writes_the_fixed_report_beside_the_original(tmp_path, capsys):
    js, page = tmp_path / "check.json", tmp_path / "check.html"
    code = main(["check", FAILING, "--n-inits", "4", "--fix", "--json", str(js), "--html", str(page),
                 "--no-jacobian"])
    assert code == 1  # the exit code is the original model's verdict
    fixed_json, fixed_html = tmp_path / "check.fixed.json", tmp_path / "check.fixed.html"
    assert js.exists() and page.exists() and fixed_json.exists() and fixed_html.exists()
    before, after = Report.from_json(str(js)), Report.from_json(str(fixed_json))
    assert not before.healthy and after.healthy
    assert "init=he" in after.model
    assert "verified" in capsys.readouterr().out
    assert "<img" in fixed_html.read_text()


def test_factory_target(tmp_path, monkeypatch):
    mod = tmp_path / "my_models.py"
    mod.write_text("import torch\n\ndef build():\n    net = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU())\n"
                   "    g = torch.Generator().manual_seed(0)\n"
                   "    torch.nn.init.kaiming_normal_(net[0].weight, generator=g)\n"
                   "    torch.nn.init.zeros_(net[0].bias)\n    return net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", "my_models:build", "--n-inits", "3", "--quiet"]) == 0


def test_given_weights_mode_on_the_command_line(tmp_path):
    out = tmp_path / "given.json"
    code = main(["check", FAILING, "--given", "--quiet", "--json", str(out), "--no-jacobian"])
    d = json.loads(out.read_text())
    assert d["n_inits"] == 1 and code == 1  # FM1 of the Glorot net is seen in the one given net
    assert any("given-weights mode" in n for n in d["notes"])


def test_fixed_report_links_back_and_has_a_short_name(tmp_path):
    page = tmp_path / "check.html"
    main(["check", FAILING, "--n-inits", "4", "--fix", "--quiet", "--html", str(page), "--no-jacobian"])
    fixed = (tmp_path / "check.fixed.html").read_text()
    assert "check.html" in fixed and "check.fixed.html" in page.read_text()
    title = fixed.split("<h2>")[1].split("</h2>")[0]
    assert "init=he" in title and len(title) < 120  # the fixed model's spec, not the recommendation sentence
