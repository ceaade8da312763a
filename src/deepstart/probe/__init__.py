"""deepstart.probe: will this network start training? Train its first steps, many inits at once, and judge.

``deepstart.probe(model_or_factory, task=None, *, optimizer="adam", lr=None, steps=100, n_inits=8, ...)``
(a :class:`ProbeResult`);
criteria in :mod:`deepstart.probe.result`, tasks in :mod:`deepstart.probe.tasks`, the vectorized trainer in
:mod:`deepstart.probe.engine`; ``docs/probe.md``.
"""
from __future__ import annotations

import sys
import types

from deepstart.probe.api import probe
from deepstart.probe.result import FRACTION, GROWTH, SLOW, VERDICTS, ProbeResult
from deepstart.probe.tasks import Task, data_task, ngram_task, clusters_task

__all__ = ["probe", "ProbeResult", "Task", "clusters_task", "ngram_task", "data_task", "FRACTION", "GROWTH", "SLOW",
           "VERDICTS"]


class _CallableModule(types.ModuleType):
    """``deepstart.probe`` is both this package and the function :func:`probe` (``deepstart.probe(model)``)."""

    def __call__(self, *args, **kwargs):
        return probe(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
