"""``deepstart check hf:MODEL_TYPE[:key=value,...]``: Hugging Face architectures from their configs, offline."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from deepstart.cli import main


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


@pytest.mark.parametrize("target, family", [
    ("hf:gpt2:n_layer=2,n_embd=64", "pre-ln"),
    ("hf:bert:num_hidden_layers=2,hidden_size=64", "post-ln"),
])
def test_hf_target_checks_and_reads_the_family(transformers, tmp_path, target, family):
    path = tmp_path / "r.json"
    assert main(["check", target, "--n-inits", "2", "--quiet", "--json", str(path)]) == 0
    d = json.loads(path.read_text())
    assert d["family"] == family and d["model"] == target and d["n_inits"] == 2


def test_hf_target_builds_small_offline_models_with_inputs(transformers):
    from deepstart.diagnose.hf import hf_target

    model, inputs, factory = hf_target("hf:gpt2:n_layer=2,seq=16", seed=3, batch_size=5)
    cfg = model.config
    assert (cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.n_positions) == (2, 128, 1000, 128)  # small defaults
    assert cfg.resid_pdrop == cfg.embd_pdrop == cfg.attn_pdrop == 0.0 and cfg.bos_token_id < cfg.vocab_size
    x = inputs(torch.Generator().manual_seed(0))["input_ids"]
    assert x.shape == (5, 16) and int(x.min()) >= 0 and int(x.max()) < 1000
    again, _, _ = hf_target("hf:gpt2:n_layer=2,seq=16", seed=3, batch_size=5)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))  # the seed fixes the model
    torch.manual_seed(1)
    other = factory()
    assert [n for n, _ in other.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert not torch.equal(other.wte.weight, model.wte.weight)  # a new init from the global RNG

    vit, pixels, _ = hf_target("hf:vit:num_hidden_layers=1", seed=0, batch_size=2)
    assert pixels(torch.Generator())["pixel_values"].shape == (2, 3, 32, 32)
    assert vit.config.hidden_dropout_prob == 0.0


@pytest.mark.parametrize("target, message", [
    ("hf:gtp2", "did you mean gpt2"),
    ("hf:nosuchmodel", "examples: gpt2, bert, llama, vit"),
    ("hf:gpt2:n_layers=2", "no setting 'n_layers'; e.g. n_layer"),
    ("hf:gpt2:n_layer", "key=value"),
    ("hf:gpt2:seq=0", "seq=0 must be a positive integer"),
    ("hf:gpt2:seq=500,n_positions=64", "exceeds the model's 64 positions"),
])
def test_hf_usage_errors(transformers, capsys, target, message):
    assert main(["check", target, "--n-inits", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_hf_rejects_input_shape(capsys):
    assert main(["check", "hf:gpt2", "--input-shape", "3,32,32"]) == 2
    assert "seq=" in capsys.readouterr().err


def test_missing_transformers_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    assert main(["check", "hf:gpt2", "--n-inits", "2"]) == 2
    assert "pip install '.[hf]' in a clone of the deepstart repository" in capsys.readouterr().err
