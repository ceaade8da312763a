"""Text form of schemes: ``name``, ``name(v1, key=v2, ...)`` with nested calls, lists and fractions (``1/64``)."""
from __future__ import annotations

import re

__all__ = ["parse_call", "convert_value", "format_value", "split_top_level"]

_NAME = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*(?:\((.*)\))?\s*$", re.S)
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_FRACTION = re.compile(rf"^({_NUMBER})\s*/\s*({_NUMBER})$")
_FLOAT = re.compile(rf"^{_NUMBER}$|^[+-]?inf$|^nan$", re.I)


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at ``sep`` outside parentheses, brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' or ']' in {text!r}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise ValueError(f"unbalanced brackets or quotes in {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def convert_value(raw: str):
    """``"0.8"`` → 0.8, ``"1/64"`` → 0.015625, ``"true"`` → True, ``"none"`` → None, ``"[1, 0.5]"`` → (1.0, 0.5),
    quoted text → the text; anything else (names, nested calls such as ``"he"`` or ``"geometric(0.9)"``) is kept as
    the stripped string for the scheme to interpret."""
    raw = raw.strip()
    low = raw.lower()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if _FLOAT.match(raw):
        return float(raw)
    frac = _FRACTION.match(raw)
    if frac:
        den = float(frac.group(2))
        if den == 0:
            raise ValueError(f"division by zero in {raw!r}")
        return float(frac.group(1)) / den
    if raw.startswith("[") and raw.endswith("]"):
        return tuple(convert_value(p) for p in split_top_level(raw[1:-1]))
    return raw


def parse_call(text: str) -> tuple[str, list, dict]:
    """``"fractional-moment(0.8, activation=relu)"`` → ``("fractional-moment", [0.8], {"activation": "relu"})``.

    The name is lower-cased with ``_`` turned into ``-``. Raises ValueError for malformed text.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a scheme text such as 'he' or 'orthogonal(gain=1.0)', got {text!r}")
    match = _NAME.match(text)
    if not match:
        raise ValueError(f"cannot parse {text!r}; expected 'name' or 'name(key=value, ...)', "
                         "e.g. 'fractional-moment(s=0.8, activation=relu)'")
    name = match.group(1).lower().replace("_", "-")
    args, kwargs = [], {}
    for part in split_top_level(match.group(2) or ""):
        key, eq, value = part.partition("=")
        if eq and re.fullmatch(r"\s*[A-Za-z_]\w*\s*", key):
            key = key.strip()
            if key in kwargs:
                raise ValueError(f"argument {key!r} given twice in {text!r}")
            kwargs[key] = convert_value(value)
        else:
            if kwargs:
                raise ValueError(f"positional argument {part!r} after keyword arguments in {text!r}")
            args.append(convert_value(part))
    return name, args, kwargs


def format_value(value) -> str:
    """Inverse of :func:`convert_value` for ids: floats with ``repr``, tuples as lists, schemes by their id."""
    if hasattr(value, "id"):
        return value.id
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)
