"""``deepstart data fetch NAME [--root DIR]`` and ``deepstart data where``: download datasets, show where they live."""
from __future__ import annotations

import sys

from deepstart.cli._args import add_json, check_json_target, emit_json


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="download datasets and show where they are read from",
                                   description="MNIST, Fashion-MNIST and CIFAR-10: verified downloads and locations.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    fetch = sub.add_parser("fetch", help="download a dataset (checksums verified, partial files resumed)")
    fetch.add_argument("name", help="mnist, fashion-mnist or cifar10")
    fetch.add_argument("--root", default=None, help="data folder (default: $DEEPSTART_DATA, else ~/.cache/deepstart/data)")
    fetch.add_argument("--mirror", action="append", default=None, metavar="URL",
                       help="mirror laid out like the data root (repeatable; default: $DEEPSTART_MIRROR, else the "
                            "canonical sources)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    fetch.set_defaults(handler=_fetch)

    where = sub.add_parser("where", help="print the data root, the decode cache and which datasets are present")
    where.add_argument("--root", default=None, help="data folder to inspect instead of the default")
    add_json(where, "the locations")
    where.set_defaults(handler=_where)


def _fetch(args) -> int:
    from deepstart.data import fetch

    if args.root is not None:
        from deepstart._io import check_output_folder

        check_output_folder(args.root, "--root")
    try:
        paths = fetch(args.name, root=args.root, base_urls=args.mirror, progress=not args.no_progress)
    except ValueError:
        raise
    except OSError as exc:  # network failures: not a usage error
        print(f"deepstart data fetch: error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def _where(args) -> int:
    from deepstart.data import where

    check_json_target(args)
    location = where(args.root)
    if args.json:
        emit_json(args, location.to_dict())
    else:
        print(location)
    return 0
