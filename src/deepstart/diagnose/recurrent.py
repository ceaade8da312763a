"""Per-layer and per-step taps of fused recurrent modules (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``, stacked).

A fused recurrent call is one op to the recorder, so its stacked layers and time steps have no sites. For every
init, each recurrent module is run again on the input it received in the recorded forward:

* layer by layer (a one-layer copy of the same cell with layer k's weights): ``layer_sq[i, k]`` = M of layer k's
  output sequence and ``layer_chi[i, k]`` = ‖∂⟨u, y_k,T⟩/∂y_{k−1,T}‖²/‖u‖², the layer's gradient gain at one time
  step (χ₁ across depth; dropout between layers is not applied);
* as a whole, with ℓ = ⟨u, y_T⟩ on the last step's output (u a fixed Gaussian cotangent): ``time_grad[i, t]`` =
  mean over inputs of ‖∂ℓ/∂x_t‖², whose decay with T − t is the recurrent Jacobian's gain per step
  (Pennington-style; Chen, Pennington & Schoenholz 2018 for gated cells).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["RecurrentProbe"]

_KINDS = (nn.RNN, nn.LSTM, nn.GRU)


class RecurrentProbe:
    """Collects the taps above for the recurrent sites of a read model, one init at a time."""

    def __init__(self, model: nn.Module, sites, graph, generator: torch.Generator):
        self.model, self.items, self.rows = model, [], []
        for s in sites:
            spec = s.recurrent
            if not spec or spec.get("input_node") is None:
                continue
            try:
                module = model.get_submodule(spec["module"])
            except AttributeError:
                continue
            x = graph.tensors[spec["input_node"]]
            if not isinstance(module, _KINDS) or not isinstance(x, torch.Tensor) or x.ndim != 3:
                continue
            x = x.detach().clone()
            steps = x.shape[1] if module.batch_first else x.shape[0]
            size = getattr(module, "proj_size", 0) or module.hidden_size  # an LSTM's output is h_t = W_hr(o ⊙ tanh c)
            hidden = size * (2 if module.bidirectional else 1)
            out_shape = (x.shape[0], hidden) if module.batch_first else (x.shape[1], hidden)
            u = torch.randn(out_shape, generator=generator, dtype=x.dtype).to(x.device)
            self.items.append((s.name, spec["module"], module, x, u, steps))
            s.recurrent = {**spec, "steps": int(steps)}

    def wrap(self, inits):
        """Yield the inits unchanged, probing each before it is measured."""
        for params in inits:
            if self.items:
                self.rows.append({name: _probe(module, prefix, x, u, params) for name, prefix, module, x, u, _ in
                                  self.items})
            yield params

    def result(self) -> dict | None:
        """site name -> {"layer_sq"/"layer_chi": [inits, layers], "time_grad": [inits, steps]}, or None without recurrent parts."""
        if not self.rows:
            return None
        return {name: {key: np.asarray([row[name][key] for row in self.rows], dtype=float)
                       for key in ("layer_sq", "layer_chi", "time_grad")} for name, *_ in self.items}


def _own(params: dict, prefix: str) -> dict:
    lead = prefix + "." if prefix else ""
    return {k[len(lead):]: v for k, v in params.items() if k.startswith(lead) and "." not in k[len(lead):]}


def _one_layer(module: nn.Module, k: int, params: dict):
    """(a one-layer module of the same cell, its parameters) for stacked layer k."""
    kw = {"bias": module.bias, "batch_first": module.batch_first, "bidirectional": module.bidirectional}
    if isinstance(module, nn.RNN):
        kw["nonlinearity"] = module.nonlinearity
    if isinstance(module, nn.LSTM) and module.proj_size:
        kw["proj_size"] = module.proj_size
    width = module.input_size if k == 0 else (module.proj_size or module.hidden_size) * (2 if module.bidirectional
                                                                                          else 1)
    with torch.device("meta"):
        layer = type(module)(width, module.hidden_size, num_layers=1, **kw)
    own = {name.replace(f"_l{k}", "_l0"): v for name, v in params.items() if name.split("_l")[-1].split("_")[0] == str(k)}
    return layer, own


def _probe(module, prefix, x, u, params) -> dict:
    own = _own(params, prefix)
    sq, chi = [], []
    h = x.detach()
    for k in range(module.num_layers):
        layer, p = _one_layer(module, k, own)
        h_in = h.clone().requires_grad_(True)
        with torch.enable_grad():
            h = torch.func.functional_call(layer, p, (h_in,))[0]
            last = h[:, -1] if module.batch_first else h[-1]
            (g,) = torch.autograd.grad((u * last).sum(), h_in)
        g_last = g[:, -1] if module.batch_first else g[-1]
        chi.append(float(g_last.double().pow(2).sum() / u.double().pow(2).sum()))
        h = h.detach()
        sq.append(float(h.double().pow(2).mean()))
    xg = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = torch.func.functional_call(module, own, (xg,))[0]
        last = y[:, -1] if module.batch_first else y[-1]
        (g,) = torch.autograd.grad((u * last).sum(), xg)
    g = g.double().pow(2).sum(-1)
    per_step = (g.mean(0) if module.batch_first else g.mean(1)).cpu().numpy()
    return {"layer_sq": sq, "layer_chi": chi, "time_grad": per_step}
