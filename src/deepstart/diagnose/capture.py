"""Capture what actually runs: one forward pass recorded op by op, with the module that issued each op.

``check`` reads a model from its computation, not from its module list: a ``torch.overrides.TorchFunctionMode``
sees every torch function and tensor method called on the path (``F.linear``, ``torch.addmm`` in Hugging Face's
``Conv1D``, ``F.relu`` written in ``forward``, ``x * torch.sigmoid(x)``, ``+`` of a residual stream, layer and batch
norms, ``scaled_dot_product_attention``), and forward pre/post hooks name the innermost module running. Modules that
implement a normalization by hand (``LlamaRMSNorm``, ``T5LayerNorm``: a class whose name ends in ``Norm``) are
recorded as one ``norm`` op. Each float tensor becomes a node; ops list their input and output nodes and the
parameters they used, so :mod:`deepstart.diagnose.structure` can read layers, activations, residual additions and
normalization placement from the graph. The same op order is replayed when measuring (:mod:`.replay`, used by
:mod:`.stream`), which taps the tensors the structure chose by op index.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrize import ParametrizationList
from torch.overrides import TorchFunctionMode

__all__ = ["Op", "Node", "Graph", "capture", "run_recorded", "ModelForwardError", "op_name", "KNOWN_ACTIVATIONS",
           "first_tensor", "float_tensors", "padding_factor", "computed_weights", "computing_weight"]

# Elementwise activations the theory knows, by op name (F.* and torch.* and Tensor.* spell them the same).
KNOWN_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid",
                     "sigmoid_": "sigmoid", "silu": "silu", "selu": "selu", "gelu": "gelu", "elu": "elu",
                     "leaky_relu": "leaky_relu", "leaky_relu_": "leaky_relu", "hardtanh": "hard_tanh",
                     "hardtanh_": "hard_tanh", "softplus": "softplus", "erf": "erf", "mish": "mish",
                     "hardswish": "hardswish", "hardsigmoid": "hardsigmoid", "relu6": "relu6", "celu": "celu",
                     "celu_": "celu", "softsign": "softsign", "logsigmoid": "logsigmoid", "log_sigmoid": "logsigmoid", "tanhshrink": "tanhshrink",
                     "softshrink": "softshrink", "hardshrink": "hardshrink", "threshold": "threshold",
                     "threshold_": "threshold", "_threshold": "threshold", "rrelu": "rrelu", "rrelu_": "rrelu", "prelu": "prelu", "_prelu_kernel": "prelu", "elu_": "elu", "silu_": "silu",
                     "mish_": "mish", "hardswish_": "hardswish"}
_OTHER_ACTIVATIONS = {"log_sigmoid", "_threshold", "mish", "hardswish", "hardsigmoid", "relu6", "celu", "softsign", "logsigmoid", "prelu",
                      "rrelu", "tanhshrink", "softshrink", "hardshrink", "threshold", "glu", "exp", "log", "sin",
                      "cos", "sqrt", "rsqrt", "abs", "square", "sign", "clamp", "clip", "clamp_min", "clamp_max",
                      "pow", "__pow__", "neg", "__neg__", "reciprocal", "where", "erfc", "log1p", "expm1",
                      "elu_", "hardtanh_", "celu_", "rrelu_", "threshold_", "silu_", "mish_", "hardswish_"}
_ARITHMETIC = {"add", "__add__", "__radd__", "__iadd__", "add_", "sub", "__sub__", "__rsub__", "__isub__", "sub_",
               "mul", "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__", "__rtruediv__",
               "__itruediv__", "div_", "true_divide"}
_TRANSPARENT = {"dropout", "dropout_", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d",
                "dropout3d", "to", "type", "float", "half", "double", "bfloat16", "contiguous", "clone", "type_as",
                "identity"}
_SHAPE = {"view", "reshape", "flatten", "unflatten", "view_as", "reshape_as", "squeeze", "unsqueeze", "permute",
          "transpose", "t", "expand", "expand_as", "movedim", "swapaxes"}
_WEIGHT_OPS = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
               "addmm", "matmul", "__matmul__", "mm", "bmm", "baddbmm", "einsum", "embedding", "bilinear",
               "multi_head_attention_forward"}
_CONVS = {"conv1d", "conv2d", "conv3d"}
_NORM_OPS = {"layer_norm", "batch_norm", "group_norm", "instance_norm", "rms_norm", "local_response_norm"}
_ATTENTION_OPS = {"scaled_dot_product_attention", "multi_head_attention_forward"}
_SKIP = {"__get__", "size", "dim", "numel", "__len__", "__format__", "__repr__", "__bool__", "item", "tolist",
         "is_floating_point", "is_complex", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
         "data_ptr", "stride", "storage_offset", "is_contiguous", "get_device", "__iter__"}


class ModelForwardError(ValueError):
    """The model's forward pass raised; the message names the innermost module and the input shapes it got."""


def op_name(func) -> str:
    name = getattr(func, "__name__", None)
    if name is None:
        name = getattr(getattr(func, "__func__", None), "__name__", None) or str(func)
    return name


def op_kind(name: str, uses_matrix: bool) -> str:
    """``weight`` (a ≥ 2-D parameter enters a matrix product / conv / lookup), ``norm``, ``activation``,
    ``arithmetic``, ``transparent`` (dropout, casts), ``shape`` or ``other``."""
    if uses_matrix and (name in _WEIGHT_OPS or name not in _ARITHMETIC | _SHAPE | _TRANSPARENT | _NORM_OPS):
        return "weight"
    if name in _NORM_OPS:
        return "norm"
    if name in KNOWN_ACTIVATIONS or name in _OTHER_ACTIVATIONS:
        return "activation"
    if name in _ARITHMETIC:
        return "arithmetic"
    if name in _TRANSPARENT:
        return "transparent"
    if name in _SHAPE:
        return "shape"
    return "other"


def first_tensor(obj):
    """The first floating-point tensor in a tensor / tuple / list / dict / dataclass (depth-first), or None."""
    return next(iter(float_tensors(obj)), None)


def float_tensors(obj) -> list:
    """The floating-point tensors in a tensor / tuple / list / dict / dataclass (``ModelOutput`` is a dict)."""
    return [t for t in _tensors(obj, []) if t.is_floating_point()]


def _tensors(obj, out):
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _tensors(v, out)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _tensors(v, out)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _tensors(getattr(obj, f.name), out)
    return out


@dataclass
class Node:
    """One float tensor of the forward pass (``op`` produced it; −1: an input)."""

    id: int
    op: int
    shape: tuple
    feature_axis: int | None = None
    fed: bool = True      # depends on the model's input (False: a constant of the forward, e.g. a position table)


@dataclass
class Op:
    """One recorded call. ``inputs``/``outputs`` are node ids (float tensors that are not parameters)."""

    index: int
    name: str
    kind: str
    module: str
    module_type: str
    inputs: tuple
    outputs: tuple
    params: tuple            # names of the parameters it used (≥ 2-D first)
    inplace: bool = False
    scalars: tuple = ()      # (keyword or None, value) of non-tensor arguments (negative_slope, approximate, …)
    padding: float | None = None  # convolutions: ρ, the mean fraction of kernel taps inside the input map


@dataclass
class Graph:
    """The recorded forward: ops in execution order, float tensor nodes, the model's input and output nodes."""

    ops: list
    nodes: list
    input_nodes: tuple
    output_nodes: tuple
    output: object
    tensors: list = field(default_factory=list, repr=False)   # node id -> tensor (kept alive while reading)
    signature: tuple = ()                                       # op names, to check a replay ran the same ops
    computed: dict = field(default_factory=dict, repr=False)    # weight name -> the weight a layer computed in forward

    def consumers(self) -> dict:
        out = {}
        for op in self.ops:
            for n in op.inputs:
                out.setdefault(n, []).append(op.index)
        return out


class _Recorder(TorchFunctionMode):
    """Records ops; ``params``: id(tensor) -> (name, tensor) for the parameters the forward runs with."""

    def __init__(self, params: dict, modules: list):
        super().__init__()
        self.params, self.modules = params, modules
        self.ops, self.nodes, self.tensors, self.ids = [], [], [], {}
        self.fed_ints = {}    # id -> integer/bool tensor computed from the model's input (token ids, their masks)
        self.opaque = 0       # > 0 while inside a hand-written norm module (recorded as one op at its end)
        self.on_node = None
        self.weights = {}     # id -> (name, tensor): weights layers compute in forward (see computing_weight)

    def node(self, t: torch.Tensor, op: int, axis=None, fed: bool = True) -> int:
        key = id(t)
        if key in self.ids and self.tensors[self.ids[key]] is t and op < 0:
            return self.ids[key]
        nid = len(self.nodes)
        self.nodes.append(Node(nid, op, tuple(t.shape), axis, fed))
        self.tensors.append(t)
        self.ids[key] = nid
        if op >= 0 and self.on_node is not None:
            self.opaque += 1  # the tap's own torch calls are not part of the model
            try:
                self.on_node(nid, t)
            finally:
                self.opaque -= 1
        return nid

    def lookup(self, t: torch.Tensor):
        nid = self.ids.get(id(t))
        return nid if nid is not None and self.tensors[nid] is t else None

    def fed(self, flat) -> bool:
        """Whether any of the tensors ``flat`` depends on the model's input (a float node that does, an integer
        tensor computed from the input ids; float tensors made outside the recorded forward count as fed)."""
        for t in flat:
            if id(t) in self.params and self.params[id(t)][1] is t:
                continue
            if not t.is_floating_point():
                if self.fed_ints.get(id(t)) is t:
                    return True
                continue
            nid = self.lookup(t)
            if nid is None or self.nodes[nid].fed:
                return True
        return False

    def add_op(self, name, kind, inputs, outputs, params, inplace=False, scalars=(), axis=None, fed=True) -> None:
        index = len(self.ops)
        module, mtype = self.modules[-1] if self.modules else ("", "")
        if axis is None:
            axis = next((self.nodes[n].feature_axis for n in inputs if self.nodes[n].feature_axis is not None), None)
        out_ids = []
        for t in outputs:
            nd = t.ndim
            ax = axis if axis is None or axis < 0 or axis < nd else None
            out_ids.append(self.node(t, index, ax, fed))
        self.ops.append(Op(index, name, kind, module, mtype, tuple(inputs), tuple(out_ids), tuple(params), inplace,
                           scalars))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = op_name(func)
        if self.opaque:
            return out
        flat = _tensors((args, kwargs), [])
        if computing_weight(self.weights, flat, out):  # a weight computed from a layer's own weight: a parameter
            self.params.update((id(t), self.weights[id(t)]) for t in _tensors(out, []) if id(t) in self.weights and
                               t.ndim >= 2)
            return out
        fed = self.fed(flat)
        if fed:
            self.fed_ints.update((id(t), t) for t in _tensors(out, []) if not t.is_floating_point())
        if name in _SKIP:
            return out
        params = [self.params[id(t)] for t in flat if id(t) in self.params and self.params[id(t)][1] is t]
        inputs = []
        for t in flat:
            if (id(t) in self.params and self.params[id(t)][1] is t) or not t.is_floating_point():
                continue
            nid = self.lookup(t)
            inputs.append(nid if nid is not None else self.node(t, -1))
        outs = [t for t in _tensors(out, []) if t.is_floating_point()]
        if not outs:
            return out
        matrix = [p for p in params if p[1].ndim >= 2]
        kind = op_kind(name, bool(matrix))
        axis = _feature_axis(name, kind, outs[0])
        inplace = name.endswith("_") and not name.endswith("__") or bool(kwargs.get("inplace")) or \
            name.startswith("__i")
        simple = (int, float, str)
        scalars = tuple((None, a) for a in args if isinstance(a, simple))  # bools too: F.rrelu's training flag
        scalars += tuple((k, v) for k, v in kwargs.items() if isinstance(v, simple))
        self.add_op(name, kind, inputs, outs, [p[0] for p in sorted(params, key=lambda p: -p[1].ndim)], inplace,
                    scalars, axis, fed)
        if kind == "weight" and name in _CONVS:
            self.opaque += 1  # its own conv is not part of the model
            try:
                self.ops[-1].padding = padding_factor(func, args, kwargs)
            finally:
                self.opaque -= 1
        return out


def padding_factor(conv, args: tuple, kwargs: dict) -> float | None:
    """ρ of a convolution ``conv(input, weight, bias, stride, padding, dilation, groups)``: the mean over output
    positions of the fraction of the kernel's taps that fall inside the input map (zero padding contributes
    nothing). For weights of variance σ_w² and an input of mean square M(x), uniform over positions,
    E M(h) = σ_w² · fan_in · ρ · M(x), and the summed squared gradient passes back the same factor: ρ is the
    zero-padding factor of the conv law (a 3×3 conv with padding 1 has ρ = 4/9 on a 2×2 map). Read exactly: the
    conv run once on an all-ones input of one sample with all-ones kernels, divided by fan_in (None: not read)."""
    x = args[0] if args else kwargs.get("input")
    w = args[1] if len(args) > 1 else kwargs.get("weight")
    if not isinstance(x, torch.Tensor) or not isinstance(w, torch.Tensor) or w.ndim < 3:
        return None
    rest = {k: v for k, v in kwargs.items() if k not in ("input", "weight", "bias")}
    groups = args[6] if len(args) > 6 else rest.get("groups", 1)
    shape = (1, *x.shape[1:]) if x.ndim == w.ndim else (1, *x.shape)
    try:
        with torch.no_grad():
            ones = torch.ones(shape, dtype=torch.float32, device=x.device)
            kernel = torch.ones((groups, *w.shape[1:]), dtype=torch.float32, device=w.device)
            out = conv(ones, kernel, None, *args[3:], **rest)
        return float(out.double().mean()) / w[0].numel()
    except Exception:  # noqa: BLE001 - an argument form not read here: no factor, the law without padding
        return None


def _feature_axis(name, kind, out):
    if kind == "weight":
        return 1 if name.startswith("conv") else -1
    if name in ("batch_norm", "group_norm", "instance_norm"):
        return 1
    if name in ("layer_norm", "rms_norm"):
        return -1
    return None


_BASE_FORWARDS = {nn.Linear.forward, nn.Conv1d.forward, nn.Conv2d.forward, nn.Conv3d.forward,
                  nn.ConvTranspose1d.forward, nn.ConvTranspose2d.forward, nn.ConvTranspose3d.forward}


def computing_layers(model: nn.Module, params: dict) -> dict:
    """id -> (name, tensor) of the ``weight`` in ``params`` of every linear or conv layer whose class computes its
    weight in its own forward (a subclass overriding ``forward``: BiT's weight-standardized conv, ŵ = (w − μ)/σ per
    output channel, Qiao et al. 2019), the seeds of :func:`computing_weight`."""
    out = {}
    for name, m in model.named_modules():
        key = f"{name}.weight" if name else "weight"
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)) and type(m).forward not in _BASE_FORWARDS and \
                isinstance(params.get(key), torch.Tensor):
            out[id(params[key])] = (key, params[key])
    return out


def computing_weight(weights: dict, flat: list, out) -> bool:
    """Whether an op computes a weight: every float tensor it reads is in ``weights`` (a computing layer's weight or
    a tensor computed from it alone: a reshape, a mean, a standardization). Its outputs then enter ``weights`` under
    the same name: the layer that runs with one is a weight layer with the weight it actually uses. Recording and
    replay both skip such ops, so their op counts agree."""
    floats = [t for t in flat if t.is_floating_point()]
    if not weights or not floats or any(weights.get(id(t), (0, None))[1] is not t for t in floats):
        return False
    name = weights[id(floats[0])][0]
    weights.update((id(t), (name, t)) for t in _tensors(out, []) if t.is_floating_point())
    return True


def _opaque_norm(module: nn.Module) -> bool:
    name = type(module).__name__
    return name.lower().endswith("norm") and type(module).__module__.split(".")[0] != "torch"


def run_recorded(model: nn.Module, args: tuple, kwargs: dict, params: dict, on_node=None):
    """``(recorder, output, input node ids)`` of ``model`` run through ``functional_call`` with ``params`` (name ->
    tensor, parameters and buffers) under the recorder; ``on_node(node_id, tensor)`` is called for every float
    tensor an op produces (the measuring taps). Grad mode is on, so modules take the path they take in training.

    Raises :class:`ModelForwardError` naming the innermost module that raised and the input shapes it got.
    """
    from deepstart.diagnose.architecture import expected_input, shapes_of

    by_id = {id(t): (k, t) for k, t in params.items()}
    modules, handles, err_stack = [], [], []
    rec = _Recorder(by_id, modules)
    rec.on_node = on_node
    rec.weights = computing_layers(model, params)
    opened = {}

    def pre(name):
        def hook(mod, inputs):
            modules.append((name, type(mod).__name__))
            err_stack.append((name, mod, inputs))  # shapes only when reporting an error
            if isinstance(mod, ParametrizationList):
                rec.opaque += 1  # a weight computed from parameters (weight norm): one parameter, not ops on data
            if _opaque_norm(mod):
                if not rec.opaque:
                    t = first_tensor(inputs)
                    opened[name] = rec.lookup(t) if t is not None else None
                rec.opaque += 1
        return hook

    def post(name):
        def hook(mod, inputs, output):
            if isinstance(mod, ParametrizationList):
                rec.opaque -= 1
                if not rec.opaque and isinstance(output, torch.Tensor):
                    by_id[id(output)] = (computed_name(name), output)
            if _opaque_norm(mod):
                rec.opaque -= 1
                t = first_tensor(output)
                nid = opened.pop(name, None)
                if not rec.opaque and t is not None:
                    own = [k for k, _ in by_id.values() if name and k.startswith(name + ".")]
                    eps = next((getattr(mod, k) for k in ("eps", "variance_epsilon", "epsilon")
                                if isinstance(getattr(mod, k, None), float)), None)
                    rec.add_op("norm_module", "norm", [nid] if nid is not None else [], [t], own, axis=-1,
                               scalars=(("eps", eps),) if eps is not None else (),
                               fed=nid is None or rec.nodes[nid].fed)
            modules.pop()
            err_stack.pop()
        return hook

    try:
        for name, m in model.named_modules():
            handles.append(m.register_forward_pre_hook(pre(name)))
            handles.append(m.register_forward_hook(post(name)))
        inputs = tuple(rec.node(t, -1) for t in _tensors((args, kwargs), []) if t.is_floating_point())
        rec.fed_ints.update((id(t), t) for t in _tensors((args, kwargs), []) if not t.is_floating_point())
        with torch.enable_grad(), rec:
            output = torch.func.functional_call(model, params, args, kwargs, strict=False)
    except Exception as exc:
        if err_stack:
            name, module, inputs_ = err_stack[-1]
            where = f"module {name or '<root>'!r} ({type(module).__name__}) with input shapes {shapes_of(inputs_)}"
        else:
            where = f"the model ({type(model).__name__}) with input shapes {shapes_of(args)}"
        raise ModelForwardError(f"the model's forward raised in {where}: {type(exc).__name__}: {exc}. "
                                f"Hint: the {expected_input(model)}.") from exc
    finally:
        for h in handles:
            h.remove()
    return rec, output, inputs


def computed_name(name: str) -> str:
    """``'conv.weight'`` for the :class:`ParametrizationList` module ``'conv.parametrizations.weight'``."""
    owner, _, tensor = name.rpartition("parametrizations.")
    return owner + tensor


def computed_weights(model: nn.Module) -> dict:
    """name -> tensor of every parametrized tensor (``torch.nn.utils.parametrize``: weight norm, spectral norm,
    orthogonal), as the forward computes it: a layer's weight is the computed one (Salimans & Kingma 2016, w = g·v/‖v‖),
    so its σ_w is read from it."""
    with torch.no_grad():
        return {computed_name(name): m() for name, m in model.named_modules() if isinstance(m, ParametrizationList)}


def capture(model: nn.Module, args: tuple, kwargs: dict, params: dict) -> Graph:
    """The recorded forward of ``model`` with ``params`` (see :func:`run_recorded`)."""
    rec, output, inputs = run_recorded(model, args, kwargs, params)
    outs = [rec.lookup(t) for t in _tensors(output, []) if t.is_floating_point()]
    computed = {k: t.detach() for k, t in rec.weights.values() if t.shape == params[k].shape}
    return Graph(rec.ops, rec.nodes, inputs, tuple(n for n in outs if n is not None), output, rec.tensors,
                 tuple(op.name for op in rec.ops), computed)
