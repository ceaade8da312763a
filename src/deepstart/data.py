"""Datasets for experiments: ``load(name, split)``, ``fetch(name)``, ``where()``, ``DATASETS``.

See :mod:`deepstart.experiments.data` for the file layouts, checksums and cache.
"""
from __future__ import annotations

from deepstart.experiments.data import DATASETS, DataLocation, DatasetInfo, fetch, load, load_arrays, where

__all__ = ["DATASETS", "DataLocation", "DatasetInfo", "fetch", "load", "load_arrays", "where"]
