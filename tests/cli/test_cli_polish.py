"""Issue 21's CLI items: --threads (stated in the report), --tokens for token-id models, --input-scale/--q0 (the help's
tanh critical example passes only with inputs at q*), one --json convention, --no-progress, CLI spellings in errors,
file paths as targets, singular/plural, "no standard error" with one init, the control-flow message, Swin's per-stage
settings, and a transformer's remedy that names its own init."""
from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from deepstart.cli import cli_spelling, main
from deepstart.cli._args import default_threads, physical_cores

TOKEN_MODEL = """import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 16)
        self.fc = torch.nn.Linear(16, 16)
        self.out = torch.nn.Linear(16, 4)

    def forward(self, ids):
        return self.out(torch.relu(self.fc(self.emb(ids)))).mean(1)


def build():
    return Tiny()
"""


@pytest.fixture
def token_model(tmp_path, monkeypatch, request):
    name = f"tok_{request.node.name.split('[')[0]}"
    (tmp_path / f"{name}.py").write_text(TOKEN_MODEL)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def _json(capsys):
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------ threads
def test_threads_are_applied_stated_and_restored(capsys, monkeypatch):
    before = torch.get_num_threads()
    seen = {}
    import deepstart.diagnose as diagnose

    real = diagnose.check

    def spy(*args, **kwargs):
        seen["threads"] = torch.get_num_threads()
        return real(*args, **kwargs)

    monkeypatch.setattr(diagnose, "check", spy)
    assert main(["check", "mlp:depth=3,width=8", "--n-inits", "2", "--no-jacobian", "--threads", "3",
                 "--json", "-"]) == 0
    assert seen["threads"] == 3 and _json(capsys)["threads"] == 3
    assert torch.get_num_threads() == before  # main() called from Python leaves torch as it found it
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert main(["check", "mlp:depth=3,width=8", "--n-inits", "2", "--no-jacobian"]) == 0
    assert seen["threads"] == 2 and "on 2 torch threads" in capsys.readouterr().out


def test_default_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert default_threads() == 5
    for bad in ("", "0", "x"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert default_threads() == physical_cores()
    import os

    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("command", [["check", "mlp:depth=3"], ["sweep", "run", "s.toml", "--store", "s.db"],
                                     ["reproduce", "pennington"]])
def test_every_computing_command_takes_threads(command, capsys):
    assert main(command + ["--threads", "0"]) == 2
    assert "argument --threads: must be an integer >= 1" in capsys.readouterr().err


# ------------------------------------------------------------------ inputs: tokens and scale
def test_token_model_checks_with_tokens_and_says_how_without(token_model, capsys):
    assert main(["check", f"{token_model}:build", "--n-inits", "2", "--no-jacobian", "--tokens", "50,6",
                 "--json", "-"]) == 0
    report = _json(capsys)
    assert "int64 [8, 6]" in report["inputs"] and not report["findings"]
    assert main(["check", f"{token_model}:build", "--n-inits", "2"]) == 2
    err = capsys.readouterr().err
    assert "takes token ids" in err and "--tokens 50[,SEQ]" in err and "inputs=" not in err
    assert main(["check", f"{token_model}:build", "--tokens", "51"]) == 2  # ids beyond the embedding
    assert "--tokens 50[,SEQ] or less" in capsys.readouterr().err
    assert main(["check", f"{token_model}:build", "--tokens", "50", "--q0", "1"]) == 2
    assert main(["check", f"{token_model}:build", "--tokens", "1,x"]) == 2


def test_input_shape_that_cannot_be_inferred_is_asked_for_in_cli_words(tmp_path, monkeypatch, capsys):
    (tmp_path / "convnet_polish.py").write_text("import torch\n\ndef build():\n    return torch.nn.Conv2d(3, 4, 3)\n")
    monkeypatch.chdir(tmp_path)
    assert main(["check", "convnet_polish:build"]) == 2
    err = capsys.readouterr().err
    assert "--input-shape" in err and "input_shape=" not in err and "inputs=" not in err
    sys.modules.pop("convnet_polish", None)


@pytest.mark.slow
def test_help_tanh_critical_example_needs_inputs_at_q_star(capsys):
    """Critical tanh at q* = 1/64 (σ_w ≈ 1.0, σ_b ≈ 0.0): with N(0, 1) inputs (q0 = 1, 64× q*) the first layers
    saturate and gradients vanish over 200 layers; with q0 = q* the net sits at its fixed point: lengths stay at q*
    (M_j ≈ 1/64 within 10%) and the check passes. --input-scale 1/8 is the same input as --q0 1/64."""
    base = ["check", "tanh-mlp:depth=200,init=critical(q_star=1/64)", "--n-inits", "2", "--no-jacobian",
            "--quiet", "--json", "-"]
    assert main(base) == 1
    capsys.readouterr()
    assert main(base + ["--q0", "1/64"]) == 0
    report = _json(capsys)
    m = [r for r in report["sq"][0][0][-10:]]
    assert all(abs(v * 64 - 1) < 0.1 for v in m), m
    assert math.isclose(sum(report["m0"]) / len(report["m0"]), 1 / 64, rel_tol=0.35)  # 8 inputs × 784 coords
    assert main(base + ["--input-scale", "1/8"]) == 0
    assert _json(capsys)["m0"] == report["m0"]


# ------------------------------------------------------------------ one JSON convention
@pytest.mark.parametrize("command", [["theory", "critical", "--q-star", "1/64"],
                                     ["theory", "point", "--sigma-w", "1.2"],
                                     ["theory", "lengths", "--widths", "8x3"],
                                     ["theory", "phase", "--sigma-w", "1:2:3", "--sigma-b", "0.1"]])
def test_theory_json_takes_dash_and_a_file_like_check(command, capsys, tmp_path):
    assert main(command + ["--json", "-"]) == 0
    dash = _json(capsys)
    assert main(command + ["--json"]) == 0
    assert _json(capsys) == dash
    path = tmp_path / "t.json"
    assert main(command + ["--json", str(path)]) == 0
    assert json.loads(path.read_text()) == dash
    assert main(command + ["--json", str(tmp_path / "no" / "t.json")]) == 2


# ------------------------------------------------------------------ output words
def test_quiet_counts_findings_in_words(capsys):
    from deepstart.cli.check import _show

    class R:
        model, verdict = "m", "FAILING"

    for n, words in ((0, "(0 findings)"), (1, "(1 finding)"), (2, "(2 findings)")):
        R.findings = [object()] * n
        _show(R, quiet=True)
        assert capsys.readouterr().out == f"m: FAILING {words}\n"


def test_no_progress_hides_the_bar(monkeypatch, capsys):
    import deepstart.diagnose as diagnose

    seen = []
    real = diagnose.check

    def spy(*args, **kwargs):
        seen.append(kwargs["progress"])
        return real(*args, **kwargs)

    monkeypatch.setattr(diagnose, "check", spy)
    for flags, progress in (([], True), (["--no-progress"], False), (["--quiet"], False)):
        assert main(["check", "mlp:depth=3,width=8", "--n-inits", "2", "--no-jacobian", *flags]) == 0
        assert seen[-1] is progress


def test_errors_use_cli_spellings():
    assert cli_spelling("use device='cpu', or install") == "use --device cpu, or install"
    assert cli_spelling("Pass reinit=... that keeps") == "Pass --init SCHEME that keeps"
    assert cli_spelling("input_shape=(3,) must be") == "--input-shape (3,) must be"
    assert cli_spelling("the device= of check") == "the device= of check"  # no value: left alone


def test_device_error_in_cli_spelling(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["check", "mlp:depth=3", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "--device cpu" in err and "device='cpu'" not in err


def test_no_standard_error_with_one_init():
    from deepstart.diagnose.verdicts import pm

    assert pm(0.123) == "± 0.12 nats" and pm(0.5, "") == "± 0.5"
    assert pm(math.nan) == "no standard error with one init"


def test_given_weights_never_print_nan(tmp_path, capsys):
    assert main(["check", "mlp:depth=12,width=16,init=glorot", "--given", "--no-jacobian", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FM1 vanishing" in out and "nan" not in out.lower()


def test_file_path_targets(tmp_path, monkeypatch, capsys):
    sub = tmp_path / "models"
    sub.mkdir()
    (sub / "helper_polish.py").write_text("WIDTH = 6\n")
    (sub / "mymodel_polish.py").write_text(
        "import torch\nfrom helper_polish import WIDTH\n\n\ndef build():\n"
        "    return torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 2))\n")
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    for target in ("./models/mymodel_polish.py:build", f"{sub}/mymodel_polish.py:build"):
        assert main(["check", target, "--n-inits", "2", "--no-jacobian", "--quiet"]) == 0, capsys.readouterr().err
        assert "healthy" in capsys.readouterr().out
    assert sys.path == path_before
    assert main(["check", "./models/none.py:build"]) == 2
    assert "no file" in capsys.readouterr().err
    for name in ("helper_polish", "mymodel_polish"):
        sys.modules.pop(name, None)


# ------------------------------------------------------------------ library messages the CLI shows
def test_control_flow_message_says_what_differs():
    from deepstart.diagnose.stream import _control_flow_difference as diff

    assert diff(5, 5, (3, "relu", "tanh")) == \
        "op number 3 of an initialization's forward was tanh where the recorded forward ran relu"
    assert diff(4, 6, None) == "an initialization ran 4 ops where the recorded forward ran 6"
    assert "more than the 5" in diff(7, 5, (5, None, "linear"))
    assert "(4 ops in all against 6)" in diff(4, 6, (2, "relu", "linear"))


def test_transformer_remedy_names_the_models_own_init():
    from types import SimpleNamespace

    from deepstart.diagnose.verdicts import _remedy

    def report(std):
        return SimpleNamespace(family="pre-ln", sites=[{"kind": "layer", "weight_std": std}] * 3 + [
            {"kind": "block", "attention": True}, {"kind": "norm", "norm": "layer_norm"}])

    own = _remedy("gradients", report(0.02))
    assert "already follow N(0, 0.02²), the model's own init" in own and "re-initialize" not in own
    assert _remedy("gradients", report(1.0)).startswith("re-initialize as GPT-2 does")


@pytest.mark.slow
def test_swin_keeps_its_per_stage_settings(capsys):
    pytest.importorskip("transformers")
    assert main(["check", "hf:swin:depths=[1,1]", "--quiet"]) == 2  # a list cannot be spelled: one-line error
    capsys.readouterr()
    assert main(["check", "hf:swin", "--n-inits", "2", "--no-jacobian", "--quiet", "--json", "-"]) == 0
    report = _json(capsys)
    assert report["model"] == "hf:swin" and report["family"] == "pre-ln"


def test_every_option_has_help():
    import argparse

    from deepstart.cli import build_parser

    def parsers(p):
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    missing = [f"{p.prog} {a.option_strings or a.dest}" for p in parsers(build_parser()) for a in p._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert not missing, missing


def test_local_workers_share_the_thread_budget(monkeypatch):
    """--threads N with --workers W: each spawned worker gets N // W torch threads (at least 1)."""
    import concurrent.futures as cf

    from deepstart.experiments.runners import local

    seen = {}

    class Pool:
        def __init__(self, workers, mp_context=None, initializer=None, initargs=()):
            seen["threads"] = initargs[0]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, *args, **kwargs):
            raise RuntimeError("not run")

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Pool)
    before = torch.get_num_threads()
    try:
        for budget, workers, expected in ((6, 2, 3), (1, 2, 1), (5, 2, 2)):
            torch.set_num_threads(budget)
            with pytest.raises(RuntimeError, match="not run"):
                list(local.run_local([[{}], [{}]], workers=workers))
            assert seen["threads"] == expected
    finally:
        torch.set_num_threads(before)
