"""Command-line interface: a thin layer over the library.

``main(argv) -> int`` builds one argparse parser. Each subcommand lives in its own module of this
package and exposes ``register(subparsers)``, which adds its parser and sets ``handler`` (a function
``(args) -> int``). Modules are discovered, so adding a subcommand touches no other file.

Exit codes: 0 success / healthy, 1 findings at or above ``--fail-on`` (``check``), 2 usage errors.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import sys

from deepstart import __version__

USAGE_ERROR = 2


class UsageError(Exception):
    """Raised by handlers for bad user input; printed without a traceback, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2): the message and where to read the usage, no usage dump.
    Subparsers are built from this class too (``add_subparsers`` uses the parent's class)."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# Python keyword spellings in library errors, as the CLI spells them (``device='cpu'`` -> ``--device cpu``)
_SPELLINGS = (
    (re.compile(r"\bdevice=(['\"])([^'\"]*)\1"), r"--device \2"),
    (re.compile(r"\breinit=\.\.\."), "--init SCHEME"),
    (re.compile(r"\breinit=(?=\W|$)"), "--init"),
    (re.compile(r"\binput_shape="), "--input-shape "),
    (re.compile(r"\bbatch_size="), "--batch "),
    (re.compile(r"\bn_inits="), "--n-inits "),
)


def cli_spelling(message: str) -> str:
    """``message`` with the library's keyword spellings replaced by the CLI's options."""
    for pattern, replacement in _SPELLINGS:
        message = pattern.sub(replacement, message)
    return message


def _subcommand_modules():
    package = importlib.import_module("deepstart.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"deepstart.cli.{info.name}")
        if hasattr(module, "register"):
            yield module


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="deepstart",
        description="Will this network start training? Diagnose and fix initialization of PyTorch models.",
    )
    parser.add_argument("--version", action="version", version=f"deepstart {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _subcommand_modules():
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help/--version (0) and on usage errors (2)
        return int(exc.code or 0)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0 if not argv else USAGE_ERROR
    try:
        from deepstart.cli._args import threads_applied

        with threads_applied(args):
            return int(handler(args))
    except (UsageError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"deepstart {args.command}: error: {cli_spelling(str(exc))}", file=sys.stderr)
        return USAGE_ERROR


def entry_point() -> None:  # console script
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
