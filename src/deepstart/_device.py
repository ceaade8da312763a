"""One check of a ``device=`` argument for every face that takes one (diagnostics, training, sweeps, reproductions).

:func:`resolve_device` turns a string or ``torch.device`` into a usable ``torch.device``, or raises an error that
names the value and what to pass instead. ``None`` stays ``None`` ("where the model already is"); callers with a
default of their own (training: the CPU) apply it.
"""
from __future__ import annotations

import torch

__all__ = ["resolve_device", "SUPPORTED"]

SUPPORTED = ("cpu", "cuda", "mps")
_VALID = "valid: cpu, cuda, cuda:N (N a GPU index), mps"


def resolve_device(device) -> torch.device | None:
    """``device`` (None, a string such as ``"cuda:0"``, or a ``torch.device``) checked to be usable here.

    TypeError for a value of another type; ValueError, with what to pass instead, for an unknown name, a device that
    holds no values to compute with (``"meta"``), ``"cuda"``/``"mps"`` on a machine without one, or a CUDA index
    beyond the GPUs present. A CUDA device without an index gets the current one.
    """
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0' (or a torch.device), got {device!r}")
    name = str(device)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {name!r}; {_VALID}: {name!r} is not a torch device (pass 'cpu' or "
                         "'cuda')") from None
    if dev.type not in SUPPORTED:
        why = " (meta tensors hold no values to compute with)" if dev.type == "meta" else ""
        raise ValueError(f"unknown device {name!r}; {_VALID}: device={name!r} is not supported{why}; deepstart "
                         f"runs on {', '.join(repr(d) for d in SUPPORTED)}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA"
            raise ValueError(f"device {name!r}: no usable CUDA GPU (CUDA is not available on this machine; torch "
                             f"{torch.__version__} built {build}); use device='cpu', or install a CUDA build of "
                             "torch on a machine with an NVIDIA GPU")
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"indices 0..{torch.cuda.device_count() - 1}; pass one of them or 'cpu'")
        return torch.device("cuda", index)
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r}: MPS (Apple GPU) is not available on this machine; use device='cpu'")
    return dev
