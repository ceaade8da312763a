"""Every JSON deepstart writes parses with a strict parser (no NaN/Infinity tokens), and reads back."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from deepstart._json import dumps, strict
from deepstart.cli import main
from deepstart.diagnose import Report


def strict_loads(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_strict_maps_nan_to_null_and_infinities_to_strings():
    out = strict({"a": float("nan"), "b": [np.inf, -np.inf, 1.5], "c": np.array([[np.nan, 2.0]]), "d": np.float32(3)})
    assert out == {"a": None, "b": ["inf", "-inf", 1.5], "c": [[None, 2.0]], "d": 3.0}
    back = np.asarray(strict_loads(dumps(out))["b"], dtype=float)  # NumPy reads the convention back
    assert back[0] == math.inf and back[1] == -math.inf and back[2] == 1.5
    assert np.isnan(np.asarray(strict_loads(dumps(out))["c"], dtype=float)[0, 0])


def test_plain_json_would_have_failed_on_the_same_value():
    with pytest.raises(ValueError):
        strict_loads(json.dumps({"x": float("nan")}))
    assert strict_loads(dumps({"x": float("nan")})) == {"x": None}


def test_check_json_on_stdout_is_one_strict_document_that_round_trips(capsys):
    # a deep tanh net: the theory's q-map arrays and the measured pre-activation columns hold NaN
    code = main(["check", "tanh-mlp:depth=12,width=16", "--n-inits", "3", "--quiet", "--json", "-"])
    captured = capsys.readouterr()
    d = strict_loads(captured.out)
    assert "FAILING" in captured.err or "healthy" in captured.err  # the human line went to stderr
    again = Report.from_dict(d)
    assert again.verdict in ("healthy", "FAILING") and code in (0, 1)
    assert again.sq.shape == (3, 8, len(again.sites))


def test_theory_lengths_json_is_strict(capsys):
    assert main(["theory", "lengths", "--widths", "64x100", "--json"]) == 0
    d = strict_loads(capsys.readouterr().out)
    assert d["depth"] == 100
