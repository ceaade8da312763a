"""CLI conveniences through ``main(argv)``: module:factory targets from the current folder, --eval/--train, usage
errors for every numeric option (exit 2, one line, no traceback), factory errors that name the factory, numbers
printed as numbers, plain and complete help text."""
from __future__ import annotations

import argparse
import json
import sys

import pytest

from deepstart.cli import build_parser, main

MODEL_FILE = """import torch


def build():
    net = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    return net


def build_eval():
    return build().eval()


def broken():
    raise ValueError("width must be positive")
"""


@pytest.fixture
def model_dir(tmp_path, monkeypatch, request):
    """A model file in a fresh current folder, under a name unique to the test (no sys.modules clashes)."""
    name = f"cwd_model_{request.node.name.split('[')[0]}"
    (tmp_path / f"{name}.py").write_text(MODEL_FILE)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def test_module_in_the_current_folder_is_importable(model_dir, capsys):
    path_before = list(sys.path)
    assert main(["check", f"{model_dir}:build", "--n-inits", "2", "--quiet", "--no-jacobian"]) == 0
    assert "healthy" in capsys.readouterr().out
    assert sys.path == path_before  # the folder was on sys.path only while the target was used


def test_missing_module_says_where_it_looked(model_dir, tmp_path, capsys):
    assert main(["check", "no_such_model_file:build"]) == 2
    err = capsys.readouterr().err
    assert "No module named 'no_such_model_file'" in err and str(tmp_path) in err and "Traceback" not in err


def test_factory_errors_name_the_factory_and_keep_the_message(model_dir, capsys):
    assert main(["check", f"{model_dir}:broken", "--n-inits", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{model_dir}:broken raised ValueError: width must be positive" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert main(["check", f"{model_dir}:nothing", "--n-inits", "2"]) == 2
    assert "has no attribute 'nothing'" in capsys.readouterr().err


@pytest.mark.parametrize("factory, flag, mode", [
    ("build", None, "train"), ("build", "--eval", "eval"),          # default: as the factory returns it
    ("build_eval", None, "eval"), ("build_eval", "--train", "train"),
])
def test_eval_and_train_flags_set_the_mode(model_dir, tmp_path, factory, flag, mode):
    out = tmp_path / f"{factory}-{flag}.json"
    argv = ["check", f"{model_dir}:{factory}", "--n-inits", "2", "--quiet", "--no-jacobian", "--json", str(out)]
    assert main(argv + ([flag] if flag else [])) in (0, 1)
    assert json.loads(out.read_text())["mode"] == mode


def test_eval_and_train_are_exclusive(capsys):
    assert main(["check", "mlp:depth=3", "--eval", "--train"]) == 2
    assert "not allowed with" in capsys.readouterr().err


BAD = [
    (["check", "mlp:depth=3", "--batch", "0"], "--batch"),
    (["check", "mlp:depth=3", "--batch", "-2"], "--batch"),
    (["check", "mlp:depth=3", "--batch", "many"], "--batch"),
    (["check", "mlp:depth=3", "--n-inits", "1"], "--n-inits"),
    (["check", "mlp:depth=3", "--n-inits", "2.5"], "--n-inits"),
    (["check", "mlp:depth=3", "--seed", "-1"], "--seed"),
    (["check", "mlp:depth=3", "--input-shape", "0,3"], "--input-shape"),
    (["check", "mlp:depth=3", "--input-shape", "a,b"], "--input-shape"),
    (["theory", "critical", "--q-star", "0"], "--q-star"),
    (["theory", "critical", "--q-star", "abc"], "--q-star"),
    (["theory", "critical", "--sigma-b", "-0.1"], "--sigma-b"),
    (["theory", "point", "--sigma-w", "0"], "--sigma-w"),
    (["theory", "point", "--sigma-w", "-1"], "--sigma-w"),
    (["theory", "point", "--sigma-w", "1", "--sigma-b", "-1"], "--sigma-b"),
    (["theory", "point", "--sigma-w", "1", "--depth", "0"], "--depth"),
    (["theory", "point", "--sigma-w", "1/0"], "--sigma-w"),
    (["theory", "phase", "--sigma-w", "1:2"], "--sigma-w"),
    (["theory", "phase", "--sigma-w", "1:2:0"], "--sigma-w"),
    (["theory", "phase", "--sigma-w", "1:2:x"], "--sigma-w"),
    (["theory", "phase", "--sigma-w", "-1,1"], "--sigma-w"),
    (["theory", "phase", "--sigma-b", "-0.5:1:3"], "--sigma-b"),
    (["theory", "lengths", "--widths", "64x0"], "--widths"),
    (["theory", "lengths", "--widths", "0"], "--widths"),
    (["theory", "lengths", "--widths", "64y3"], "--widths"),
    (["theory", "lengths", "--widths", "8x3", "--weight-scale", "0"], "--weight-scale"),
    (["theory", "lengths", "--widths", "8x3", "--bias-var", "-1"], "--bias-var"),
    (["theory", "lengths", "--widths", "8x3", "--fourth-moment", "0.5"], "--fourth-moment"),
    (["theory", "lengths", "--widths", "8x3", "--in-features", "0"], "--in-features"),
    (["theory", "lengths", "--widths", "8x3", "--threshold", "0"], "--threshold"),
    (["reproduce", "hanin-rolnick", "--workers", "0"], "--workers"),
    (["reproduce", "hanin-rolnick", "--seed", "-3"], "--seed"),
    (["sweep", "run", "spec.toml", "--store", "s.db", "--workers", "0"], "--workers"),
    (["sweep", "run", "spec.toml", "--store", "s.db", "--max-members", "0"], "--max-members"),
]


@pytest.mark.parametrize("argv, option", BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_numbers_are_one_line_usage_errors(argv, option, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert f"argument {option}" in err and "invalid" not in err  # no "invalid _number value" internals


def test_theory_point_prints_numbers_not_lists(capsys):
    assert main(["theory", "point", "--activation", "relu", "--sigma-w", "1.4", "--depth", "5"]) == 0
    text = capsys.readouterr().out
    assert "[" not in text and "chi_1: 0.98\n" in text
    assert main(["theory", "point", "--activation", "relu", "--sigma-w", "1.4", "--depth", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("xi_q", "xi_c", "q_star", "c_star", "chi_1", "chi_c", "gradient_growth"):
        assert isinstance(out[key], float), (key, out[key])
    assert out["chi_1"] == pytest.approx(0.98, rel=1e-12)  # σ_w² E[φ'²] = 1.96 / 2 for ReLU
    assert out["gradient_growth"] == pytest.approx(0.98 ** 5, rel=1e-12)


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_help_is_plain_text():
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 10
    for p in parsers:
        text = p.format_help()
        assert "``" not in text and ":func:" not in text, p.prog


def test_check_help_lists_every_fail_on_category(capsys):
    from deepstart.diagnose.verdicts import CATEGORIES

    assert main(["check", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for category in CATEGORIES:
        assert category in text.split("--fail-on FAIL_ON")[-1].split("--fix")[0], category
    assert "hf:MODEL_TYPE" in text and "--eval" in text and "--train" in text
