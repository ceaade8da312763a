"""``import deepstart.theory`` must not import torch (NumPy/SciPy only; INTERFACES.md)."""
import subprocess
import sys


def test_import_theory_does_not_import_torch():
    code = "import deepstart.theory; import sys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
