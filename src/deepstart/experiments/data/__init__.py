"""Datasets: MNIST, Fashion-MNIST and CIFAR-10 readers, verified downloads, and data locations.

Public API (re-exported by :mod:`deepstart.data`): ``load``, ``load_arrays``, ``fetch``, ``where``, ``DATASETS``.
"""
from __future__ import annotations

from deepstart.experiments.data.download import fetch
from deepstart.experiments.data.load import DataLocation, load, load_arrays, where
from deepstart.experiments.data.registry import DATASETS, DatasetInfo

__all__ = ["DATASETS", "DataLocation", "DatasetInfo", "fetch", "load", "load_arrays", "where"]
