"""``deepstart.fix_``: apply the best recommendation in place and verify it by measuring again.

Verification is *improvement toward the law* (issue 18): a change is kept when every finding it targets is removed
or moves toward the law by more than its standard error allows, and nothing becomes a new error
(:func:`deepstart.diagnose.verify.verify_change`, the one place the decision is made; each finding's before → after
is a :class:`~deepstart.diagnose.verify.FindingChange` in :attr:`FixResult.changes`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import nn

from deepstart.diagnose.checker import check, prepare_inputs
from deepstart.diagnose.recommend import Recommendation
from deepstart.diagnose.report import Report
from deepstart.diagnose.verify import FindingChange, verify_change

__all__ = ["FixResult", "FindingChange", "fix_", "apply_recommendation_", "verify_change"]


@dataclass(frozen=True, eq=False)
class FixResult:
    """Before/after reports of a fix. ``verified``: the re-measured model improved toward the law
    (:func:`verify_change`: every targeted finding removed or shrunk, nothing new or worse), judged by measurement,
    never assumed; ``after.healthy`` says whether errors remain. ``changes``: each finding before → after.
    ``model`` is the fixed model (the same object unless ``rebuild`` made one)."""

    before: Report
    after: Report
    recommendation: Recommendation | None
    applied: bool
    verified: bool
    model: nn.Module | None = None
    restored: bool = False      # the change did not verify and was undone (parameters and buffers bitwise)
    changes: tuple = ()         # FindingChange per finding category, targets first
    probe: dict | None = None   # fix_(probe=True): deepstart.probe.verify.trains_better's verdict on the change

    def to_dict(self) -> dict:
        return {"before": self.before.to_dict(), "after": self.after.to_dict(), "applied": self.applied,
                "verified": self.verified, "restored": self.restored,
                "recommendation": None if self.recommendation is None else self.recommendation.to_dict(),
                "changes": [c.to_dict() for c in self.changes], "probe": self.probe}

    @classmethod
    def from_dict(cls, d: dict) -> "FixResult":
        rec = d.get("recommendation")
        return cls(Report.from_dict(d["before"]), Report.from_dict(d["after"]),
                   None if rec is None else Recommendation.from_dict(rec), d["applied"], d["verified"],
                   restored=d.get("restored", False),
                   changes=tuple(FindingChange.from_dict(c) for c in d.get("changes", ())), probe=d.get("probe"))

    def __str__(self) -> str:
        if self.recommendation is None:
            head = "fix: nothing to change"
        else:
            errors = sum(1 for f in self.after.findings if f.severity == "error")
            head = f"fix: {self.recommendation} — " + (
                "NOT verified" if not self.verified else "verified: passes" if self.after.healthy else
                f"verified: improves toward the law ({errors} error{'s' * (errors != 1)} left)")
        if self.restored:
            head += " — tried, did not verify, every parameter and buffer restored"
        probe = [f"  probe: {self.probe['reason']}"] if self.probe is not None else []
        return "\n".join([head, *probe, *(f"  {c}" for c in self.changes)])


def apply_recommendation_(model: nn.Module, rec: Recommendation, report: Report, *, generator=None) -> bool:
    """Apply ``rec`` to ``model`` in place; False when it cannot be applied in place (e.g. new widths)."""
    if rec.kind == "init":
        from deepstart.init import apply_  # the init engineer's contract

        apply_(model, rec.scheme, generator=generator)
        return True
    if rec.kind == "transformer_init":
        outputs = set(rec.params["outputs"])
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name in rec.params["weights"]:
                if name in params:
                    std = rec.params["std"] * (rec.params["residual_scale"] if name in outputs else 1.0)
                    params[name].normal_(0.0, std, generator=generator)
                    bias = params.get(_bias_of(name))
                    if bias is not None and name.endswith("weight"):
                        bias.zero_()
        return True
    if rec.kind == "residual_eta":
        blocks = [s for s in report.main_sites if s["kind"] == "block"]
        modules = [model.get_submodule(s["module_name"]) for s in blocks]
        if not modules or not all(hasattr(m, "eta") for m in modules):
            return False
        with torch.no_grad():
            for m, value in zip(modules, rec.params["values"]):
                if isinstance(m.eta, torch.Tensor):
                    m.eta.fill_(value)
                else:
                    m.eta = float(value)
        return True
    if rec.kind == "branch_scale":
        return _scale_branches_(model, rec.params["layers"], rec.params["values"])
    return False


def _bias_of(weight_name: str) -> str:
    return weight_name.rsplit(".", 1)[0] + ".bias" if "." in weight_name else "bias"


def _scale_branches_(model: nn.Module, layers, values) -> bool:
    """Multiply the weight (and bias) closing residual branch l by η_l, in place (the convention of
    :class:`deepstart.init.residual.ResidualScaled`: x + η_l·N_l(x), Hanin & Rolnick 2018 §4); the forward graph is
    unchanged. False (nothing changed) when a named weight is missing."""
    params = dict(model.named_parameters())
    if not layers or len(layers) != len(values) or any(name not in params for name in layers):
        return False
    with torch.no_grad():
        for name, eta in zip(layers, values):
            for p in (params[name], params.get(_bias_of(name))):
                if p is not None:
                    p.mul_(eta)
    return True


def _reinit_after(chosen: Recommendation, before: Report, reinit):
    """How the re-check draws its inits: the recommended scheme, or the user's ``reinit`` followed by the change
    (so a change to the given weights is not drawn away); ``None``/``"resample"``: each tensor redrawn from its
    own (changed) law."""
    if chosen.kind == "init":
        return chosen.scheme
    if chosen.kind == "transformer_init":
        def redo(clone, gen, rec=chosen):
            apply_recommendation_(clone, rec, before, generator=gen)
        return redo
    if chosen.kind == "branch_scale" and reinit is not None and reinit != "resample":
        from deepstart.diagnose.measure import _init_copy

        def scaled(clone, gen, rec=chosen):
            _init_copy(clone, reinit, gen)
            apply_recommendation_(clone, rec, before, generator=gen)
        return scaled
    return reinit


def fix_(model: nn.Module, inputs=None, *, input_shape=None, n_inits: int = 8, generator=None,
         report: Report | None = None, rebuild=None, keep_unverified: bool = False, device=None,
         probe=False, **check_kwargs) -> FixResult:
    """Check ``model``, apply the best applicable recommendation in place, and re-check on the same inputs.

    A fix never harms: a change is kept only when the re-measurement shows improvement toward the law
    (:func:`verify_change`); otherwise every parameter and buffer is restored bitwise (unless
    ``keep_unverified=True``) and the result says what was tried (``restored=True``).

    Args:
        model, inputs, input_shape, n_inits, generator: as :func:`deepstart.check` (``check_kwargs`` too; a
            ``factory`` is used for the first check only: it builds the unfixed model).
        report: a report of this model to start from (skips the first check).
        rebuild: ``callable(Recommendation) -> nn.Module | None`` for changes that need a new model (widths);
            the built-in zoo provides one. Without it such recommendations are skipped.
        keep_unverified: keep an applied change even when the re-measurement does not verify it.
        device: where both checks measure (see :func:`deepstart.check`): the recommendation is applied to
            ``model`` in place where it is; the checks measure a copy on ``device`` when it is elsewhere.
        probe: also verify by training (:func:`deepstart.probe.verify.trains_better`: the model before and after
            the change, same seeds and batches): a change that improves the statistics but does not train better
            is not verified. True, or a dict of :func:`deepstart.probe` arguments (``lr``, ``steps``, ...).

    Returns:
        :class:`FixResult` with ``before`` and ``after`` reports, each finding's before → after (``changes``);
        ``verified`` comes from the new measurement.
    """
    from deepstart.diagnose._device import resolve_device

    resolve_device(device)  # a bad device fails before anything is measured or changed
    check_kwargs["device"] = device
    generator = generator if generator is not None else torch.Generator()
    if inputs is None:
        args, kwargs, _, _ = prepare_inputs(model, None, input_shape, batch_size=check_kwargs.get("batch_size", 8),
                                            generator=generator)
        inputs = args[0] if len(args) == 1 and not kwargs else (kwargs or args)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    before = report if report is not None else check(model, inputs, n_inits=n_inits,
                                                     generator=torch.Generator().manual_seed(seed), **check_kwargs)
    check_kwargs.pop("factory", None)
    saved = {k: v.detach().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]}
    unfixed = copy.deepcopy(model) if probe else None
    fixed, chosen = model, None
    for rec in before.recommend():
        if apply_recommendation_(model, rec, before, generator=generator):
            chosen = rec
            break
        if rebuild is not None:
            new = rebuild(rec)
            if new is not None:
                fixed, chosen = new, rec
                break
    if chosen is None:
        return FixResult(before, before, None, False, before.healthy, model)
    reinit = _reinit_after(chosen, before, check_kwargs.pop("reinit", None))
    after = check(fixed, inputs, n_inits=n_inits, reinit=reinit, generator=torch.Generator().manual_seed(seed + 1),
                  **check_kwargs)
    after = replace(after, thresholds=dict(before.thresholds))  # judged by the same thresholds as before
    verified, changes = verify_change(before, after, chosen)
    trained = None
    if probe and verified:
        from deepstart.probe.verify import trains_better

        trained = trains_better(unfixed, fixed, generator=generator, device=device,
                                **(probe if isinstance(probe, dict) else {}))
        verified = trained["better"]
    if not verified and not keep_unverified and fixed is model:
        _restore_(model, saved)
        return FixResult(before, after, chosen, False, False, model, restored=True, changes=changes, probe=trained)
    return FixResult(before, after, chosen, True, verified, fixed, changes=changes, probe=trained)


def _restore_(model: nn.Module, saved: dict) -> None:
    """Every parameter and buffer back to its saved value, bitwise."""
    with torch.no_grad():
        for k, v in [*model.named_parameters(), *model.named_buffers()]:
            v.copy_(saved[k])
