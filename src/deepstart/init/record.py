"""What :func:`deepstart.init.apply_` did: one row per parameter, printable as a table, JSON-serializable."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from deepstart._json import dumps

__all__ = ["InitEntry", "InitRecord"]


@dataclass(frozen=True)
class InitEntry:
    """One initialized parameter.

    ``std`` is the standard deviation the scheme used per entry: the σ of the law it drew from (for orthogonal
    schemes gain/√max(rows, cols), for delta-orthogonal that spread over all taps; for ``pytorch-default`` the
    measured RMS). ``note`` carries extras such as the residual multiplier (``"eta=0.5"``).
    """

    name: str
    shape: tuple
    fan_in: int | None
    std: float
    scheme: str
    note: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InitEntry":
        return cls(d["name"], tuple(d["shape"]), d.get("fan_in"), float(d["std"]), d["scheme"], d.get("note", ""))


@dataclass(frozen=True)
class InitRecord:
    """The parameters :func:`~deepstart.init.apply_` touched, in ``named_modules()`` order.

    Example:
        >>> rec = InitRecord("he", (InitEntry("0.weight", (4, 3), 3, 0.816, "he"),))
        >>> InitRecord.from_json(rec.to_json()) == rec
        True
    """

    scheme: str
    entries: tuple = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, name: str) -> InitEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(f"no parameter {name!r} in this record; recorded: {[e.name for e in self.entries]}")

    @property
    def names(self) -> tuple:
        return tuple(e.name for e in self.entries)

    def to_dict(self) -> dict:
        return {"scheme": self.scheme, "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, d: dict) -> "InitRecord":
        return cls(d["scheme"], tuple(InitEntry.from_dict(e) for e in d["entries"]))

    def to_json(self, **kwargs) -> str:
        return dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> "InitRecord":
        return cls.from_dict(json.loads(text))

    def table(self) -> str:
        """A plain-text table: parameter, shape, fan_in, std, scheme (and note where any)."""
        header = ("parameter", "shape", "fan_in", "std", "scheme", "note")
        rows = [(e.name, "×".join(map(str, e.shape)), "" if e.fan_in is None else str(e.fan_in), f"{e.std:.4g}",
                 e.scheme, e.note) for e in self.entries]
        if not any(r[-1] for r in rows):
            header, rows = header[:-1], [r[:-1] for r in rows]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in (header, *rows)]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"InitRecord(scheme={self.scheme!r}, {len(self.entries)} parameters)\n{self.table()}"
