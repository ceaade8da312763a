"""Built-in models for ``deepstart check`` targets: ``name:key=value,...`` (e.g. ``mlp:depth=50,width=64,init=glorot``).

Names: ``mlp``, ``tanh-mlp``, ``cnn``, ``resnet`` (η schedule ``eta``, ``kind=mlp|conv``), ``transformer`` (a small
pre-norm encoder). Built with :mod:`deepstart.experiments.models` and a seeded generator; ``rebuild`` applies a
:class:`~deepstart.diagnose.recommend.Recommendation` by building the model again with the change (new init, η
schedule or width), which is how the CLI's ``--fix`` verifies changes that cannot be made in place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["ZOO", "ZooModel", "zoo_model", "parse_target"]

_INT_KEYS = {"depth", "width", "in_features", "out_features", "channels", "in_channels", "classes", "image", "heads",
             "seq"}
_SCHEMES_WITH_ACTIVATION = ("critical", "random-walk", "fractional-moment")

ZOO = {
    "mlp": {"depth": 20, "width": 64, "activation": "relu", "init": "he", "in_features": None, "out_features": None},
    "tanh-mlp": {"depth": 20, "width": 64, "activation": "tanh", "init": "lecun", "in_features": None,
                 "out_features": None},
    "cnn": {"depth": 10, "channels": 16, "activation": "relu", "init": "he", "in_channels": 3, "classes": 10,
            "image": 32},
    "resnet": {"depth": 10, "width": None, "eta": 1.0, "kind": "mlp", "activation": "relu", "init": "he",
               "in_features": None, "classes": 10, "image": 32},
    "transformer": {"depth": 2, "width": 64, "heads": 4, "seq": 16, "init": "pytorch-default"},
}


@dataclass
class ZooModel:
    """A built zoo model with what ``check`` needs: the model, its input shape, and how to rebuild it."""

    name: str
    params: dict
    model: nn.Module
    input_shape: tuple
    generator_seed: int = 0
    notes: list = field(default_factory=list)

    @property
    def spec(self) -> str:
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params.items() if v is not None)

    def spec_with(self, **changes) -> str:
        """The target text of this model with ``changes`` (e.g. ``init="he"``)."""
        params = {**self.params, **changes}
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in params.items() if v is not None)

    def rebuild(self, rec):
        """A new model with ``rec`` applied (``init`` scheme, ``residual_eta`` or ``widths``), or None."""
        changes = {}
        if rec.kind == "init":
            changes["init"] = rec.scheme
        elif rec.kind == "residual_eta" and "eta" in self.params:
            changes["eta"] = rec.params["eta"]
        elif rec.kind == "widths":
            key = "width" if "width" in self.params else "channels" if "channels" in self.params else None
            if key is None:
                return None
            changes[key] = int(rec.params["width"])
            if self.name in ("mlp", "tanh-mlp"):  # same inputs and outputs as before: only hidden widths change
                changes["in_features"] = self.input_shape[0]
                changes["out_features"] = self.params.get("out_features") or self.params["width"]
        else:
            return None
        built = zoo_model(self.name, seed=self.generator_seed, **{**self.params, **changes})
        self.rebuilt = built
        return built.model


def parse_target(text: str) -> tuple:
    """``"mlp:depth=50,init=critical(q_star=1/64)"`` -> ``("mlp", {"depth": 50, "init": "critical(q_star=1/64)"})``."""
    from deepstart.init._parse import parse_call

    name, _, rest = text.partition(":")
    name = name.strip().lower()
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; valid: {', '.join(ZOO)} (or give package.module:factory)")
    _, args, kwargs = parse_call(f"x({rest})")
    if args:
        raise ValueError(f"zoo target {text!r}: give arguments as key=value, e.g. {name}:depth=20; got {args}")
    return name, kwargs


def _fix_scheme(init: str, activation: str) -> str:
    """Add ``activation=`` to schemes that need it (``tanh-mlp:init=critical(q_star=1/64)``)."""
    text = str(init)
    base = text.split("(")[0].strip()
    if base in _SCHEMES_WITH_ACTIVATION and "activation" not in text:
        inner = text[len(base):].strip()
        args = inner[1:-1].strip() if inner.startswith("(") else ""
        return f"{base}(activation={activation}{', ' + args if args else ''})"
    return text


def zoo_model(name: str, *, seed: int = 0, input_shape=None, **params) -> ZooModel:
    """Build zoo model ``name`` with ``params`` (defaults in :data:`ZOO`); ``input_shape`` may select conv kinds."""
    from deepstart.experiments import models

    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; valid: {', '.join(ZOO)}")
    unknown = set(params) - set(ZOO[name])
    if unknown:
        raise ValueError(f"zoo model {name!r}: unknown parameters {sorted(unknown)}; valid: {sorted(ZOO[name])}")
    p = {**ZOO[name], **params}
    for key in _INT_KEYS & set(p):
        if p[key] is not None:
            value = p[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
                raise ValueError(f"zoo model {name!r}: {key}={value!r} must be a positive integer")
            p[key] = int(value)
    g = torch.Generator().manual_seed(seed)
    if "init" in p and "activation" in p:
        p["init"] = _fix_scheme(p["init"], p["activation"])
    if name in ("mlp", "tanh-mlp"):
        n_in = p["in_features"] or p["width"]
        model = models.mlp(n_in, p["out_features"] or p["width"], depth=int(p["depth"]), width=int(p["width"]),
                           activation=p["activation"], init=p["init"], generator=g)
        shape = (n_in,)
    elif name == "cnn":
        model = models.cnn(int(p["in_channels"]), int(p["classes"]), depth=int(p["depth"]),
                           channels=int(p["channels"]), activation=p["activation"], init=p["init"], generator=g)
        shape = (int(p["in_channels"]), int(p["image"]), int(p["image"]))
    elif name == "resnet":
        if input_shape is not None and len(input_shape) == 3:
            p["kind"] = "conv"
        conv = p["kind"] == "conv"
        width = int(p["width"] or (16 if conv else 64))
        p["width"] = width
        n_in = int(input_shape[0]) if input_shape else int(p["in_features"] or (3 if conv else width))
        model = models.resnet(n_in, int(p["classes"]), depth=int(p["depth"]), width=width, eta=p["eta"],
                              kind=p["kind"], activation=p["activation"], init=p["init"], generator=g)
        shape = tuple(input_shape) if input_shape else ((n_in, int(p["image"]), int(p["image"])) if conv else (n_in,))
    else:
        model = _transformer(p, g)
        shape = (int(p["seq"]), int(p["width"]))
    return ZooModel(name, {k: v for k, v in p.items()}, model, shape, seed)


def _transformer(p: dict, g: torch.Generator) -> nn.Module:
    """A small pre-norm Transformer encoder, built without touching the global RNG."""
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = nn.TransformerEncoderLayer(int(p["width"]), int(p["heads"]), dim_feedforward=4 * int(p["width"]),
                                           dropout=0.0, batch_first=True, norm_first=True)
        model = nn.TransformerEncoder(layer, int(p["depth"]), enable_nested_tensor=False)
    if p["init"] != "pytorch-default":
        from deepstart.init import apply_

        apply_(model, p["init"], generator=g)
    return model
