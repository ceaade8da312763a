"""Developer tools that are not part of the ``deepstart`` library (run from the repository root)."""
