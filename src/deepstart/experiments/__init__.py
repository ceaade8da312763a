"""Experiments: data, model factories, batched training, resumable sweeps, paper reproductions.

Names are resolved lazily (``deepstart.experiments.mlp`` imports torch only when first used).
"""
from __future__ import annotations

import importlib

_LAZY: dict[str, str] = {}

# --- models, batched training, sweeps, store, runners (issue 6) ---
_LAZY.update({
    "mlp": "deepstart.experiments.models", "cnn": "deepstart.experiments.models",
    "resnet": "deepstart.experiments.models", "eta_schedule": "deepstart.experiments.models",
    "Trial": "deepstart.experiments.trial", "Data": "deepstart.experiments.trial",
    "load_data": "deepstart.experiments.trial", "TrialResult": "deepstart.experiments.metrics",
    "train_batch": "deepstart.experiments.train", "train_single": "deepstart.experiments.train",
    "SweepSpec": "deepstart.experiments.spec", "load_spec": "deepstart.experiments.spec",
    "SpecError": "deepstart.experiments.spec", "Store": "deepstart.experiments.store",
    "run_sweep": "deepstart.experiments.runners", "SweepSummary": "deepstart.experiments.runners",
})
# --- end issue 6 block ---

# --- paper reproductions (issue 7) ---
_LAZY.update({"PaperReport": "deepstart.experiments.reproduce.report", "PAPERS": "deepstart.experiments.reproduce"})
# --- end issue 7 block ---

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepstart.experiments' has no attribute {name!r}")


def __dir__():
    return __all__
