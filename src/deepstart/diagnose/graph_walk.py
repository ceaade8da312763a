"""Walking the captured graph (:class:`~deepstart.diagnose.capture.Graph`) for the structure reader
(:mod:`deepstart.diagnose.structure`, :mod:`deepstart.diagnose.residual`): ancestor sets of every node, following a
node back through views, casts, constant multipliers and bias shifts, the elementwise chain that follows a layer
(its activation, measured at its end), and the feature width of a node. Pure functions of the graph; no site is made
here.
"""
from __future__ import annotations

import math

from deepstart.diagnose.capture import Graph

_ADDS = {"add", "__add__", "__radd__", "__iadd__", "add_"}
_SUBS = {"sub", "__sub__", "__isub__", "sub_"}
_SCALINGS = {"mul", "__mul__", "__rmul__", "mul_", "__imul__", "div", "__truediv__", "div_", "__itruediv__"}
_WINDOW = 96   # ops scanned past the last growth of an activation chain


class _Ancestry:
    """Ancestor sets of every node as Python-int bitsets (nodes, weight ops and norm ops on the way)."""

    def __init__(self, graph: Graph):
        n = len(graph.nodes)
        self.nodes, self.weights, self.norms = [0] * n, [0] * n, [0] * n
        for op in graph.ops:
            a = w = m = 0
            for i in op.inputs:
                a |= self.nodes[i] | (1 << i)
                w |= self.weights[i]
                m |= self.norms[i]
            if op.kind == "weight":
                w |= 1 << op.index
            if op.kind == "norm":
                m |= 1 << op.index
            for o in op.outputs:
                self.nodes[o], self.weights[o], self.norms[o] = a, w, m

    def below(self, a: int, b: int) -> bool:
        """Node a is b or an ancestor of b."""
        return a == b or bool(self.nodes[b] >> a & 1)


def _per_sample(shape) -> int:
    return int(math.prod(shape[1:])) if len(shape) >= 2 else int(math.prod(shape))


def _back(graph: Graph, nid: int) -> int:
    """Follow a node back through shape-only and transparent (dropout, cast) ops with one input."""
    while True:
        op = graph.nodes[nid].op
        if op < 0:
            return nid
        o = graph.ops[op]
        if o.kind in ("shape", "transparent") and len(o.inputs) == 1:
            nid = o.inputs[0]
        else:
            return nid


def _walk_back(graph: Graph, nid: int, sizes, through) -> int:
    """As :func:`_back`, also through the arithmetic ops ``through(op, nid, sizes)`` passes (it returns the input
    to follow, or None to stop there)."""
    while True:
        nid = _back(graph, nid)
        op = graph.nodes[nid].op
        if op < 0:
            return nid
        nxt = through(graph.ops[op], nid, sizes)
        if nxt is None:
            return nid
        nid = nxt


def _through_scaling(o, nid, sizes):
    """A multiplication by a constant (η·b, α·x): the one input at least as large as the output."""
    if o.kind == "arithmetic" and (o.name in _SCALINGS or len(o.inputs) == 1):
        big = [i for i in o.inputs if sizes[i] >= sizes[nid]]
        if len(big) == 1:
            return big[0]
    return None


def _through_shift(o, nid, sizes):
    """A bias shift or a multiplier by a smaller constant (x + b, s·x) with one tensor input."""
    if o.kind == "arithmetic" and len(o.inputs) == 1 and (o.name in _SCALINGS or o.name in _ADDS | _SUBS):
        return o.inputs[0]
    return None


def _scaled_back(graph: Graph, nid: int, sizes) -> int:
    """As :func:`_back`, also through multiplications by constants (η·b, α·x)."""
    return _walk_back(graph, nid, sizes, _through_scaling)


def _chain(graph: Graph, h: int, consumers: dict, sizes) -> tuple:
    """(end node, member ops) of the elementwise ops that follow node ``h``: grow the set of nodes computed from h
    alone (constants allowed: smaller tensors, parameters, tensors that do not depend on the input such as a
    position table expanded to the batch) by activation / arithmetic / transparent / shape ops of
    the same size; the end is the one node of the set read from outside it (else h itself)."""
    closure, members = {h}, []
    start = graph.nodes[h].op
    last = start
    for op in graph.ops[start + 1:]:
        if op.index - last > _WINDOW:
            break
        if not any(i in closure for i in op.inputs):
            continue
        if op.kind in ("activation", "arithmetic", "transparent", "shape") and \
                all(i in closure or sizes[i] < sizes[h] or not graph.nodes[i].fed for i in op.inputs) and \
                op.outputs and sizes[op.outputs[0]] == sizes[h]:
            closure.update(op.outputs)
            members.append(op.index)
            last = op.index
    end, members = _single_end(graph, h, members, consumers)
    while members and (_is_scaling(graph.ops[members[-1]], closure, sizes, h) or
                       graph.ops[members[-1]].kind == "shape") and \
            graph.ops[members[-1]].outputs[0] == end and _feeds_adds(graph, end, consumers, sizes):
        # η·x, γ·x (layer scale), a Fixup scalar multiplier or bias into a residual add belongs to the residual
        # branch (read as the block's η), not to the activation of the layer before it
        op = graph.ops[members.pop()]
        end = next(i for i in op.inputs if i in closure)
    return end, members


def _feeds_adds(graph: Graph, nid: int, consumers: dict, sizes, depth: int = 4) -> bool:
    """Every consumer of ``nid`` is an addition, or a view/multiplier/bias leading only to additions."""
    uses = consumers.get(nid, [])
    if not uses or depth == 0:
        return False
    for c in uses:
        op = graph.ops[c]
        if op.name in _ADDS and len(op.inputs) == 2:
            continue
        if op.outputs and (op.kind == "shape" or _is_scaling(op, {nid}, sizes, nid)) and \
                _feeds_adds(graph, op.outputs[0], consumers, sizes, depth - 1):
            continue
        return False
    return True


def _single_end(graph: Graph, h: int, members: list, consumers: dict) -> tuple:
    """(end, members): the longest prefix of the chain whose nodes are read from outside it at one node only (a
    node used twice, by the next layer and by a residual skip, ends the chain there)."""
    outputs = set(graph.output_nodes)
    for k in range(len(members), -1, -1):
        prefix = members[:k]
        inside = set(prefix)
        closure = [h] + [o for m in prefix for o in graph.ops[m].outputs]
        frontier = [n for n in closure if n in outputs or any(c not in inside for c in consumers.get(n, []))]
        if len(frontier) == 1:
            end = frontier[0]
            return end, [m for m in prefix if graph.ops[m].outputs and graph.ops[m].outputs[0] <= end]
    return h, []


def _is_scaling(op, closure, sizes, h) -> bool:
    """A multiplier (η, a per-channel γ) or a bias shift by a constant smaller than the tensor."""
    inner = [i for i in op.inputs if i in closure]
    small = all(sizes[i] < sizes[inner[0]] for i in op.inputs if i not in closure) if inner else False
    return (op.name in _SCALINGS or op.name in _ADDS or op.name in _SUBS) and len(inner) == 1 and small


def _width(graph: Graph, nid: int) -> int:
    node = graph.nodes[nid]
    shape = node.shape
    if not shape:
        return 1
    axis = node.feature_axis if node.feature_axis is not None else (1 if len(shape) >= 2 else 0)
    return int(shape[axis]) if -len(shape) <= axis < len(shape) else int(shape[-1])


def _shifted_back(graph: Graph, nid: int, sizes) -> int:
    """As :func:`_back`, also through a bias shift or a multiplier by a smaller constant (x + b, s·x)."""
    return _walk_back(graph, nid, sizes, _through_shift)
