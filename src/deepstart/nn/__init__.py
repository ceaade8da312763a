"""deepstart.nn: building blocks whose initialization the theory speaks about.

:class:`ScaledResidual` wraps a residual branch as ``x + η·branch(x)``. The η convention (η multiplies the branch's
*output*, so it scales the branch's variance by η²) is documented in ``docs/residual-eta.md`` and in
:mod:`deepstart.init.residual`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ScaledResidual"]


class ScaledResidual(nn.Module):
    """Residual block ``forward(x) = x + eta * branch(x)``.

    Hanin & Rolnick 2018, §"residual networks" (THEORY.md §4): with a length-preserving He branch whose last layer
    is symmetric, E[M_L] = M_0 ∏(1 + η_l²), so η multiplies the branch's standard deviation (its variance by η²) and
    a deep stack keeps finite mean length iff Σ η_l² < ∞.

    Args:
        branch: the residual branch N_l; must map x to a tensor of x's shape.
        eta: the branch multiplier η_l (a finite float). ``eta=0.0, learnable=True`` is SkipInit / ReZero
            (De & Smith 2020; Bachlechner et al. 2020): the block starts as the identity and learns η.
        learnable: if True, η is a 0-d ``nn.Parameter`` (named ``eta``); otherwise a fixed float buffer-free scalar.

    Example:
        >>> block = ScaledResidual(nn.Linear(4, 4), eta=0.0, learnable=True)
        >>> x = torch.ones(2, 4)
        >>> bool(torch.equal(block(x), x))
        True
    """

    def __init__(self, branch: nn.Module, eta: float = 1.0, learnable: bool = False):
        super().__init__()
        if not isinstance(branch, nn.Module):
            raise TypeError(f"branch must be an nn.Module, got {type(branch).__name__}; wrap functions in a Module")
        if isinstance(eta, torch.Tensor):
            if eta.numel() != 1:
                raise ValueError(f"eta must be a scalar, got a tensor of shape {tuple(eta.shape)}")
            eta = float(eta.detach())
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(float(eta)):
            raise ValueError(f"eta={eta!r} must be a finite float (use 0.0 with learnable=True for SkipInit/ReZero)")
        self.branch = branch
        self.learnable = bool(learnable)
        if self.learnable:
            self.eta = nn.Parameter(torch.tensor(float(eta)))
        else:
            self.eta = float(eta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.eta * self.branch(x)

    def extra_repr(self) -> str:
        value = float(self.eta.detach()) if self.learnable else self.eta
        return f"eta={value:g}, learnable={self.learnable}"
