"""Snapshots of a model's parameters and buffers, to assert that a refused change restored it bitwise."""
from __future__ import annotations

import torch


def state(model) -> dict:
    """Detached copies of every parameter and buffer, by name."""
    return {k: v.detach().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]}


def same(model, saved: dict) -> bool:
    """The model's parameters and buffers are exactly ``saved`` (same names, bit-equal values)."""
    now = dict([*model.named_parameters(), *model.named_buffers()])
    return now.keys() == saved.keys() and all(torch.equal(now[k].detach(), v) for k, v in saved.items())
