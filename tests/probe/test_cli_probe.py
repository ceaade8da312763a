"""``deepstart probe TARGET`` on the command line: an ``hf:`` target, a zoo target, usage errors."""
from __future__ import annotations

import json

import pytest

from deepstart.cli import main

pytest.importorskip("torch")


def test_probe_runs_on_an_hf_target(tmp_path, capsys):
    pytest.importorskip("transformers")
    out = tmp_path / "probe.json"
    code = main(["probe", "hf:gpt2:n_layer=1,n_embd=32,n_head=2,vocab_size=64,n_positions=32", "--steps", "30",
                 "--n-inits", "2", "--lr", "1e-2", "--no-progress", "--json", str(out)])
    d = json.loads(out.read_text())
    assert code == (0 if d["verdict"] in ("starts", "slow") else 1)
    assert len(d["verdicts"]) == 2 and len(d["ref_verdicts"]) == 2 and len(d["loss"][0]) == 30
    assert d["reference"].startswith("stock init") and d["path"] == "vmap"
    assert d["task"].startswith("n-gram") and "64 of the vocabulary's 64 tokens" in d["task"]
    assert "probe of hf:gpt2" in capsys.readouterr().out


def test_probe_zoo_target_exit_code_follows_the_verdict(tmp_path, capsys):
    code = main(["probe", "mlp:depth=3,width=16", "--steps", "40", "--n-inits", "2", "--lr", "1e-2",
                 "--no-progress", "--json", "-"])
    d = json.loads(capsys.readouterr().out)
    assert d["verdict"] == "starts" and code == 0


@pytest.mark.parametrize("argv, words", [
    (["probe", "mlp:depth=3,width=16", "--steps", "1"], "steps"),
    (["probe", "mlp:depth=3,width=16", "--optimizer", "lbfgs"], "optimizer"),
    (["probe", "nonsense"], "unknown target"),
])
def test_probe_usage_errors(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err
