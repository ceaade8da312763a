"""``deepstart reproduce PAPER [--quick|--full] [--out DIR] [--store results.db] [--backend local|ray]``.

Runs a paper reproduction (``hanin-rolnick``, ``sussillo-abbott``, ``gurbuzbalaban-hu``, ``pennington`` or ``all``)
and writes ``PAPER.html`` (self-contained), ``PAPER.md``, ``PAPER.json``, the PNG figures and ``index.md`` into
``--out``; training results go to ``--store`` (default ``OUT/results.db``) so a rerun resumes. --out must be a new or
empty folder, or one only deepstart reproduce wrote (it keeps a list in OUT/.deepstart-reproduce.json); any other
folder (such as a tracked docs/reproductions) is refused unless --gallery is given. index.md lists every paper
reported in --out. Exit codes: 0 done; 2 usage error (bad option, refused --out, unusable --device); 3 data was
missing (what was computed is still written; the message says what to fetch).
"""
from __future__ import annotations

from deepstart.cli._args import add_threads, device, integer, plain

MISSING_DATA = 3  # exit code: a reproduction's dataset was not found

PAPER_CHOICES = ("hanin-rolnick", "sussillo-abbott", "gurbuzbalaban-hu", "pennington", "all")


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="reproduce a paper's claims and write an HTML report",
                              description=plain(__doc__.split("\n\n")[1].replace("\n", " ")))
    p.add_argument("paper", help=f"one of: {', '.join(PAPER_CHOICES)}")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="reduced sizes, 3-15 minutes per paper on 2 CPU cores (default)")
    size.add_argument("--full", dest="mode", action="store_const", const="full", help="the papers' own sizes")
    size.add_argument("--tiny", dest="mode", action="store_const", const="tiny", help="seconds; for tests")
    p.set_defaults(mode="quick")
    p.add_argument("--out", default="reproductions", help="output folder (default: ./reproductions)")
    p.add_argument("--store", default=None, help="results store (SQLite; default OUT/results.db)")
    p.add_argument("--backend", default="local", choices=("local", "ray"), help="where training runs")
    p.add_argument("--workers", type=integer(1), default=1, help="parallel training workers (default 1)")
    p.add_argument("--seed", type=integer(0), default=0, help="base seed of simulations and training (default 0)")
    p.add_argument("--gallery", default=None, metavar="PATH",
                   help="also write the gallery Markdown (e.g. docs/reproductions.md), images linked relative to it; "
                        "allows writing into an --out holding other files (updating a tracked gallery on purpose)")
    p.add_argument("--device", type=device, default="cpu", help="where training runs: cpu (default), cuda, cuda:N, mps")
    p.add_argument("--reuse-stale", action="store_true",
                   help="keep stored training results made by different code/data/torch/device instead of retraining")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_threads(p)
    p.add_argument("--force", action="store_true",
                   help="allow --out to hold reports of another size (--tiny/--quick/--full); refused otherwise")
    p.set_defaults(handler=_handle)


def _check_outputs(args) -> None:
    """Every output path usable before any simulation or training starts (exit 2, one line)."""
    from deepstart._io import check_output_file, check_output_folder

    from pathlib import Path

    out = check_output_folder(args.out, "--out")
    inside_new_out = args.store is not None and not out.exists() and \
        Path(args.store).resolve().parent == out.resolve()  # created with --out
    if args.store is not None and not inside_new_out:
        check_output_file(args.store, "--store")
    if args.gallery is not None:
        check_output_file(args.gallery, "--gallery")
    if args.backend == "ray":
        from deepstart.experiments.runners.ray_backend import check_ray_address

        check_ray_address(None)


def _handle(args) -> int:
    from deepstart.cli import UsageError

    if args.paper not in PAPER_CHOICES:
        raise UsageError(f"unknown paper {args.paper!r}; valid: {', '.join(PAPER_CHOICES)}")
    _check_outputs(args)
    from deepstart.experiments.reproduce import reproduce

    reports = reproduce(args.paper, args.mode, out=args.out, store=args.store, backend=args.backend, seed=args.seed,
                        progress=not args.no_progress, workers=args.workers, device=args.device,
                        reuse_stale=args.reuse_stale, overwrite=bool(args.gallery), force=args.force)
    if args.gallery:
        import os
        from pathlib import Path

        from deepstart.experiments.reproduce import write_gallery

        gallery = Path(args.gallery)
        prefix = os.path.relpath(Path(args.out).resolve(), gallery.resolve().parent).replace(os.sep, "/") + "/"
        write_gallery(reports, gallery, image_prefix="" if prefix == "./" else prefix, out=args.out)
        print(f"gallery written to {gallery}")
    for r in reports:
        counts = ", ".join(f"{n} {s}" for s, n in r.status_counts().items())
        print(f"{r.paper} ({r.mode}, {r.seconds:.0f} s): {counts} -> {args.out}/{r.paper}.html")
        for row in r.claim_rows():
            print(f"  [{row['status']}] {row['claim']}: {row['measurement'][:160]}")
    from deepstart.experiments.reproduce import missing_data, missing_data_advice

    missing = missing_data(reports)
    if missing:
        import sys

        print(f"deepstart reproduce: {missing_data_advice(missing)}", file=sys.stderr)
        return MISSING_DATA
    return 0
