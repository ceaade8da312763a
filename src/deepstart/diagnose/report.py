"""The result of ``deepstart.check``: measurements, predictions, verdicts, and the ways people look at them.

A :class:`Report` stores the raw per-init measurements (so ``from_dict(to_dict())`` reproduces every statistic and
verdict), the architecture it read and the theory's predictions. Verdicts (:attr:`Report.findings`) are computed
from those by :func:`deepstart.diagnose.verdicts.findings` with the thresholds stored in the report.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields

import numpy as np

from deepstart._json import dumps
from deepstart.diagnose.verdicts import THRESHOLDS, chain_links, findings, padding_factors, path_stats

__all__ = ["Report", "SCHEMA_VERSION", "VERDICTS", "schema"]

# The JSON document (``Report.to_dict``) follows ``report.schema.json`` beside this module. Readers rely on the
# keys it requires; a change that removes or retypes one raises SCHEMA_VERSION.
SCHEMA_VERSION = 1
VERDICTS = ("healthy", "FAILING", "NOT ASSESSED")

_ARRAYS = ("m0", "sq", "grad", "dead")
_OPTIONAL_ARRAYS = ("pre_sq", "pre_grad", "branch_sq", "token_cos", "attn_entropy")
_THEORY_ARRAYS = ("m_pred", "q_pred", "back_ratio", "log_var_pred")


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _fix_dict(fix) -> dict:
    """The nested ``fix`` object of the JSON document (``fix``: a ``FixResult``)."""
    rec = fix.recommendation
    changed = fix.after is not fix.before
    return {"recommendation": None if rec is None else rec.to_dict(), "applied": bool(fix.applied),
            "verified": bool(fix.verified), "restored": bool(fix.restored),
            "changes": [c.to_dict() for c in getattr(fix, "changes", ())],  # each finding before → after
            "report": fix.after.to_dict() if changed else None}


def schema() -> dict:
    """The JSON Schema (draft 2020-12) of :meth:`Report.to_dict`, from ``report.schema.json``."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "report.schema.json"), encoding="utf-8") as fh:
        return json.load(fh)


@dataclass(frozen=True, eq=False)
class Report:
    """Signal propagation of one model at initialization, over ``n_inits`` initializations.

    Arrays: ``sq[i, b, j]`` = M_j (normalized squared length at site j for init i and input b), ``grad`` the squared
    backpropagated length ‖∂ℓ/∂x_j‖², ``dead[i, j]`` the fraction of dead units, ``m0[b]`` the input's M_0 (NaN when
    the input is not a float tensor). ``sites`` describe where each column was measured (see
    :class:`deepstart.diagnose.architecture.Site`); ``theory`` holds the predictions (:mod:`.predict`).
    """

    model: str
    mode: str
    n_inits: int
    batch: int
    reinit: str
    inputs: str
    path: str
    sites: tuple
    m0: np.ndarray
    sq: np.ndarray
    grad: np.ndarray
    dead: np.ndarray
    theory: dict
    jacobian: dict | None = None
    nonfinite_params: tuple = ()
    norm_layers: tuple = ()
    weight_families: dict = field(default_factory=dict)
    notes: tuple = ()
    thresholds: dict = field(default_factory=lambda: dict(THRESHOLDS))
    seconds: float = math.nan
    family: str = "plain"                   # normalization family (deepstart.diagnose.structure.family_of)
    pre_sq: np.ndarray | None = None        # [i, b, j] M of the pre-activation h of layer sites (NaN: none)
    pre_grad: np.ndarray | None = None      # [i, b, j] ‖∂ℓ/∂h‖² of the same
    branch_sq: np.ndarray | None = None     # [i, b, j] M of the branch output of blocks not measured at a site
    token_cos: np.ndarray | None = None     # [i, j] mean cosine similarity of tokens at [B, T, C] blocks
    attn_entropy: np.ndarray | None = None  # [i, j] attention entropy / log(keys) in a block's branch (eager)
    threads: int = 0                        # torch intra-op threads of the measurement (0: not recorded)
    recurrent: dict | None = None           # recurrent site -> {"layer_sq"/"layer_chi": [i, L], "time_grad": [i, T]}
    probe: dict | None = None               # check(probe=True): deepstart.probe's ProbeResult.to_dict()

    # ----- derived quantities (pure functions of the fields) -----
    @property
    def main_idx(self) -> list:
        return [j for j, s in enumerate(self.sites) if s["main"]]

    @property
    def main_sites(self) -> list:
        return [self.sites[j] for j in self.main_idx]

    @property
    def beta(self) -> float:
        """β = Σ 1/n_j over main-path layers followed by an activation (Hanin & Rolnick 2018, Thm 5)."""
        return float(sum(1.0 / s["width"] for s in self.main_sites if s["kind"] == "layer" and s["activation"]))

    @property
    def stats(self) -> dict:
        """Main-path statistics (:func:`deepstart.diagnose.verdicts.path_stats`). With one init (given weights)
        there is no spread across inits: the standard errors of the drifts are then the spread of one net's log
        length, √(5β) (Hanin & Rolnick 2018, Thm 5: Var log M_d ≈ 5β for ReLU nets; an order of magnitude for
        others), so a narrow net's own fluctuation is not called FM1."""
        st = path_stats(self.sq, self.grad, self.m0, self.main_idx, self.links, padding_factors(self.main_sites))
        if self.sq.shape[0] == 1 and st.get("links_read"):
            spread = math.sqrt(5.0 * self.beta)
            st["fm1_se"], st["grad_se"] = spread, spread
        return st

    @property
    def links(self) -> np.ndarray:
        """Main-path links the verdicts read (:func:`deepstart.diagnose.verdicts.chain_links`)."""
        return chain_links(self.main_sites, bool(np.size(self.m0) and np.all(np.isfinite(self.m0))))

    @property
    def predicted_stats(self) -> dict:
        """The theory's values of the verdict statistics (NaN where not applicable)."""
        m = np.asarray(self.theory.get("m_pred", []), float)
        out = {}
        m0 = float(np.mean(self.m0)) if np.size(self.m0) and np.all(np.isfinite(self.m0)) else math.nan
        chain = np.concatenate([[m0], m]) if math.isfinite(m0) else m
        links = self.links
        read = np.flatnonzero(links)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.diff(np.log(chain)) if chain.size >= 2 else np.zeros(0)
        if read.size and logs.size == links.size and np.all(np.isfinite(logs[read])):
            out["fm1_drift"] = float(read.size * np.mean(logs[read[read.size // 2:]]))
        xi = np.diff(np.r_[0.0, np.asarray(self.theory.get("log_var_pred", []), float)])
        if read.size and xi.size >= links.size and np.all(np.isfinite(xi[-links.size:][read])):
            out["fm2_var"] = float(np.sum(xi[-links.size:][read]))
        back = np.asarray(self.theory.get("back_ratio", []), float)
        guse = links[-(back.size - 1):] if back.size >= 2 else np.zeros(0, dtype=bool)
        if guse.any() and np.all(np.isfinite(back[1:][guse])):
            out["grad_log_ratio"] = float(np.sum(np.log(back[1:][guse])))
        jac = self.theory.get("jacobian")
        if jac and self.jacobian is not None:
            out["isometry_relvar"] = float(jac["relative_variance"])
        return out

    @property
    def jacobian_relvar(self) -> float | None:
        """Var(λ)/mean(λ)² of the eigenvalues λ = σ² of JJᵀ (from the moments when only top-k are known)."""
        if not self.jacobian:
            return None
        m1, m2 = self.jacobian["moments"]
        return float(m2 / m1 ** 2 - 1.0) if m1 > 0 else math.inf

    @property
    def findings(self) -> list:
        return findings(self)

    @property
    def parts(self) -> list:
        """The model's parts and the law each is judged by, as plain dicts (:mod:`deepstart.diagnose.parts`)."""
        from deepstart.diagnose.parts import read_parts

        return [p.to_dict() for p in read_parts(self)]

    @property
    def activation_gain(self) -> np.ndarray:
        """Per site: E φ(h)²/E h² of the elementwise ops after a layer, measured (NaN: none)."""
        from deepstart.diagnose.families import activation_gain

        return activation_gain(self)

    @property
    def assessed(self) -> bool:
        """False when the verdicts could read too few links of the main path (a ``not assessed`` finding)."""
        from deepstart.diagnose.verdicts import NOT_ASSESSED

        return not any(f.category == "structure" and f.message.startswith(NOT_ASSESSED) for f in self.findings)

    @property
    def verdict(self) -> str:
        """``"healthy"``, ``"FAILING"`` (an error finding) or ``"NOT ASSESSED"`` (too few links read)."""
        if any(f.severity == "error" for f in self.findings):
            return "FAILING"
        return "healthy" if self.assessed else "NOT ASSESSED"

    @property
    def family_stats(self) -> dict:
        """The family-law statistics (:mod:`deepstart.diagnose.families`): worst branch gain g_l, extreme layer
        gains (nats) and the token cosine similarity at the last block."""
        from deepstart.diagnose.families import family_summary

        return family_summary(self)

    @property
    def healthy(self) -> bool:
        """No finding of severity ``error``, and the verdicts could be read (:attr:`assessed`)."""
        found = self.findings
        return not any(f.severity == "error" for f in found) and self.assessed

    def recommend(self) -> list:
        """Concrete changes that address this report's findings, best first (:mod:`.recommend`)."""
        from deepstart.diagnose.recommend import recommend

        return recommend(self)

    def part_series(self) -> list:
        """Per-part series of the laws that judged the model (:func:`deepstart.diagnose.panels.part_series`)."""
        from deepstart.diagnose.panels import part_series

        return part_series(self)

    # ----- serialization -----
    def to_dict(self, fix=None) -> dict:
        """The JSON document (``report.schema.json``, :func:`schema`): ``schema_version``, ``verdict`` (one of
        :data:`VERDICTS`; the CLI exits 1 under its default ``--fail-on error`` exactly when it is ``"FAILING"``),
        the stored fields, the ``findings``, ``recommendations`` and ``panels`` (the per-part series of the laws
        that judged the model, :meth:`part_series`; all three for readers, recomputed by :meth:`from_dict`)
        and ``fix``: None, or the :class:`~deepstart.diagnose.fix.FixResult` of ``fix_`` on this model as
        ``{recommendation, applied, verified, restored, report}`` with ``report`` the re-measured model's document
        (None when nothing was changed). The shape is the same with or without a fix."""
        d = {"schema_version": SCHEMA_VERSION, "verdict": self.verdict}
        d.update({f.name: _plain(getattr(self, f.name)) for f in fields(self)})
        d["findings"] = [f.to_dict() for f in self.findings]
        d["recommendations"] = [r.to_dict() for r in self.recommend()]
        d["panels"] = [s.to_dict() for s in self.part_series()]
        d["fix"] = None if fix is None else _fix_dict(fix)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Report":
        version = d.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"report schema_version {version!r} is newer than this deepstart reads "
                             f"({SCHEMA_VERSION}): upgrade deepstart to read it")
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in _ARRAYS:
            kw[k] = np.asarray(kw[k], dtype=float)
        for k in _OPTIONAL_ARRAYS:
            if kw.get(k) is not None:
                kw[k] = np.asarray(kw[k], dtype=float)
        theory = dict(kw.get("theory") or {})
        for k in _THEORY_ARRAYS:
            if k in theory:
                theory[k] = np.asarray(theory[k], dtype=float)
        kw["theory"] = theory
        if kw.get("jacobian"):
            jac = dict(kw["jacobian"])
            jac["values"] = np.asarray(jac["values"], dtype=float)
            jac["moments"] = tuple(float("nan") if x is None else float(x) for x in jac["moments"])
            jac["moment_errors"] = tuple(float("nan") if x is None else float(x) for x in jac.get("moment_errors", ()))
            kw["jacobian"] = jac
        for k in ("sites", "nonfinite_params", "norm_layers", "notes"):
            kw[k] = tuple(kw.get(k, ()))
        return cls(**kw)

    def to_json(self, path=None, fix=None) -> str:
        """Strict JSON of :meth:`to_dict` (``fix``: a ``FixResult`` to nest), written to ``path`` when given."""
        text = dumps(self.to_dict(fix=fix), indent=1)
        if path is not None:
            from deepstart._io import atomic_write

            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            atomic_write(path, text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str) -> "Report":
        text = path_or_text
        if not path_or_text.lstrip().startswith("{"):
            with open(path_or_text, encoding="utf-8") as fh:
                text = fh.read()
        return cls.from_dict(json.loads(text))

    # ----- views -----
    def render(self, color: bool = False, max_rows: int = 20) -> str:
        from deepstart.diagnose.html import render_text

        text = render_text(self, color=color, max_rows=max_rows)
        if self.probe is not None:
            from deepstart.probe import ProbeResult

            text += "\n\n" + ProbeResult.from_dict(self.probe).summary()
        return text

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        verdict = self.verdict
        return (f"Report({self.model}: {verdict}, {len(self.main_sites)} main-path sites, {self.n_inits} inits, "
                f"{len(self.findings)} findings)")

    def plot(self, ax=None):
        from deepstart.diagnose.html import plot_report

        return plot_report(self, ax=ax)

    def to_html(self, path=None) -> str:
        from deepstart.diagnose.html import report_html

        return report_html(self, path)

    def _repr_html_(self) -> str:
        from deepstart.diagnose.html import report_html

        return report_html(self, None, full_page=False)
