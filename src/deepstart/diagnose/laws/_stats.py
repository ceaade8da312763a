"""Statistics the laws share: per-init ratios of batch means and the log of their mean with its standard error."""
from __future__ import annotations

import math
import warnings
from functools import wraps

import numpy as np

__all__ = ["quiet", "per_init", "mean_se_log", "column", "worst"]


def quiet(fn):
    """NumPy's all-NaN warnings off: sites that are not measured are NaN by design."""
    @wraps(fn)
    def inner(*args, **kwargs):
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn(*args, **kwargs)
    return inner


@quiet
def per_init(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """[inits] ratio of batch means (NaN where not measured)."""
    n, d = np.nanmean(num, axis=1), np.nanmean(den, axis=1)
    return np.where((d > 0) & np.isfinite(n), n / np.where(d > 0, d, 1.0), np.nan)


def mean_se_log(x: np.ndarray):
    """(log of the mean, SE of that log) over inits of positive per-init values (one init: SE NaN)."""
    x = x[np.isfinite(x) & (x > 0)]
    if x.size == 0:
        return math.nan, math.nan
    m = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return math.log(m), se / m


def column(report, name):
    """Index of the site called ``name`` (None: no such site)."""
    for j, s in enumerate(report.sites):
        if s["name"] == name:
            return j
    return None


def worst(stats: dict, sign: int):
    """(name, value, se) with the largest ``sign``·value among finite values, or None."""
    items = [(name, v, se) for name, (v, se) in stats.items() if math.isfinite(v)]
    return max(items, key=lambda t: sign * t[1]) if items else None


def significant(excess: float, se: float, k: float) -> bool:
    """An excess over a threshold counts unless it is within k standard errors (no SE: it counts)."""
    return not excess <= k * se
