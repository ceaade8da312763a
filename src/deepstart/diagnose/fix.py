"""``deepstart.fix_``: apply the best recommendation in place and verify it by measuring again."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepstart.diagnose.checker import check, prepare_inputs
from deepstart.diagnose.recommend import Recommendation
from deepstart.diagnose.report import Report

__all__ = ["FixResult", "fix_", "apply_recommendation_"]


@dataclass(frozen=True, eq=False)
class FixResult:
    """Before/after reports of a fix. ``verified``: the re-measured model has no error finding (the fix is judged
    by measurement, never assumed). ``model`` is the fixed model (the same object unless ``rebuild`` made one)."""

    before: Report
    after: Report
    recommendation: Recommendation | None
    applied: bool
    verified: bool
    model: nn.Module | None = None
    restored: bool = False      # the change did not verify and was undone (parameters and buffers bitwise)

    def to_dict(self) -> dict:
        return {"before": self.before.to_dict(), "after": self.after.to_dict(), "applied": self.applied,
                "verified": self.verified, "restored": self.restored,
                "recommendation": None if self.recommendation is None else self.recommendation.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "FixResult":
        rec = d.get("recommendation")
        return cls(Report.from_dict(d["before"]), Report.from_dict(d["after"]),
                   None if rec is None else Recommendation.from_dict(rec), d["applied"], d["verified"],
                   restored=d.get("restored", False))

    def __str__(self) -> str:
        head = (f"fix: {self.recommendation}" if self.recommendation else "fix: nothing to change") + \
               f" — {'verified: passes' if self.verified else 'NOT verified'}"
        if self.restored:
            head += " — tried, did not verify, every parameter and buffer restored"
        return head


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
                    bias = params.get(name.rsplit(".", 1)[0] + ".bias" if "." in name else "bias")
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
    return False


def fix_(model: nn.Module, inputs=None, *, input_shape=None, n_inits: int = 8, generator=None,
         report: Report | None = None, rebuild=None, keep_unverified: bool = False, device=None,
         **check_kwargs) -> FixResult:
    """Check ``model``, apply the best applicable recommendation in place, and re-check on the same inputs.

    A fix never harms: when the re-measurement does not verify it, every parameter and buffer is restored bitwise
    (unless ``keep_unverified=True``) and the result says what was tried (``restored=True``).

    Args:
        model, inputs, input_shape, n_inits, generator: as :func:`deepstart.check` (``check_kwargs`` too; a
            ``factory`` is used for the first check only: it builds the unfixed model).
        report: a report of this model to start from (skips the first check).
        rebuild: ``callable(Recommendation) -> nn.Module | None`` for changes that need a new model (widths);
            the built-in zoo provides one. Without it such recommendations are skipped.
        keep_unverified: keep an applied change even when the re-measurement still finds errors.
        device: where both checks measure (see :func:`deepstart.check`): the recommendation is applied to
            ``model`` in place where it is; the checks measure a copy on ``device`` when it is elsewhere.

    Returns:
        :class:`FixResult` with ``before`` and ``after`` reports; ``verified`` comes from the new measurement.
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
    if chosen.kind == "init":
        reinit = chosen.scheme
    elif chosen.kind == "transformer_init":
        def reinit(clone, gen, rec=chosen):
            apply_recommendation_(clone, rec, before, generator=gen)
    else:
        reinit = check_kwargs.get("reinit")
    check_kwargs.pop("reinit", None)
    after = check(fixed, inputs, n_inits=n_inits, reinit=reinit, generator=torch.Generator().manual_seed(seed + 1),
                  **check_kwargs)
    addressed = any(f.severity == "error" and f.category in chosen.addresses for f in after.findings)
    verified = after.healthy and not addressed
    if not verified and not keep_unverified and fixed is model:
        _restore_(model, saved)
        return FixResult(before, after, chosen, False, False, model, restored=True)
    return FixResult(before, after, chosen, True, verified, fixed)


def _restore_(model: nn.Module, saved: dict) -> None:
    """Every parameter and buffer back to its saved value, bitwise."""
    with torch.no_grad():
        for k, v in [*model.named_parameters(), *model.named_buffers()]:
            v.copy_(saved[k])
