"""Diagnostics: measure a model at init, compare with theory, give verdicts and fixes.

Names are resolved lazily, so importing :mod:`deepstart.diagnose` is cheap; torch is imported on first use.
Each part adds its own block below.
"""
from __future__ import annotations

import importlib

_LAZY: dict[str, str] = {}

# --- Jacobian measurement (issue 4) ---
_LAZY.update({
    "jacobian_singular_values": "deepstart.diagnose.jacobian",
    "SingularValues": "deepstart.diagnose.jacobian",
    "sample_jacobian_spectrum": "deepstart.diagnose.jacobian",
    "block_lanczos": "deepstart.diagnose.lanczos",
    "LanczosResult": "deepstart.diagnose.lanczos",
})
# --- end issue 4 block ---

# --- check (issue 5) ---
_LAZY.update({
    "check": "deepstart.diagnose.checker",  # module named checker: a module "check" would shadow the function
    "fix_": "deepstart.diagnose.fix",
    "FixResult": "deepstart.diagnose.fix",
    "Report": "deepstart.diagnose.report",
    "Finding": "deepstart.diagnose.verdicts",
    "THRESHOLDS": "deepstart.diagnose.verdicts",
    "Recommendation": "deepstart.diagnose.recommend",
    "ModelForwardError": "deepstart.diagnose.architecture",
    "ControlFlowError": "deepstart.diagnose.stream",
    "zoo_model": "deepstart.diagnose.zoo",
})
# --- end check block ---

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepstart.diagnose' has no attribute {name!r}")


def __dir__():
    return __all__
