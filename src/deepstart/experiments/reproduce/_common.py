"""Shared machinery of the reproductions: size modes, the report builder, training through the sweep store, and
batched signal-propagation simulations (plain torch: many independent random networks in one ``bmm``)."""
from __future__ import annotations

import math
import time
from pathlib import Path

from deepstart.experiments.reproduce.claims import Claim
from deepstart.experiments.reproduce.report import PaperReport, figure_from_matplotlib

MODES = ("tiny", "quick", "full")
MODE_TAGS = {"tiny": "tiny: test sizes", "quick": "quick: reduced sizes", "full": "full: the paper's sizes"}
DATASET_LABELS = {"toy": "toy (synthetic 10-class, 8×8)", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST",
                  "cifar10": "CIFAR-10 (JPEG copy)"}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown reproduction mode {mode!r}; valid: {', '.join(MODES)} "
                         "(tiny for tests, quick 3-15 min per paper on 2 cores, full for the papers' sizes)")
    return mode


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


class ReportBuilder:
    """Collects claims, figures and notes while a reproduction runs; :meth:`build` freezes them into a report.

    ``device``/``reuse_stale``: where training runs and whether stale stored results are kept (see
    :func:`deepstart.experiments.runners.run_sweep`). Datasets training could not find are collected in
    :attr:`missing_data` and reported in the built report's ``extra["missing_data"]``."""

    def __init__(self, paper: str, title: str, citation: str, mode: str, settings: dict, *, store=None,
                 backend: str = "local", workers: int = 1, progress: bool = False, device=None,
                 reuse_stale: bool = False):
        self.paper, self.title, self.citation, self.mode = paper, title, citation, check_mode(mode)
        self.settings = dict(settings)
        self.store, self.backend, self.workers, self.progress = store, backend, workers, progress
        self.device, self.reuse_stale = device, reuse_stale
        self.missing_data: set = set()
        self.claims: list[Claim] = []
        self.figures: list = []
        self.notes: list[str] = []
        self._t0 = time.perf_counter()

    def claim(self, *args, **kwargs) -> Claim:
        c = Claim(*args, **kwargs)
        self.claims.append(c)
        return c

    def figure(self, fig, name: str, caption: str) -> None:
        """Add a matplotlib figure; outside ``full`` mode it is titled with the mode ("quick: reduced sizes")."""
        if self.mode != "full":
            fig.suptitle(MODE_TAGS[self.mode], fontsize=9, color="darkred", y=1.02)
        self.figures.append(figure_from_matplotlib(fig, name, caption))

    def section(self, name: str, fn, claims: tuple = ()) -> None:
        """Run ``fn(self)``. If it fails (a part it needs is missing: ImportError; or any error) the listed claims are
        recorded as not evaluated with the reason, and the other sections still run."""
        try:
            fn(self)
        except ImportError as exc:
            self._skip(name, claims, f"needs {getattr(exc, 'name', None) or exc}, which is not available")
        except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others' results
            self._skip(name, claims, f"failed: {type(exc).__name__}: {exc}")

    def _skip(self, name: str, claims, why: str) -> None:
        reason = f"section {name!r} {why}"
        self.notes.append(reason)
        done = {c.claim for c in self.claims}
        for claim, statement in claims:
            if claim not in done:
                self.claims.append(Claim.not_evaluated(claim, statement, reason))

    def usable_inits(self, activation: str, inits, *, in_features: int = 784, width: int = 64,
                     out_features: int = 10):
        """The init schemes of ``inits`` that can initialize an ``activation`` net with the fan-ins of the net that
        will be trained (``in_features`` for the first layer, ``width`` for the others: a one-hidden-layer probe
        has both); the others are noted. Some gains exist only above a fan-in (tanh random walk: N ≥ 9), so the
        probe must use the real sizes (defaults: an MNIST net of width 64)."""
        from deepstart.experiments.models import mlp

        ok = []
        for init in inits:
            try:
                mlp(in_features, out_features, depth=1, width=width, activation=activation, init=init)
                ok.append(init)
            except (ValueError, TypeError, NotImplementedError) as exc:
                self.notes.append(f"init {init!r} left out for {activation}: {exc}")
        return ok

    def train(self, section: str, trials: list) -> dict:
        """Train ``trials`` through the sweep store (finished trials are skipped on a rerun); ``{trial.id: result}``.

        Data that is not there raises FileNotFoundError (the section is then "not evaluated"); the datasets it
        concerns are added to :attr:`missing_data`."""
        from deepstart.experiments.runners import run_sweep
        from deepstart.experiments.store import Store

        if self.store is None:
            import tempfile

            self.store = Path(tempfile.mkdtemp(prefix="deepstart-reproduce-")) / "results.db"
            self.notes.append("no store given: training results written to a temporary store (not kept)")
        name = f"reproduce/{self.paper}/{self.mode}/{section}"
        with Store(self.store) as store:
            try:
                summary = run_sweep(trials, store, backend=self.backend, workers=self.workers, name=name,
                                    progress=self.progress, device=self.device, reuse_stale=self.reuse_stale)
            except FileNotFoundError:
                self.missing_data.update(_missing_datasets({t.dataset for t in trials}))
                raise
            results = {r.trial_id: r for r in store.results(name)}
            # each trial of a vectorized batch records the batch's time: count it once per batch
            spent = sum(results[t.id].seconds / max(results[t.id].batch_members, 1) for t in trials if t.id in results)
            self.notes.append(f"training {section!r}: {summary.ran} trial(s) trained now, {summary.skipped} taken from "
                              f"the store ({summary.reused_stale} of them stale, kept by --reuse-stale); "
                              f"{spent:.0f} s of training wall time, as measured when it ran")
            return results

    def build(self) -> PaperReport:
        from deepstart.experiments.reproduce.registry import paper_fingerprint

        extra = {"missing_data": sorted(self.missing_data)} if self.missing_data else {}
        extra.update(fingerprint=paper_fingerprint(self.paper), machine=machine())
        return PaperReport(self.paper, self.title, self.citation, self.mode, self.settings, tuple(self.claims),
                           tuple(self.figures), tuple(self.notes), time.perf_counter() - self._t0, extra=extra)


def machine() -> dict:
    """Where a report was computed: platform, CPU count, torch threads, the 1-minute load average at the end (other
    jobs on the machine slow every wall time), torch version; and the date."""
    import os
    import platform

    import torch

    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:  # not on every platform
        load = None
    return {"platform": platform.platform(terse=True), "processor": platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_1min": load, "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _missing_datasets(names) -> set:
    """Those of ``names`` that ``deepstart.data.where()`` reports missing (all but "toy" if it finds them all)."""
    from deepstart.experiments.data import where
    from deepstart.experiments.data.registry import get_info

    names = {n for n in names if n != "toy"}
    status = where().datasets
    missing = set()
    for n in names:
        try:
            key = get_info(n).name
        except ValueError:
            key = n
        if not status.get(key, "missing").startswith("found"):
            missing.add(key)
    return missing or names


def new_axes(ncols: int = 1, width: float = 4.6, height: float = 3.4):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


# --- batched simulations (torch) -------------------------------------------------------------------------------
def _phi(activation: str):
    from deepstart.experiments.models import make_activation

    return make_activation(activation)


def mlp_lengths(n_in: int, widths, weight_vars, n_nets: int, *, activation: str = "relu", law: str = "normal",
                generator=None):
    """``M_j/M_0`` (``M = ||x||²/n``) after each layer of ``n_nets`` independent fully connected nets, zero biases.

    ``weight_vars[j]`` is the *absolute* variance of layer j's weights; ``law`` "normal", "uniform" or "truncated"
    (a normal cut at ±2σ), all rescaled to that variance.
    Returns a float64 tensor ``[n_nets, len(widths) + 1]`` (column 0 is 1). One unit-length random input per net.
    """
    import torch

    phi = _phi(activation)
    x = torch.randn(n_nets, n_in, 1, generator=generator)
    m0 = (x.square().sum(1) / n_in).squeeze(-1)
    out = [torch.ones(n_nets, dtype=torch.float64)]
    n_prev = n_in
    for n, var in zip(widths, weight_vars):
        if law == "normal":
            w = torch.randn(n_nets, n, n_prev, generator=generator) * math.sqrt(var)
        elif law == "uniform":
            w = (torch.rand(n_nets, n, n_prev, generator=generator) * 2 - 1) * math.sqrt(3 * var)
        elif law == "truncated":  # N(0, 1) cut at ±2 by inverse CDF, rescaled to variance ``var``
            lo = 0.5 * (1 + math.erf(-2 / math.sqrt(2)))
            u = lo + (1 - 2 * lo) * torch.rand(n_nets, n, n_prev, generator=generator)
            w = math.sqrt(2) * torch.erfinv(2 * u - 1) * math.sqrt(var / _TRUNC2_VAR)
        else:
            raise ValueError(f"unknown weight law {law!r}; valid: normal, uniform, truncated")
        x = phi(torch.bmm(w, x))
        out.append((x.square().sum(1).squeeze(-1) / n / m0).double())
        n_prev = n
    return torch.stack(out, 1)


_TRUNC2_VAR = 1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2))  # Var N(0,1) | |x| ≤ 2


def conv_lengths(channels: int, size: int, depth: int, c: float, n_nets: int, *, kernel: int = 3, generator=None):
    """``M_d/M_0`` through ``depth`` ReLU conv layers (``channels`` in and out, ``kernel``², circular padding so every
    unit sees the full fan-in ``kernel²·channels``, weights N(0, c/fan-in), no bias) of ``n_nets`` independent nets
    on ``size × size`` Gaussian inputs, batched as one grouped convolution. ``[n_nets, depth + 1]`` float64."""
    import torch
    import torch.nn.functional as F

    x = torch.randn(1, n_nets * channels, size, size, generator=generator)
    m0 = x.view(n_nets, -1).square().mean(1)
    out, pad, std = [torch.ones(n_nets, dtype=torch.float64)], kernel // 2, math.sqrt(c / (kernel**2 * channels))
    for _ in range(depth):
        w = torch.randn(n_nets * channels, channels, kernel, kernel, generator=generator) * std
        x = torch.relu(F.conv2d(F.pad(x, (pad,) * 4, mode="circular"), w, groups=n_nets))
        out.append((x.view(n_nets, -1).square().mean(1) / m0).double())
    return torch.stack(out, 1)


def log_ticks(ax, values, axis: str = "x") -> None:
    """Major ticks of a log axis at ``values`` labelled plainly ("1.4", not "1.4×10⁰"), minor labels off: the default
    log formatter labels minor ticks on a short range, and the labels run into each other."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(FixedLocator(list(values)))
    a.set_ticklabels([f"{v:.3g}" for v in values])
    a.set_minor_locator(NullLocator())
    a.set_minor_formatter(NullFormatter())


def legend_outside(ax, *, below: bool = False) -> None:
    """The legend outside the axes, never over the data: right of them, or ``below`` them (panels side by side)."""
    if below:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0.0, fontsize=6, ncol=2)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7)


def resnet_lengths(width: int, etas, n_nets: int, *, generator=None):
    """``M_l/M_0`` through ``x_l = x_{l-1} + η_l W₂ ReLU(W₁ x_{l-1})``, W₁ He (2/n), W₂ LeCun (1/n): a length-
    preserving branch with a symmetric last layer (Hanin & Rolnick 2018 §4; THEORY.md §4). ``[n_nets, L+1]``."""
    import torch

    x = torch.randn(n_nets, width, 1, generator=generator, dtype=torch.float64)
    m0 = x.square().sum(1).squeeze(-1)
    out = [torch.ones(n_nets, dtype=torch.float64)]
    for eta in etas:
        w1 = torch.randn(n_nets, width, width, generator=generator, dtype=torch.float64) * math.sqrt(2 / width)
        w2 = torch.randn(n_nets, width, width, generator=generator, dtype=torch.float64) * math.sqrt(1 / width)
        x = x + eta * torch.bmm(w2, torch.relu(torch.bmm(w1, x)))
        out.append(x.square().sum(1).squeeze(-1) / m0)
    return torch.stack(out, 1)


def backprop_log_norms(activation: str, width: int, depth: int, gain: float, n_nets: int, *, generator=None):
    """Sussillo & Abbott 2014 (eq. 4-6): ``ln(|δ_d|²/|δ_D|²)`` for d = D..0 through nets with weights of std g/√N.

    A random input is propagated forward (``h_d = W_d x_{d-1}``, ``x_d = φ(h_d)``), then a random error ``δ_D`` is
    propagated back, ``δ_{d-1} = W_dᵀ (φ'(h_d) ⊙ δ_d)``. Returns float64 ``[n_nets, depth + 1]`` (column 0 is 0).
    """
    import torch

    phi = _phi(activation)
    x = torch.randn(n_nets, width, 1, generator=generator)
    weights, derivs = [], []
    for _ in range(depth):
        w = torch.randn(n_nets, width, width, generator=generator) * (gain / math.sqrt(width))
        h = torch.bmm(w, x).requires_grad_(True)
        with torch.enable_grad():
            y = phi(h)
            (d_phi,) = torch.autograd.grad(y.sum(), h)
        weights.append(w)
        derivs.append(d_phi)
        x = y.detach()
    delta = torch.randn(n_nets, width, 1, generator=generator)
    ref = delta.square().sum(1).squeeze(-1).double().log()
    out = [torch.zeros(n_nets, dtype=torch.float64)]
    for w, d_phi in zip(reversed(weights), reversed(derivs)):
        delta = torch.bmm(w.transpose(1, 2), d_phi * delta)
        out.append(delta.square().sum(1).squeeze(-1).double().log() - ref)
    return torch.stack(out, 1)


def var_se(x) -> tuple[float, float]:
    """Sample variance of a 1-D sample and its standard error sqrt((m4 − v²)/n) (delta method; m4 the 4th central
    moment)."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    v = float(x.var(ddof=1))
    m4 = float(np.mean((x - x.mean()) ** 4))
    return v, math.sqrt(max(m4 - v * v, 1e-300) / len(x))


def paired(a, b, floor: float) -> tuple[float, float]:
    """Mean of the per-seed differences a_r − b_r and its SE over seeds, at least ``floor/√n`` (the measurement's
    resolution: an eval interval in epochs, or an accuracy's binomial SE), so identical runs do not give SE 0."""
    import numpy as np

    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    return float(d.mean()), max(sd, floor) / math.sqrt(n)


def mean_se(values):
    """Mean and standard error of a 1-D sample (NumPy)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))

