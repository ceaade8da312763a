"""The later held-out zoos: ``tools/calibration/zoo<N>.py`` for N ≥ 2, found by their file names.

Each such module defines ``CASES<N>`` (name -> :class:`~tools.calibration.cases.Case`) and ``SPLIT<N>`` (name ->
``"held-out-<N>"``). They are not in :data:`tools.calibration.zoo.ALL_CASES`: ``check`` runs on one only when it is
named (``python -m tools.calibration --half held-out-<N>``), so that nobody tuning ``check`` sees its verdicts by
accident. Adding a zoo is adding its module; labelling (``label --zoo N``), checking and the tests find it here.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

__all__ = ["numbers", "split_of", "cases", "splits", "all_cases", "all_splits", "marker", "title"]

ORDINAL = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth"}


def numbers() -> tuple[int, ...]:
    """The numbers N ≥ 2 of the zoo modules present, ascending."""
    found = (re.fullmatch(r"zoo(\d+)\.py", p.name) for p in Path(__file__).parent.glob("zoo*.py"))
    return tuple(sorted(n for m in found if m and (n := int(m.group(1))) >= 2))


def split_of(n: int) -> str:
    return f"held-out-{n}"


def _module(n: int):
    if n not in numbers():
        raise ValueError(f"no held-out zoo {n}: tools/calibration/zoo{n}.py does not exist (zoos: "
                         f"{', '.join(map(str, numbers()))})")
    return importlib.import_module(f"tools.calibration.zoo{n}")


def cases(n: int) -> dict:
    """Zoo ``n``'s cases, name -> Case."""
    return getattr(_module(n), f"CASES{n}")


def splits(n: int) -> dict:
    """Zoo ``n``'s split of each case (all ``held-out-<n>``)."""
    return getattr(_module(n), f"SPLIT{n}")


def all_cases() -> dict:
    """Every later zoo's cases, name -> Case."""
    return {name: case for n in numbers() for name, case in cases(n).items()}


def all_splits() -> dict:
    return {name: split for n in numbers() for name, split in splits(n).items()}


def marker(n: int) -> str:
    """The line of docs/calibration.md below which zoo ``n``'s results go."""
    return f"<!-- {split_of(n)} results -->"


def title(n: int) -> str:
    return f"Results on the {ORDINAL.get(n, f'{n}th')} held-out zoo"
