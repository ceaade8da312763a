"""argparse ``type=`` functions shared by the subcommands: each raises ``argparse.ArgumentTypeError``, so a bad
value is a one-line usage error (exit code 2) naming the option, e.g.
``deepstart check: error: argument --batch: must be an integer >= 1, got 0``.

NumPy-free and torch-free: the parser is built for every subcommand, including ``theory`` (no torch import).
"""
from __future__ import annotations

import argparse
import re
from fractions import Fraction

__all__ = ["integer", "number", "sizes", "plain", "device"]


def _int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _float(text: str) -> float:
    """A finite float, also written as a fraction such as ``1/64``."""
    try:
        return float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (examples: 0.25, 1/64, 2e-3)") from None


def integer(minimum: int):
    """``type=`` for an integer ``>= minimum``."""
    def parse(text: str) -> int:
        value = _int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def number(minimum: float | None = None, *, strict: bool = False, what: str = ""):
    """``type=`` for a finite number (``1/64`` allowed) ``>= minimum`` (``> minimum`` when ``strict``)."""
    def parse(text: str) -> float:
        value = _float(text)
        if minimum is not None and (value <= minimum if strict else value < minimum):
            bound = f"{'>' if strict else '>='} {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}{f' ({what})' if what else ''}, got {value:g}")
        return value
    parse.__name__ = "number"
    return parse


def sizes(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` -> ``(3, 32, 32)``: positive sizes."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        out = tuple(int(p) for p in parts)
    except ValueError:
        out = ()
    if not out or any(s < 1 for s in out):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive sizes without the batch dimension, like 3,32,32")
    return out


def device(text: str) -> str:
    """``type=`` for a torch device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (spelling only: whether this
    machine has it is checked where training starts, which names the fix)."""
    name = str(text).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", name):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or mps, got {text!r}")
    return name


def plain(text: str) -> str:
    """Help text from a reST docstring: no double backticks."""
    return text.replace("``", "")
