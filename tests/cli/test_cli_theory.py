"""``deepstart theory critical|point|phase|lengths`` through ``main(argv)``."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deepstart.cli import main


def test_critical_json_reference(capsys):
    assert main(["theory", "critical", "--activation", "tanh", "--q-star", "1/64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sigma_w"] ** 2 == pytest.approx(1.030558, abs=6e-7)  # THEORY.md §1
    assert out["sigma_b"] ** 2 == pytest.approx(4.651e-6, rel=2e-4) and out["q_star"] == 1 / 64


def test_critical_text_and_errors(capsys):
    assert main(["theory", "critical", "--activation", "relu"]) == 0
    assert "sigma_w = 1.41421" in capsys.readouterr().out
    assert main(["theory", "critical", "--activation", "relu", "--sigma-b", "0.1"]) == 2
    assert "no critical point" in capsys.readouterr().err
    assert main(["theory", "critical", "--activation", "nope"]) == 2
    assert "valid names" in capsys.readouterr().err
    assert main(["theory", "critical", "--q-star", "abc"]) == 2


def test_point(capsys):
    assert main(["theory", "point", "--activation", "tanh", "--sigma-w", "1", "--sigma-b", "0.2236068",
                 "--depth", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["phase"] == "ordered" and out["xi_c"] == pytest.approx(3.627, abs=1e-3)  # THEORY.md §1
    assert out["gradient_growth"] == pytest.approx(out["chi_1"] ** 10, rel=1e-12)


def test_phase_png_and_json(tmp_path, capsys):
    png = tmp_path / "phase.png"
    assert main(["theory", "phase", "--activation", "tanh", "--sigma-w", "0.5:3:12", "--sigma-b", "0,0.3",
                 "--out", str(png)]) == 0
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "critical sigma_w" in capsys.readouterr().out
    assert main(["theory", "phase", "--sigma-w", "0.5:3:4", "--sigma-b", "0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["chi_1"]) == 4 and len(out["chi_1"][0]) == 1
    assert main(["theory", "phase", "--sigma-w", "1:2"]) == 2


def test_lengths(capsys):
    assert main(["theory", "lengths", "--widths", "20x10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["second_ratio"] == pytest.approx(9.3132, abs=5e-5) and out["beta"] == 0.5  # THEORY.md §4
    assert out["failure_modes"]["fm2"] and not out["failure_modes"]["fm1"]
    assert main(["theory", "lengths", "--widths", "64x10,128x5", "--weight-scale", "2.2"]) == 0
    text = capsys.readouterr().out
    assert "FM1 YES" in text and "15 layers" in text
    assert main(["theory", "lengths", "--widths", "64y3"]) == 2


def test_theory_cli_does_not_import_torch():
    code = ("import sys; from deepstart.cli import main; "
            "assert main(['theory', 'lengths', '--widths', '8x3']) == 0; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_exit_codes_for_usage(capsys):
    assert main(["theory"]) == 2  # an action is required
    assert main(["theory", "critical", "--help"]) == 0
    assert "--q-star" in capsys.readouterr().out
    assert main(["theory", "critical", "--q-star", "0.1", "--sigma-b", "0.1"]) == 2  # mutually exclusive
    capsys.readouterr()
    assert main(["theory", "critical", "--activation", "tanh", "--q-star", "-1"]) == 2
    assert "--q-star: must be > 0" in capsys.readouterr().err


def test_critical_from_sigma_b_json_round_trips(capsys):
    from deepstart.theory import CriticalPoint, critical_point

    assert main(["theory", "critical", "--activation", "tanh", "--sigma-b", "0.3", "--json"]) == 0
    out = CriticalPoint.from_dict(json.loads(capsys.readouterr().out))
    ref = critical_point("tanh", sigma_b=0.3)
    assert out == ref and out.chi_1 == 1.0
    # hard-tanh reference (THEORY.md §1): q* = 1 → σ_w² = 1.4647948, σ_b² = 0.244080
    assert main(["theory", "critical", "--activation", "hard_tanh", "--q-star", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sigma_w"] ** 2 == pytest.approx(1.4647948, abs=5e-8)
    assert out["sigma_b"] ** 2 == pytest.approx(0.244080, abs=5e-7)


def test_lengths_json_matches_library_for_mixed_widths(capsys):
    from deepstart.theory import length_moments

    assert main(["theory", "lengths", "--widths", "10,40,10,40,10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lm = length_moments([10, 40, 10, 40, 10])
    assert out["depth"] == 5 and out["log_exact"] is True
    assert out["log_mean"] == pytest.approx(float(lm.log_mean[-1]), rel=1e-14)
    assert out["log_var"] == pytest.approx(float(lm.log_var[-1]), rel=1e-14)
    assert out["beta"] == pytest.approx(0.1 * 3 + 0.025 * 2, rel=1e-14)


def test_phase_json_matches_library(capsys):
    from deepstart.theory import phase_diagram

    assert main(["theory", "phase", "--activation", "erf", "--sigma-w", "0.5,1.5,2.5", "--sigma-b", "0:0.5:3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pd = phase_diagram("erf", [0.5, 1.5, 2.5], [0.0, 0.25, 0.5])
    assert out["activation"] == "erf" and out["chi_1"] == pd.chi_1.tolist()
    assert out["q_star"] == pd.q_star.tolist()
