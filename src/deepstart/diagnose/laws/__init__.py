"""One law per part kind (``docs/laws.md``): each turns a part of the model (:mod:`deepstart.diagnose.parts`) and the
report's measurements into findings that name the law's source and threshold.

:func:`judge` is the verdict step of ``check``: parts → the law of each part → findings. No switch on a family
label: a model that mixes parts (a parallel block, layer scale, norms after downsampling, an LSTM) gets each part
judged by its own law.
"""
from __future__ import annotations

from deepstart.diagnose.laws import addition, attention, branches, concat, norm, opaque, recurrent, segment
from deepstart.diagnose.parts import Addition, Branches, Concat, Norm, Opaque, Recurrent, Segment, read_parts

__all__ = ["judge", "LAWS"]

LAWS = {Segment: segment.judge, Addition: addition.judge, Concat: concat.judge, Branches: branches.judge, Norm: norm.judge,
        Recurrent: recurrent.judge, Opaque: opaque.judge}


def judge(report, t: dict, remedy) -> list:
    """Findings of every part of ``report``'s model, then the laws that read across parts (the gradient along a
    stream with norms, single layers far off their input's scale, attention collapse)."""
    parts = read_parts(report)
    out = []
    for part in parts:
        out += LAWS[type(part)](part, report, t, remedy, parts)
    out += segment.layer_findings(report, t, remedy)
    out += segment.run_findings(report, parts, t, remedy)
    out += norm.stream_gradients(report, parts, t, remedy)
    out += opaque.stream_inside(report, t, remedy)
    out += attention.judge(report, t, remedy)
    return out
