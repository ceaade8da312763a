"""deepstart: will this network start training, and if not, how do I initialize it so that it does?

Four faces, one package:

- :mod:`deepstart.init`: initializers for real ``nn.Module`` s (He, orthogonal, delta-orthogonal,
  random walk, fractional moment, critical, residual scaling) and ``apply_``.
- :mod:`deepstart.theory`: exact predictions in NumPy/SciPy (mean field, finite-width FM1/FM2 laws,
  Jacobian spectra). Importing it never imports torch.
- :mod:`deepstart.diagnose`: measure a model at init, compare with theory, give verdicts and fixes.
- :mod:`deepstart.experiments`: data, batched training, resumable sweeps, paper reproductions.
- :mod:`deepstart.probe`: train the first steps of many inits at once; ``deepstart.probe(model)`` says whether
  each starts training (callable: the module is also the function).

Submodules are imported lazily, so ``import deepstart.theory`` stays free of torch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {"init", "theory", "diagnose", "experiments", "nn", "data", "cli", "probe"}
# Top-level conveniences, resolved on first use: name -> (module, attribute).
_LAZY_ATTRS = {
    "check": ("deepstart.diagnose", "check"),
    "fix_": ("deepstart.diagnose", "fix_"),
}

__all__ = sorted(_SUBMODULES | set(_LAZY_ATTRS) | {"__version__"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"deepstart.{name}")
    if name in _LAZY_ATTRS:
        module, attr = _LAZY_ATTRS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'deepstart' has no attribute {name!r}")


def __dir__():
    return __all__
