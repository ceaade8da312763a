"""How to install an optional extra: one sentence for every error message and doc that needs it.

deepstart is installed from its repository (there is no package-index release): ``pip install '.[EXTRA]'`` in a
clone, or pip's direct reference to the repository's git URL.
"""
from __future__ import annotations

__all__ = ["install_hint"]


def install_hint(extra: str) -> str:
    """``"pip install '.[hf]' in a clone of the deepstart repository (or ...)"`` for ``extra``."""
    return (f"pip install '.[{extra}]' in a clone of the deepstart repository (or pip install "
            f"'deepstart[{extra}] @ git+REPOSITORY_URL'; deepstart is not on a package index)")
