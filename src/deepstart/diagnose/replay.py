"""Replay a recorded forward (:mod:`.capture`) to measure it: the same op order, checked against the recorded op
names, with the tensors the structure chose tapped by op index (:mod:`.stream`). No graph is built, so a replay
costs about one forward of the model; a forward that runs different ops (data-dependent control flow) is reported
as the first op that differs.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrize import ParametrizationList
from torch.overrides import TorchFunctionMode

from deepstart.diagnose.capture import (_SKIP, Graph, ModelForwardError, _opaque_norm, _tensors, computing_layers,
                                        computing_weight, first_tensor, op_name, run_recorded)

__all__ = ["replay"]


class _Replayer(TorchFunctionMode):
    """The replay of a recorded forward: counts ops exactly as :class:`~deepstart.diagnose.capture._Recorder` does
    and checks their names against the recorded ``signature``, but builds no graph; ``on_tap(node_id, tensor)`` gets
    the outputs of tapped ops (``taps``: op index -> ``[(output position, node id)]``)."""

    def __init__(self, signature: tuple, taps: dict, on_tap):
        super().__init__()
        self.signature, self.taps, self.on_tap = signature, taps, on_tap
        self.count, self.opaque, self.first_mismatch = 0, 0, None  # first_mismatch: (index, recorded, ran)
        self.weights = {}  # as the recorder's: weights layers compute in forward (capture.computing_weight)

    def op(self, name: str, outs: list) -> None:
        i = self.count
        self.count += 1
        if self.first_mismatch is not None:
            return
        if i >= len(self.signature) or self.signature[i] != name:
            self.first_mismatch = (i, self.signature[i] if i < len(self.signature) else None, name)
        elif i in self.taps:
            self.opaque += 1  # the tap's own torch calls are not part of the model
            try:
                for pos, nid in self.taps[i]:
                    self.on_tap(nid, outs[pos])
            finally:
                self.opaque -= 1

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.opaque:
            return out
        name = op_name(func)
        if name in _SKIP or computing_weight(self.weights, _tensors((args, kwargs or {}), []), out):
            return out
        outs = [t for t in _tensors(out, []) if t.is_floating_point()]
        if outs:
            self.op(name, outs)
        return out


def replay(model: nn.Module, graph: Graph, args: tuple, kwargs: dict, params: dict, taps: dict, on_tap):
    """``(output, number of ops run, mismatch)``: ``mismatch`` is None or ``(index, recorded op name or None, op name
    run)`` of the first op that differs from the graph (None recorded: the replay ran past its end); ``model`` run
    through ``functional_call`` with ``params`` as :func:`run_recorded` runs it (same op count), calling
    ``on_tap(node_id, tensor)`` for the tapped op outputs (``taps``: op index -> ``[(output position, node id)]``).

    Cheaper than :func:`run_recorded` (no graph, hooks only on hand-written norm modules); when the forward raises,
    it is run once more under :func:`run_recorded`, whose :class:`ModelForwardError` names the module.
    """
    rep = _Replayer(graph.signature, taps, on_tap)
    rep.weights = computing_layers(model, params)
    handles = []

    def pre(mod, inputs):
        rep.opaque += 1

    def post(mod, inputs, output):
        rep.opaque -= 1
        t = first_tensor(output)
        if not rep.opaque and t is not None:
            rep.op("norm_module", [t])

    def hide(mod, inputs):
        rep.opaque += 1

    def show(mod, inputs, output):
        rep.opaque -= 1

    try:
        for m in model.modules():
            if _opaque_norm(m):
                handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
            elif isinstance(m, ParametrizationList):  # a computed weight: a parameter, as run_recorded reads it
                handles += [m.register_forward_pre_hook(hide), m.register_forward_hook(show)]
        with torch.enable_grad(), rep:
            output = torch.func.functional_call(model, params, args, kwargs, strict=False)
    except Exception as exc:
        for h in handles:
            h.remove()
        handles = []
        run_recorded(model, args, kwargs, params)  # raises ModelForwardError naming the module
        raise ModelForwardError(f"the model's forward raised: {type(exc).__name__}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()
    return output, rep.count, rep.first_mismatch
