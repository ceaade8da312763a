"""``deepstart sweep run|status|plot|export``: resumable training sweeps into a SQLite store."""
from __future__ import annotations

import sys
from pathlib import Path

from deepstart._json import dumps
from deepstart.cli._args import add_json, add_threads, check_json_target, device, emit_json, integer


def register(subparsers) -> None:
    parser = subparsers.add_parser("sweep", help="run, inspect, plot and export training sweeps",
                                   description="Resumable sweeps of training runs. A spec is a TOML file: "
                                   "[sweep] name, [base] fields shared by every trial, [grid] lists to cross, "
                                   "optional [[trials]]. The format is in docs/sweeps.md and in "
                                   "'python -m pydoc deepstart.experiments.spec'; a ready example, "
                                   "examples/sweeps/quick.toml, is in the source repository.")
    sub = parser.add_subparsers(dest="sweep_command", metavar="ACTION", required=True)

    run = sub.add_parser("run", help="run every pending trial of a TOML spec into a store")
    run.add_argument("spec", help="TOML sweep spec")
    run.add_argument("--store", required=True, metavar="FILE",
                     help="SQLite results file (created if missing; its folder must exist and be writable)")
    run.add_argument("--backend", choices=("local", "ray"), default="local",
                     help="local: this machine (default); ray: one Ray task per batch (needs the ray extra)")
    run.add_argument("--workers", type=integer(1), default=1,
                     help="local processes, or Ray CPUs for a local Ray instance (each local process gets "
                          "--threads / workers torch threads)")
    run.add_argument("--max-members", type=integer(1), default=None, help="most networks per vectorized batch")
    run.add_argument("--ray-address", default=None, help="existing Ray cluster: 'auto' or 'ray://HOST:10001'")
    run.add_argument("--device", type=device, default="cpu",
                     help="where training runs: cpu (default), cuda, cuda:N or mps; part of each result's fingerprint")
    run.add_argument("--reuse-stale", action="store_true",
                     help="keep stored results whose fingerprint (code, data, torch, dtype, device) differs from now "
                          "instead of training them again (either way they are counted as stale)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_threads(run)
    run.set_defaults(handler=_run)

    status = sub.add_parser("status", help="planned / finished / diverged / pending trials")
    status.add_argument("--store", required=True, metavar="FILE", help="SQLite results file of 'sweep run'")
    status.add_argument("--sweep", default=None, help="one sweep (default: every sweep in the store)")
    add_json(status, "the counts")
    status.set_defaults(handler=_status)

    plot = sub.add_parser("plot", help="learning curves and a depth x init heatmap")
    plot.add_argument("--store", required=True, metavar="FILE", help="SQLite results file of 'sweep run'")
    plot.add_argument("--sweep", default=None, help="one sweep (default: every sweep in the store)")
    plot.add_argument("--out", default=".", metavar="DIR",
                      help="output folder, created if missing (default: the current folder)")
    plot.add_argument("--format", choices=("png", "svg"), default="png", help="image format (default png)")
    plot.add_argument("--metric", default="test_acc", help="curve metric: test_acc, train_acc, train_loss, test_loss")
    plot.add_argument("--value", default="best_test_acc",
                      help="heatmap value: best_test_acc, final_test_acc, epochs_to_20, steps_to_20, ...")
    plot.set_defaults(handler=_plot)

    export = sub.add_parser("export", help="write finished trials as CSV")
    export.add_argument("--store", required=True, metavar="FILE", help="SQLite results file of 'sweep run'")
    export.add_argument("--sweep", default=None, help="one sweep (default: every sweep in the store)")
    export.add_argument("--csv", required=True, metavar="FILE", help="output CSV file (its folder must exist)")
    export.set_defaults(handler=_export)


def _open(path: str):
    from deepstart.experiments.store import Store

    if not Path(path).exists():
        raise FileNotFoundError(f"store {path!r} does not exist; create it with 'deepstart sweep run SPEC --store {path}'")
    return Store(path)


def _run(args) -> int:
    from deepstart._io import check_output_file
    from deepstart.experiments.runners import run_sweep

    store = check_output_file(args.store, "--store")
    if store.exists() and not store.is_file():
        raise ValueError(f"--store {args.store}: is not a regular file")
    if args.backend == "ray":
        from deepstart.experiments.runners.ray_backend import check_ray_address

        check_ray_address(args.ray_address)
    elif args.ray_address:
        raise ValueError("--ray-address applies to --backend ray only")

    summary = run_sweep(args.spec, args.store, backend=args.backend, workers=args.workers,
                        max_members=args.max_members, progress=not args.no_progress, ray_address=args.ray_address,
                        device=args.device, reuse_stale=args.reuse_stale)
    print(dumps(summary.to_dict()))
    return 0


def _status(args) -> int:
    check_json_target(args)
    with _open(args.store) as store:
        sweeps = [args.sweep] if args.sweep else store.sweeps()
        rows = [store.status(s) for s in sweeps]
    if args.json:
        emit_json(args, rows)
    else:
        for r in rows:
            print(f"{r['sweep']}: {r['finished']}/{r['planned']} finished, {r['diverged']} diverged, "
                  f"{r['pending']} pending")
    return 0


def _plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepstart.experiments.sweep_plots import plot_curves, plot_heatmap

    from deepstart._io import atomic_savefig, check_output_folder

    out = check_output_folder(args.out, "--out")
    with _open(args.store) as store:
        results = store.results(args.sweep)
    if not results:
        raise ValueError(f"no finished trials in {args.store}" + (f" for sweep {args.sweep!r}" if args.sweep else ""))
    out.mkdir(parents=True, exist_ok=True)
    stem = args.sweep or "all"
    paths = []
    for kind, fn, kw in (("curves", plot_curves, {"metric": args.metric}), ("heatmap", plot_heatmap, {"value": args.value})):
        fig, _ = fn(results, **kw)
        path = out / f"{stem}_{kind}.{args.format}"
        atomic_savefig(fig, path, bbox_inches="tight")
        plt.close(fig)
        paths.append(str(path))
    print("\n".join(paths))
    return 0


def _export(args) -> int:
    from deepstart._io import check_output_file

    check_output_file(args.csv, "--csv")
    with _open(args.store) as store:
        n = store.export_csv(args.csv, args.sweep)
    print(f"wrote {n} trials to {args.csv}", file=sys.stderr)
    return 0
