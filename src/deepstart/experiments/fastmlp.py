"""A faster vectorized path for plain MLPs: explicit batched matrix products with a weight layout chosen for them.

For ``nn.Sequential`` models made only of ``nn.Linear`` and elementwise activations (what
:func:`deepstart.experiments.models.mlp` builds), K stacked networks are evaluated as
``h ← φ(h W_l + b_l)`` with ``W_l`` stored ``[K, in, out]`` (contiguous for ``bmm``, no transposes) and ``b_l`` as
``[K, 1, out]``; gradients come from ordinary autograd on ``Σ_k loss_k`` (the members are independent, so each
member's gradient is that of its own loss). This is the same arithmetic as ``vmap(grad(...))`` with less
overhead: on 2 CPU cores it is about 1.7× faster for depth-20 width-64 MLPs. Other models use the ``vmap`` path.

The optimizers are elementwise, so they run on this layout unchanged; :meth:`FastMLP.to_native` converts a
member's parameters back to ``nn.Linear``'s ``[out, in]`` / ``[out]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepstart.experiments.models import Erf

__all__ = ["FastMLP"]

_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Hardtanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.SELU,
                nn.Softplus, nn.Identity, Erf)


class FastMLP:
    """Forward/gradient of K stacked copies of a Linear/activation ``nn.Sequential`` in the fast layout."""

    def __init__(self, base: nn.Module):
        self.ops: list = []
        for name, module in base.named_children():
            if isinstance(module, nn.Linear):
                self.ops.append(("linear", f"{name}.weight", f"{name}.bias" if module.bias is not None else None))
            else:
                self.ops.append(("act", module, None))

    @staticmethod
    def supports(base: nn.Module) -> bool:
        return (isinstance(base, nn.Sequential) and len(list(base.buffers())) == 0
                and all(type(m) is nn.Linear or type(m) in _ELEMENTWISE for m in base.children()))

    def from_native(self, params: dict) -> dict:
        """Stacked ``nn.Linear`` parameters ``[K, out, in]``/``[K, out]`` → fast layout ``[K, in, out]``/``[K, 1, out]``."""
        return {k: (v.transpose(1, 2).contiguous() if k.endswith("weight") else v.unsqueeze(1).contiguous())
                for k, v in params.items()}

    @staticmethod
    def to_native(member: dict) -> dict:
        """One member's fast-layout parameters back to ``nn.Linear`` layout."""
        return {k: (v.transpose(0, 1).contiguous() if k.endswith("weight") else v.squeeze(0).clone())
                for k, v in member.items()}

    def forward(self, params: dict, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, in]`` shared by all members or ``[K, B, in]``; returns ``[K, B, out]``."""
        h = x
        for kind, a, b in self.ops:
            if kind == "act":
                h = a(h)
                continue
            w, bias = params[a], params[b] if b is not None else None
            if h.dim() == 2:
                h = torch.matmul(h, w) if bias is None else torch.matmul(h, w) + bias
            else:
                h = torch.bmm(h, w) if bias is None else torch.baddbmm(bias, h, w)
        return h

    def grad_and_loss(self, params: dict, x: torch.Tensor, y: torch.Tensor):
        """Per-member gradients of the mean cross-entropy, and per-member (loss, number correct)."""
        leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
        out = self.forward(leaves, x)
        k, n = out.shape[0], out.shape[1]
        yy = y.expand(k, n) if y.dim() == 1 else y
        loss = F.cross_entropy(out.reshape(k * n, -1), yy.reshape(-1), reduction="none").view(k, n).mean(1)
        grads = torch.autograd.grad(loss.sum(), list(leaves.values()))
        correct = (out.detach().argmax(-1) == yy).sum(1)
        return dict(zip(leaves, grads)), loss.detach(), correct
