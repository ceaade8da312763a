"""Every script in examples/ runs (at small sizes) and does what its docstring says."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=300)


def test_quickstart_finds_fm1_and_verifies_the_fix():
    result = _run("quickstart.py", "--depth", "20", "--width", "32")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fm1" in result.stdout.lower() and "verified: passes" in result.stdout
    assert "sigma_w" in result.stdout  # the critical point printed last


def test_jacobian_spectrum_writes_the_figure(tmp_path):
    out = tmp_path / "spectra.png"
    result = _run("jacobian_spectrum.py", "--depth", "3", "--width", "64", "--nets", "2", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.stat().st_size > 10_000 and result.stdout.count("variance theory") == 3


def test_transformer_check_finds_the_broken_init_and_verifies_the_fix():
    import pytest

    pytest.importorskip("transformers")
    result = _run("transformer_check.py", "--layers", "2", "--width", "64")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stock GPT-2: healthy (family pre-ln)" in result.stdout
    assert "initializer_range=1.0: FAILING" in result.stdout and "branches" in result.stdout
    assert "verified: passes" in result.stdout
