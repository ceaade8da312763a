"""Shared plumbing for the theory result dataclasses: to_dict()/from_dict() with NumPy arrays as lists."""
from __future__ import annotations

import math
from dataclasses import fields

import numpy as np


def plain(value):
    """JSON-friendly copy: arrays -> nested lists, NumPy scalars -> Python scalars, inf/nan kept as floats."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def scalar_or_array(value):
    """A Python float for 0-d input, else a float ndarray (lets results hold plain numbers or grids)."""
    arr = np.asarray(value, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


class ResultMixin:
    """``to_dict()`` / ``from_dict()`` for frozen dataclasses whose fields are numbers, strings or arrays.

    Fields listed in ``_ARRAY_FIELDS`` are turned back into float arrays (or floats) by ``from_dict``; those in
    ``_OTHER_ARRAY_FIELDS`` (status strings, stability flags) into arrays of their own dtype when they were lists.
    """

    _ARRAY_FIELDS: tuple[str, ...] = ()
    _OTHER_ARRAY_FIELDS: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {sorted(unknown)}; expected {sorted(names)}")
        kw = {k: (scalar_or_array(v) if k in cls._ARRAY_FIELDS and v is not None else v) for k, v in d.items()}
        kw.update({k: np.asarray(kw[k]) for k in cls._OTHER_ARRAY_FIELDS if isinstance(kw.get(k), list)})
        return cls(**kw)


def fmt(x) -> str:
    """Short human form of a float (used in CLI tables and reprs)."""
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.6g}"
