"""Sweep specifications: a grid and/or a list of trials, in TOML or built in code.

TOML layout (``docs/sweeps.md``; ``examples/sweeps/quick.toml`` in the source repository)::

    [sweep]
    name = "quick"            # required; results are grouped under it in the store
    max_members = 32          # optional: most networks per vectorized batch

    [base]                    # fields shared by every trial (any Trial field)
    dataset = "mnist"
    arch = "mlp"
    width = 64

    [grid]                    # Cartesian product over lists (a scalar is a one-element list)
    depth = [5, 10, 20]
    init = ["he", "orthogonal"]
    seed = [0, 1, 2]

    [grid.init_params]        # optional: grid over the init scheme's parameters
    s = [0.5, 1.0]

    [[trials]]                # optional: explicit trials, each merged over [base] (not crossed with [grid])
    depth = 10
    init = "critical(activation=tanh)"

Fields are those of :class:`deepstart.experiments.trial.Trial`. Every error (unknown section or key, bad value)
raises :class:`SpecError` whose message starts with ``file:line:`` of the offending key.

In code: ``SweepSpec(name="mine", base={"dataset": "toy"}, grid={"depth": [2, 4], "seed": [0, 1]}).trials()``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deepstart.experiments.trial import TRIAL_FIELDS, Trial

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SweepSpec", "SpecError", "load_spec"]

_SECTIONS = ("sweep", "base", "grid", "trials")
_SWEEP_KEYS = ("name", "max_members", "description")


class SpecError(ValueError):
    """A sweep spec is invalid; the message starts with ``file:line:`` where the line is known."""


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``base`` fields, a ``grid`` of lists (crossed), and explicit ``trials`` (each over ``base``)."""

    name: str
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    trials_list: tuple = ()
    max_members: int | None = None
    description: str = ""
    source: str | None = None  # TOML text, for error positions
    path: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            self._fail(f"sweep name must be letters, digits, '_', '-', '.', got {self.name!r}", "sweep", "name")
        if self.max_members is not None and (isinstance(self.max_members, bool)
                                             or not isinstance(self.max_members, int) or self.max_members < 1):
            self._fail(f"max_members must be an integer >= 1, got {self.max_members!r}", "sweep", "max_members")
        for section, table in (("base", self.base), ("grid", self.grid)):
            for key in table:
                if key not in TRIAL_FIELDS:
                    self._fail(f"unknown key {key!r} in [{section}]; valid keys: {', '.join(TRIAL_FIELDS)}",
                               section, key)
        for i, entry in enumerate(self.trials_list):
            for key in entry:
                if key not in TRIAL_FIELDS:
                    self._fail(f"unknown key {key!r} in [[trials]] #{i + 1}; valid keys: {', '.join(TRIAL_FIELDS)}",
                               "trials", key, i)
        self.trials()  # validates every value

    # -- expansion ---------------------------------------------------------------------------------------------
    def _grid_points(self):
        axes = []
        for key, values in self.grid.items():
            if key == "init_params" and isinstance(values, dict):
                sub = [(k, v if isinstance(v, list) else [v]) for k, v in values.items()]
                combos = [dict(zip([k for k, _ in sub], c)) for c in itertools.product(*[v for _, v in sub])]
                axes.append([(key, c) for c in combos])
            else:
                axes.append([(key, v) for v in (values if isinstance(values, list) else [values])])
        for combo in itertools.product(*axes):
            yield dict(combo)

    def trials(self) -> list[Trial]:
        """All trials, grid first then the explicit list, duplicates (same id) removed, order kept."""
        out, seen = [], set()
        sources = ([("grid", None, p) for p in self._grid_points()] if self.grid or not self.trials_list else [])
        sources += [("trials", i, e) for i, e in enumerate(self.trials_list)]
        for section, index, point in sources:
            config = {**self.base, **point}
            if "init_params" in self.base and "init_params" in point:
                config["init_params"] = {**self.base["init_params"], **point["init_params"]}
            try:
                trial = Trial(**config)
            except (TypeError, ValueError) as exc:
                key = _field_in(str(exc))
                where = section if key in point else "base"
                self._fail(str(exc), where, key, index if where == "trials" else None)
            if trial.id not in seen:
                seen.add(trial.id)
                out.append(trial)
        return out

    @property
    def hash(self) -> str:
        """SHA-256 (16 hex digits) of the canonical spec (the fields, not the TOML formatting)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"name": self.name, "base": self.base, "grid": self.grid, "trials": list(self.trials_list),
                "max_members": self.max_members, "description": self.description}

    @classmethod
    def from_dict(cls, data: dict, *, source: str | None = None, path: str | None = None) -> SweepSpec:
        return cls(name=data.get("name"), base=dict(data.get("base") or {}), grid=dict(data.get("grid") or {}),
                   trials_list=tuple(data.get("trials") or ()), max_members=data.get("max_members"),
                   description=data.get("description", ""), source=source, path=path)

    # -- errors with positions -------------------------------------------------------------------------------
    def _fail(self, message: str, section: str | None, key: str | None, index: int | None = None):
        line = _locate(self.source, section, key, index) if self.source else None
        prefix = f"{self.path or '<spec>'}:{line}: " if line else (f"{self.path}: " if self.path else "")
        raise SpecError(prefix + message)


def _field_in(message: str) -> str | None:
    """The Trial field named earliest in an error message (whole words), e.g. 'eta' in 'unknown eta schedule'."""
    hits = [(m.start(), k) for k in TRIAL_FIELDS for m in [re.search(rf"\b{k}\b", message)] if m]
    return min(hits)[1] if hits else None


def _locate(text: str, section: str | None, key: str | None, index: int | None = None) -> int | None:
    """1-based line of ``key`` inside ``[section]`` (``[[trials]]`` number ``index``; ``[grid.init_params]`` counts
    as grid). Falls back to the section header, then None."""
    current, count, header_line = None, -1, None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        head = re.fullmatch(r"\[\[\s*([\w.\-]+)\s*\]\]|\[\s*([\w.\-]+)\s*\]", line)
        if head:
            name = (head.group(1) or head.group(2)).split(".")[0]
            if head.group(1) and name == section:
                count += 1
            current = name
            if current == section and (index is None or count == index) and header_line is None:
                header_line = n
            continue
        if current != section or (index is not None and count != index) or key is None:
            continue
        if re.match(rf'^"?{re.escape(key)}"?\s*=', line) or re.match(rf"^{re.escape(key)}\s*=", line):
            return n
    return header_line


def load_spec(path_or_text: str | Path) -> SweepSpec:
    """Parse a TOML sweep spec from a file path (or TOML text containing a newline)."""
    if isinstance(path_or_text, Path) or "\n" not in str(path_or_text):
        path = str(path_or_text)
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise FileNotFoundError(f"sweep spec {path!r} not found") from None
    else:
        path, text = None, str(path_or_text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path or '<spec>'}: invalid TOML: {exc}") from None
    for section in data:
        if section not in _SECTIONS:
            raise SpecError(f"{path or '<spec>'}:{_locate(text, section, None) or '?'}: unknown section "
                            f"[{section}]; valid sections: {', '.join(_SECTIONS)}")
    sweep = data.get("sweep", {})
    for key in sweep:
        if key not in _SWEEP_KEYS:
            line = _locate(text, "sweep", key)
            raise SpecError(f"{path or '<spec>'}:{line}: unknown key {key!r} in [sweep]; valid: {', '.join(_SWEEP_KEYS)}")
    if "name" not in sweep:
        raise SpecError(f"{path or '<spec>'}:{_locate(text, 'sweep', None) or 1}: [sweep] needs name = \"...\"")
    if not isinstance(data.get("trials", []), list):
        raise SpecError(f"{path or '<spec>'}:{_locate(text, 'trials', None)}: use [[trials]] (array of tables)")
    return SweepSpec.from_dict({**sweep, "base": data.get("base"), "grid": data.get("grid"),
                                "trials": data.get("trials")}, source=text, path=path)
