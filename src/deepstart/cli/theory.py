"""``deepstart theory critical|point|phase|lengths``: mean-field and finite-width predictions from the command line.

Each takes ``--json`` (or ``--json -``) for one JSON document on stdout, ``--json FILE`` to write it. NumPy/SciPy
only (no torch import).

Examples (the exit code each gives is in its comment):

  deepstart theory critical --activation tanh --q-star 1/64  # exit 0
  deepstart theory point --activation tanh --sigma-w 1.2 --sigma-b 0.1 --json -  # exit 0
  deepstart theory phase --activation tanh --sigma-w 0.5:3:32 --sigma-b 0:0.5:16  # exit 0
  deepstart theory lengths --widths 64x100  # exit 0
"""
from __future__ import annotations

import argparse

from deepstart.cli._args import _float, add_json, check_json_target, emit_json, integer, number

_q_star = number(0, strict=True, what="the fixed-point length q*")
_sigma_w = number(0, strict=True, what="a standard deviation")
_sigma_b = number(0, what="a standard deviation")
_variance = number(0, what="a variance")


def _grid(minimum: float, strict: bool):
    """``type=`` for ``"start:stop:count"`` (linspace) or a comma list, every value ``>= minimum``
    (``> minimum`` when ``strict``)."""
    def parse(text: str):
        import numpy as np

        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise argparse.ArgumentTypeError(f"{text!r}: use start:stop:count, e.g. 0.05:4:256, or a comma list")
            count = integer(1)(parts[2])
            values = np.linspace(_float(parts[0]), _float(parts[1]), count)
        else:
            values = np.array([_float(t) for t in text.split(",") if t.strip()])
            if values.size == 0:
                raise argparse.ArgumentTypeError(f"{text!r}: give start:stop:count or a comma list of numbers")
        if np.any(values <= minimum if strict else values < minimum):
            raise argparse.ArgumentTypeError(f"{text!r}: values must be {'>' if strict else '>='} {minimum:g} "
                                             "(standard deviations)")
        return values
    parse.__name__ = "grid"
    return parse


def _widths(text: str) -> str:
    """The width profile as written (it is echoed in the output), checked here so a bad one is a usage error."""
    from deepstart.theory.finite_width import parse_widths

    try:
        parse_widths(text)
        return text
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scalar(value):
    """One-element lists/arrays (per-activation results of a single point) as plain numbers."""
    import numpy as np

    if isinstance(value, (list, tuple, np.ndarray)) and np.size(value) == 1:
        value = np.asarray(value).reshape(()).item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def register(subparsers) -> None:
    from deepstart.cli._args import plain

    parser = subparsers.add_parser("theory", help="mean-field and finite-width predictions at initialization",
                                   description="Critical points, phase diagrams (Poole et al. 2016, Schoenholz et al. "
                                               "2017) and FM1/FM2 length laws (Hanin & Rolnick 2018).",
                                   epilog=plain(__doc__.split("\n\n", 2)[2]),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="theory_command", metavar="ACTION", required=True)

    crit = sub.add_parser("critical", help="(sigma_w, sigma_b) on the critical line chi_1 = 1")
    crit.add_argument("--activation", default="tanh",
                      help="activation name, e.g. tanh, relu, 'leaky_relu(negative_slope=0.2)'")
    group = crit.add_mutually_exclusive_group()
    group.add_argument("--q-star", type=_q_star, default=None, help="fixed point q* (e.g. 1/64)")
    group.add_argument("--sigma-b", type=_sigma_b, default=None, help="bias standard deviation (solve for q*)")
    add_json(crit)
    crit.set_defaults(handler=_critical)

    point = sub.add_parser("point", help="q*, chi_1, depth scales at one (sigma_w, sigma_b)")
    point.add_argument("--activation", default="tanh",
                       help="activation name, e.g. tanh, relu, 'leaky_relu(negative_slope=0.2)'")
    point.add_argument("--sigma-w", type=_sigma_w, required=True, help="weight standard deviation (x 1/sqrt(fan_in))")
    point.add_argument("--sigma-b", type=_sigma_b, default=0.0, help="bias standard deviation")
    point.add_argument("--depth", type=integer(1), default=None, help="also report chi_1^depth (gradient growth)")
    add_json(point)
    point.set_defaults(handler=_point)

    phase = sub.add_parser("phase", help="order/chaos phase diagram over (sigma_w, sigma_b)")
    phase.add_argument("--activation", default="tanh",
                       help="activation name, e.g. tanh, relu, 'leaky_relu(negative_slope=0.2)'")
    phase.add_argument("--sigma-w", type=_grid(0, strict=True), default="0.05:4:256",
                       help="grid start:stop:count or a comma list (default 0.05:4:256)")
    phase.add_argument("--sigma-b", type=_grid(0, strict=False), default="0:1:256",
                       help="grid start:stop:count or a comma list (default 0:1:256)")
    phase.add_argument("--out", default=None, metavar="FILE",
                       help="write the figure here (png, pdf, svg by the suffix; its folder must exist)")
    add_json(phase, "the grids")
    phase.set_defaults(handler=_phase)

    lengths = sub.add_parser("lengths", help="FM1/FM2 prediction for a width profile (Hanin & Rolnick 2018)")
    lengths.add_argument("--widths", type=_widths, required=True,
                         help="'64x100' (100 layers of width 64), '10,40,10', '64x10,128x5'")
    lengths.add_argument("--activation", default="relu", help="relu, leaky_relu or linear")
    lengths.add_argument("--weight-scale", type=number(0, strict=True, what="C of C/fan_in"), default=None,
                         help="weight variance = C/fan_in (default: critical, 2 for relu)")
    lengths.add_argument("--bias-var", type=_variance, default=0.0, help="bias variance")
    lengths.add_argument("--fourth-moment", type=number(1, what="E w^4/sigma^4 >= 1 by Jensen's inequality"),
                         default=3.0, help="E w^4/sigma^4 (3 Gaussian, 1.8 uniform)")
    lengths.add_argument("--in-features", type=integer(1), default=None, help="input width n_0 (default: first width)")
    lengths.add_argument("--threshold", type=number(0, strict=True, what="nats"), default=1.0,
                         help="nats of log M_d for FM1/FM2 (default 1)")
    add_json(lengths)
    lengths.set_defaults(handler=_lengths)


def _critical(args) -> int:
    from deepstart.theory import critical_point

    check_json_target(args)
    cp = critical_point(args.activation, q_star=args.q_star, sigma_b=args.sigma_b)
    if args.json:
        emit_json(args, cp.to_dict())
    else:
        print(cp)
    return 0


def _point(args) -> int:
    from deepstart.theory import depth_scales, gradient_growth
    from deepstart.theory._results import fmt, plain

    check_json_target(args)
    ds = depth_scales(args.activation, args.sigma_w, args.sigma_b)
    out = {"activation": args.activation, "sigma_w": args.sigma_w, "sigma_b": args.sigma_b,
           **{k: _scalar(v) for k, v in ds.to_dict().items()}}
    if args.depth is not None:
        out["gradient_growth"] = _scalar(plain(gradient_growth(args.activation, args.sigma_w, args.sigma_b,
                                                               args.depth)))
    chi_1 = out["chi_1"]
    out["phase"] = "critical" if abs(chi_1 - 1) < 1e-9 else ("chaotic" if chi_1 > 1 else "ordered")
    if args.json:
        emit_json(args, out)
    else:
        print("\n".join(f"{k:>16}: {fmt(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else v}"
                        for k, v in out.items()))
    return 0


def _phase(args) -> int:
    from deepstart.theory import phase_diagram

    check_json_target(args)
    if args.out:
        from deepstart._io import check_output_file

        check_output_file(args.out, "--out")
    pd = phase_diagram(args.activation, args.sigma_w, args.sigma_b)
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, _ = pd.plot()
        from deepstart._io import atomic_savefig

        atomic_savefig(fig, args.out, dpi=120, bbox_inches="tight")
        plt.close(fig)
    if args.json:
        emit_json(args, pd.to_dict())
    else:
        crit = pd.critical_sigma_w()
        print(f"{pd.activation}: {pd.chi_1.size} points, {int(pd.chaotic.sum())} chaotic")
        for sb, sw in list(zip(pd.sigma_b, crit))[:: max(1, len(crit) // 8)]:
            print(f"  sigma_b = {sb:.4g}: critical sigma_w = {sw:.6g}")
        if args.out:
            print(f"figure: {args.out}")
    return 0


def _lengths(args) -> int:
    import numpy as np

    from deepstart.theory import failure_modes, length_moments
    from deepstart.theory.finite_width import parse_widths

    check_json_target(args)
    widths = parse_widths(args.widths)
    fans = [args.in_features or widths[0], *widths[:-1]]
    kw = dict(activation=args.activation, bias_var=args.bias_var, fourth_moment=args.fourth_moment,
              in_features=args.in_features,
              weight_var=None if args.weight_scale is None else [args.weight_scale / f for f in fans])
    lm = length_moments(widths, **kw)
    fm = failure_modes(widths, threshold=args.threshold, **kw)
    if args.json:
        emit_json(args, {"widths_spec": args.widths, "depth": len(widths), "beta": lm.beta,
                          "mean_ratio": float(lm.mean_ratio[-1]), "second_ratio": float(lm.second_ratio[-1]),
                          "log_mean": float(lm.log_mean[-1]), "log_var": float(lm.log_var[-1]),
                          "log_exact": lm.log_exact, "failure_modes": fm.to_dict()})
    else:
        print(f"{len(widths)} layers, widths {args.widths}: beta = sum 1/n_j = {lm.beta:.4g}")
        print(f"  E[M_d]/M_0 = {lm.mean_ratio[-1]:.6g}, E[M_d^2]/M_0^2 = {lm.second_ratio[-1]:.6g}")
        print(f"  E log(M_d/M_0) = {lm.log_mean[-1]:.6g}, Var log M_d = {lm.log_var[-1]:.6g}"
              f"{'' if lm.log_exact else ' (lognormal approximation)'}; 95% of nets within a factor "
              f"{np.exp(1.96 * np.sqrt(lm.log_var[-1])):.3g} of exp(E log M)")
        print(fm.summary())
    return 0
