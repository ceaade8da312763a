"""Residual additions read from the graph: which additions are residual blocks (identity or projection skips), the
branch's scale η (a layer scale γ, a Fixup multiplier), parallel branches summed first (GPT-J/NeoX), concatenations
of a stream and a new layer's output (DenseNet: block sites too, placement ``concat``), which sites lie inside which
branch (the main path; a cross-attention's key/value projections of the encoder output are in the decoder block's
branch), the softmax taps of attention branches, and the family as a description.

Part of :mod:`deepstart.diagnose.structure`'s reading (:func:`~deepstart.diagnose.structure.read_sites`).
"""
from __future__ import annotations

from deepstart.diagnose.architecture import Site
from deepstart.diagnose.capture import Graph
from deepstart.diagnose.graph_walk import _ADDS, _Ancestry, _back, _chain, _per_sample, _scaled_back, _width
from deepstart.diagnose.structure import _activation

__all__ = ["family_of"]


def _residual_adds(graph: Graph, anc: _Ancestry, sizes) -> list:
    """(add op, stream-in node, skip operand, branch operand, kind) for every residual addition."""
    out = []
    for op in graph.ops:
        if op.name not in _ADDS or len(op.inputs) != 2 or not op.outputs:
            continue
        a, b = op.inputs
        if sizes[a] != sizes[b] or graph.nodes[a].shape != graph.nodes[b].shape:
            continue
        for skip, branch in ((a, b), (b, a)):
            root = _scaled_back(graph, skip, sizes)
            # a branch with weights, or opened by a norm whose ops past it have none (PoolFormer's pool(n) − n):
            # a weightless op is a link of the branch with no law of its own, the addition is still residual
            if anc.below(root, branch) and (anc.weights[branch] & ~anc.weights[root] or
                                            anc.norms[branch] & ~anc.norms[root]):
                out.append((op, root, skip, branch, "identity"))
                break
        else:
            common = anc.nodes[a] & anc.nodes[b]
            if common:
                c = common.bit_length() - 1
                new_a, new_b = anc.weights[a] & ~anc.weights[c], anc.weights[b] & ~anc.weights[c]
                if (new_a or new_b) and not _side_sum(graph, anc, c, op.outputs[0], out):
                    skip, branch = (a, b) if bin(new_a).count("1") <= bin(new_b).count("1") else (b, a)
                    out.append((op, c, skip, branch, "projection"))
    return out


def _side_sum(graph: Graph, anc: _Ancestry, c: int, y: int, adds: list) -> bool:
    """The operands' latest common ancestor ``c`` lies inside the branch of an earlier residual addition, and the sum
    ``y`` is not part of that branch: it gathers side outputs of branches (WaveNet's skip connections, summed over
    all blocks into the head, van den Oord et al. 2016 §2.4), not a projection shortcut around a branch of the
    stream (whose common ancestor is the stream itself). No residual block; each summand is part of its branch."""
    return any(kind == "identity" and anc.below(root, c) and _back(graph, c) != _back(graph, root) and
               anc.below(c, branch) and not anc.below(y, branch) for _, root, _, branch, kind in adds)


_CATS = {"cat", "concat", "concatenate"}


def _concats(graph: Graph, anc: _Ancestry) -> list:
    """(cat op, stream node, stream operand, new piece, "concat") for every concatenation along the feature axis of
    a stream and a piece computed from it through weight ops (a DenseNet layer, Huang et al. 2017). The mean square
    of a concatenation is the width-weighted mean of its pieces' (c·M(x) + g·M(f(x)))/(c + g), so the stream's
    length changes by the new layer's gain at every concatenation: a link of a plain segment, not an addition."""
    out = []
    for op in graph.ops:
        if op.name in _CATS and len(op.inputs) >= 2 and op.outputs:
            out += _parallel_branches(graph, anc, op)
        if op.name not in _CATS or len(op.inputs) != 2 or not op.outputs:
            continue
        a, b = op.inputs
        axis = graph.nodes[a].feature_axis
        shapes = [graph.nodes[n].shape for n in (a, b, op.outputs[0])]
        if axis is None or any(len(sh) != len(shapes[0]) or not -len(sh) <= axis < len(sh) for sh in shapes) or \
                shapes[2][axis] != shapes[0][axis] + shapes[1][axis]:
            continue
        for skip, branch in ((a, b), (b, a)):
            root = _back(graph, skip)
            if anc.below(root, branch) and anc.weights[branch] & ~anc.weights[root] and \
                    _same_resolution(graph, anc, root, branch, axis):
                out.append((op, root, skip, branch, "concat"))
                break
    return out


def _parallel_branches(graph: Graph, anc: _Ancestry, op) -> list:
    """[(cat op, module input, module input, cat output, "branches")] when the concatenation joins parallel
    branches of one input along the feature axis (an Inception module, Szegedy et al. 2015): no piece is the input
    itself (that is a DenseNet layer), every piece is computed from the pieces' latest common ancestor at its
    resolution, and at least one through weight ops. Its mean square is the width-weighted mean of its pieces', each
    piece a plain segment from the module's input: the module is one link of the stream, from its input to the
    concatenation, and the sites inside the branches are off the main path."""
    pieces, y = list(op.inputs), op.outputs[0]
    axis = graph.nodes[pieces[0]].feature_axis
    shapes = [graph.nodes[n].shape for n in (*pieces, y)]
    if axis is None or any(len(sh) != len(shapes[0]) or not -len(sh) <= axis < len(sh) for sh in shapes) or \
            shapes[-1][axis] != sum(sh[axis] for sh in shapes[:-1]):
        return []
    common = -1
    for p in pieces:
        common &= anc.nodes[p] | (1 << p)
    if common <= 0:
        return []
    root = common.bit_length() - 1
    if root in {_back(graph, p) for p in pieces} or not any(anc.weights[p] & ~anc.weights[root] for p in pieces) \
            or not all(_same_resolution(graph, anc, root, p, axis) for p in pieces):
        return []
    return [(op, root, root, y, "branches")]


def _same_resolution(graph: Graph, anc: _Ancestry, root: int, branch: int, axis: int) -> bool:
    """Every tensor on the way from ``root`` to ``branch`` has root's shape but for the feature axis: the new piece
    is a layer's output at the stream's resolution. A piece computed through downsampling and upsampling (a U-Net
    skip) is a path of its own, with its own segments, not a layer of the stream."""
    shape = graph.nodes[root].shape
    keep = [d for i, d in enumerate(shape) if i != axis % len(shape)]
    for o in graph.ops[max(graph.nodes[root].op, 0) + 1:graph.nodes[branch].op + 1]:
        for n in o.outputs:
            if anc.below(root, n) and anc.below(n, branch):
                sh = graph.nodes[n].shape
                if len(sh) != len(shape) or [d for i, d in enumerate(sh) if i != axis % len(sh)] != keep:
                    return False
    return True


def _softmax_taps(graph, anc, sites) -> dict:
    """block index -> the softmax outputs inside its branch (eager attention probabilities)."""
    out = {}
    for j, s in enumerate(sites):
        if s.kind != "block" or not s.attention:
            continue
        nodes = [o.outputs[0] for o in graph.ops if o.name in ("softmax", "_softmax") and o.outputs and
                 anc.below(s._stream, o.outputs[0]) and anc.below(o.outputs[0], s._branch)]
        if nodes:
            out[j] = nodes
    return out


def _blocks(graph, anc, sizes, consumers, sites, taps, measured_back, unique) -> dict:
    """Append a block site per residual addition; returns block index -> branch node to tap (if not a site)."""
    extra = {}
    adds, parallel = _parallel(graph, _residual_adds(graph, anc, sizes), sizes)
    adds = sorted(adds + _concats(graph, anc), key=lambda a: a[0].index)
    for op, stream, skip, branch, kind in adds:
        y = op.outputs[0]  # a concatenation is measured as it is: the stream goes on un-activated (DenseNet)
        end, members = (y, []) if kind in ("concat", "branches") else _chain(graph, y, consumers, sizes)
        name, k = unique(op.module)
        act = _activation(graph, members, op.module)
        site = Site(name, "block", op.module_type or "add", op.module, k,
                    f"stream after the {'add' if kind in ('identity', 'projection') else 'concatenation'} → "
                    f"{act or 'identity'}",
                    graph.nodes[end].op, act, _width(graph, branch), _per_sample(graph.nodes[end].shape), graph.nodes[end].shape)
        site.norm = kind
        b_root = _scaled_back(graph, branch, sizes)
        site.branch_site = sites[measured_back[_back(graph, b_root)]].name if _back(graph, b_root) in measured_back \
            else None
        site.eta = _eta(graph, branch, b_root)
        site.parallel = len(op.inputs) if kind == "branches" else parallel.get(op.index, 1)
        site.layer_scale = _back(graph, branch) != _back(graph, b_root)
        s_root = _scaled_back(graph, skip, sizes)
        if _back(graph, skip) != s_root:
            site.skip_scale = _eta(graph, skip, s_root)
            site.notes.append(f"{name}: the skip path is scaled (α = {site.skip_scale})")
        lo = graph.nodes[stream].op
        site.attention = any(o.name in ("scaled_dot_product_attention", "multi_head_attention_forward", "softmax")
                             and anc.below(stream, o.outputs[0]) and anc.below(o.outputs[0], branch)
                             for o in graph.ops[max(lo, 0):op.index] if o.outputs)
        site._in, site._out, site._op, site._out_op = stream, end, op.index, graph.nodes[end].op
        site._branch, site._stream = branch, stream
        site._proj = skip if kind == "projection" else None
        if site.branch_site is None and kind != "branches":  # parallel branches: the module's output is the site
            extra[len(sites)] = branch
        sites.append(site)
        taps.append(end)
        measured_back[_back(graph, end)] = len(sites) - 1
    return extra


def _parallel(graph: Graph, adds: list, sizes) -> tuple:
    """(additions, op index -> number of parallel branches): a sum of two branches that is itself the branch of a
    residual addition (GPT-J/NeoX: x + attn(ln₁x) + mlp(ln₂x)) is part of that branch, not a block of its own."""
    roots = {_scaled_back(graph, branch, sizes): op.index for op, _, _, branch, kind in adds if kind == "identity"}
    count, inner = {}, set()
    for op, _, _, _, kind in adds:
        outer = roots.get(_back(graph, op.outputs[0]))
        if kind == "projection" and outer is not None:
            inner.add(op.index)
            count[outer] = count.get(outer, 1) + count.get(op.index, 1)
    for op in graph.ops:  # plain sums of branches (no common weights) feeding a residual addition
        outer = roots.get(op.outputs[0]) if op.outputs and op.name in _ADDS and len(op.inputs) == 2 else None
        if outer is not None and outer != op.index and op.index not in inner:
            count[outer] = max(count.get(outer, 1), 2)
    return [a for a in adds if a[0].index not in inner], count


def _eta(graph: Graph, t: int, root: int) -> float | None:
    """η with t = η · root (least squares over the recorded tensors), 1.0 when t is root; for a per-channel
    multiplier (layer scale γ) the rms ratio √(‖t‖²/‖root‖²), the factor it applies to the branch's length."""
    if t == root:
        return 1.0
    x, y = graph.tensors[root].detach().double(), graph.tensors[t].detach().double()
    if x.numel() != y.numel():
        return None
    xx = float((x * x).sum())
    if not xx > 0:
        return None
    if x.shape == y.shape:
        eta = float((x * y).sum()) / xx
        if float(((y - eta * x) ** 2).sum()) <= 1e-8 * max(float((y * y).sum()), 1e-300):
            return eta
    return (float((y * y).sum()) / xx) ** 0.5


def _side_input(s, b, anc: _Ancestry) -> bool:
    """Site ``s`` is a side input of block ``b``'s branch: computed inside the block's module from a tensor that is
    not the block's stream and read only by the branch (the key and value projections of a cross-attention read the
    encoder output, Vaswani et al. 2017 §3.2.3): it is part of the branch, not of the stream."""
    module = b.module_name
    return bool(module) and s.module_name.startswith(module + ".") and anc.below(s._out, b._branch) and \
        not anc.below(s._out, b._stream)


def _side_output(s, b, anc: _Ancestry, graph: Graph) -> bool:
    """Site ``s`` reads a tensor inside block ``b``'s branch and does not feed the block's output (WaveNet's skip
    1×1 conv reads the gated units z of its layer, van den Oord et al. 2016 Fig. 4): part of the branch, not of the
    stream."""
    x = s._in
    return x is not None and s.kind != "block" and anc.below(b._stream, x) and \
        _back(graph, x) != _back(graph, b._stream) and anc.below(x, b._branch) and not anc.below(s._out, b._out)


def _place(sites: list, anc: _Ancestry, graph: Graph) -> None:
    """Parent block of every site (innermost residual branch containing it) and the main path."""
    blocks = [s for s in sites if s.kind == "block"]
    for s in sites:
        node = s._out
        best = None
        for b in blocks:
            if b is s:
                continue
            inside = anc.below(b._stream, node) and _back(graph, node) != _back(graph, b._stream) and (
                anc.below(node, b._branch) or (b._proj is not None and anc.below(node, b._proj))) or \
                _side_input(s, b, anc) or _side_output(s, b, anc, graph)
            if inside and (best is None or b._op < best._op):
                best = b
        s.parent = best.name if best is not None else None
        s.main = best is None and not getattr(s, "_const", False)


def family_of(sites: list) -> str:
    """The normalization family of a model, read from where its norms sit relative to the residual additions."""
    blocks = [s for s in sites if s.kind == "block"]
    norms = [s for s in sites if s.kind == "norm"]
    bn = any(s.norm in ("batch_norm",) for s in norms)
    if not blocks:
        return "plain-bn" if bn else "plain"
    half = len(blocks) / 2
    pre = sum(1 for b in blocks if any(s.kind == "norm" and s.parent == b.name and s.source == b.source
                                       for s in norms))
    post = sum(1 for b in blocks if any(s.main and s.source == b.name for s in norms))
    scaled = any(b.skip_scale not in (None, 1.0) for b in blocks)
    if pre > half and post > half:
        return "sandwich"
    if post > half:
        return "deepnorm" if scaled else "post-ln"
    if pre > half:
        return "pre-ln"
    return "residual-bn" if bn else "residual"
