"""argparse ``type=`` functions shared by the subcommands: each raises ``argparse.ArgumentTypeError``, so a bad
value is a one-line usage error (exit code 2) naming the option, e.g.
``deepstart check: error: argument --batch: must be an integer >= 1, got 0``.

NumPy-free and torch-free: the parser is built for every subcommand, including ``theory`` (no torch import).
"""
from __future__ import annotations

import argparse
import os
import re
from contextlib import contextmanager
from fractions import Fraction

__all__ = ["integer", "number", "sizes", "plain", "device", "add_threads", "default_threads", "threads_applied",
           "add_json", "emit_json"]


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


def physical_cores() -> int:
    """Physical cores this process may run on: distinct (package, core) pairs of /proc/cpuinfo among the CPUs in
    its affinity mask (Linux); else ``os.cpu_count()``. Hyper-threads share a core's arithmetic units, so torch's
    intra-op threads gain nothing from them."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = None
    cores, cpu, package = set(), None, "0"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = (t.strip() for t in line.partition(":"))
                if key == "processor":
                    cpu, package = int(value), "0"
                elif key == "physical id":
                    package = value
                elif key == "core id" and (allowed is None or cpu in allowed):
                    cores.add((package, value))
    except (OSError, ValueError):
        cores = set()
    fallback = len(allowed) if allowed else (os.cpu_count() or 1)
    return max(1, min(len(cores), fallback) if cores else fallback)


def default_threads() -> int:
    """``$OMP_NUM_THREADS`` when set to a positive integer, else :func:`physical_cores`."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        value = 0
    return value if value >= 1 else physical_cores()


def add_threads(parser) -> None:
    """``--threads N`` (torch intra-op threads of this process; applied by ``deepstart.cli.main``)."""
    parser.add_argument("--threads", type=integer(1), default=None, metavar="N",
                        help="torch threads for this command (default: $OMP_NUM_THREADS when set, else the "
                             "machine's physical cores). On a busy or shared machine more threads than free cores "
                             "make torch much slower, not faster: give 1 or the cores that are free")


@contextmanager
def threads_applied(args):
    """Resolve ``args.threads`` (``None``: :func:`default_threads`) and run torch with that many threads inside the
    block (the previous count is restored after it: ``main`` may be called from Python)."""
    if not hasattr(args, "threads"):
        yield
        return
    if args.threads is None:
        args.threads = default_threads()
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def add_json(parser, what: str = "the result") -> None:
    """``--json [FILE]``, one convention for every command: ``--json`` or ``--json -`` prints one JSON document on
    stdout, ``--json FILE`` writes it to FILE (atomically; the path is checked before any work)."""
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help=f"{what} as strict JSON: on stdout ('--json' or '--json -') or into FILE")


def check_json_target(args) -> None:
    """Refuse an unusable ``--json FILE`` before any work (exit 2)."""
    if getattr(args, "json", None) not in (None, "-"):
        from deepstart._io import check_output_file

        check_output_file(args.json, "--json")


def emit_json(args, payload) -> None:
    """Print ``payload`` as one strict JSON document, or write it to ``--json FILE``."""
    import sys

    from deepstart._json import dumps

    text = dumps(payload)
    if args.json == "-":
        print(text)
    else:
        from deepstart._io import atomic_write

        atomic_write(args.json, text + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
