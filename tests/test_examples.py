"""Every script in examples/ runs (at small sizes) and does what its docstring says."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_quickstart_finds_fm1_verifies_the_fix_and_links_the_reports(tmp_path):
    out = tmp_path / "reports"
    result = _run("quickstart.py", "--depth", "20", "--width", "32", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fm1" in result.stdout.lower() and "verified: passes" in result.stdout
    assert "sigma_w" in result.stdout  # the critical point printed last
    assert "<a href='check.fixed.html'>" in (out / "check.html").read_text(encoding="utf-8")
    assert "<a href='check.html'>" in (out / "check.fixed.html").read_text(encoding="utf-8")


def test_jacobian_spectrum_shows_progress_and_writes_into_a_temp_folder(tmp_path):
    result = _run("jacobian_spectrum.py", "--depth", "3", "--width", "64", "--nets", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("variance theory") == 3 and "6/6" in result.stderr  # one bar step per network
    out = Path(result.stdout.strip().splitlines()[-1].split("figure written to ", 1)[1])
    assert out.stat().st_size > 10_000 and not list(tmp_path.iterdir())  # nothing in the working folder
    out.unlink()
    out.parent.rmdir()


def test_transformer_check_finds_the_broken_init_and_verifies_the_fix():
    import pytest

    pytest.importorskip("transformers")
    result = _run("transformer_check.py", "--layers", "2", "--width", "64")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stock GPT-2: healthy (family pre-ln)" in result.stdout
    assert "initializer_range=1.0: FAILING" in result.stdout and "branches" in result.stdout
    assert "verified: passes" in result.stdout
