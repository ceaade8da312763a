"""Strict JSON: every JSON file and line deepstart writes parses with a strict parser (RFC 8259: no NaN/Infinity).

Convention (documented in the README): a number that is not finite is written as ``null`` when it is NaN (not
applicable or not measured; the record's notes say why) and as the strings ``"inf"``/``"-inf"`` when it is
infinite (a divergent quantity, e.g. q* = ∞). ``float("inf")`` and NumPy's ``np.asarray(..., dtype=float)`` read
all three back (``None`` becomes NaN), so ``from_dict`` round trips keep working.
"""
from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["strict", "dumps"]


def strict(obj):
    """``obj`` with NumPy values made plain and non-finite floats replaced by the convention above."""
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(obj, np.ndarray):
        return strict(obj.tolist())
    if isinstance(obj, np.generic):
        return strict(obj.item())
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of :func:`strict` ``(obj)``; raises if a non-finite number slipped through."""
    return json.dumps(strict(obj), allow_nan=False, **kwargs)
