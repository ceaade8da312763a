"""Trials (one fully resolved training configuration) and the data they train on.

A :class:`Trial` is everything needed to train one network reproducibly: dataset, architecture, depth, width,
activation, init scheme and its parameters, optimizer and learning rate, budget and seeds. Its :attr:`Trial.id` is a
hash of the resolved configuration (the *spec hash* stored with every result), so the same trial always has the same
id and a re-run sweep skips it. Build trials in code (``Trial(depth=10, init="orthogonal", seed=3)``) or from a TOML
sweep spec (:mod:`deepstart.experiments.spec`).

Trials that differ only in seed, data seed, init scheme/parameters, learning rate, momentum and weight decay share
a :attr:`Trial.group_key` and are trained together as one vectorized batch (:mod:`deepstart.experiments.batched`).

Datasets: any name ``deepstart.data.load`` knows (``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``), plus ``"toy"``, a
small deterministic synthetic 10-class problem (8×8 one-channel images) for smoke tests and examples.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field

__all__ = ["Trial", "Data", "load_data", "ARCHS", "OPTIMIZERS", "TRIAL_FIELDS"]

ARCHS = ("mlp", "conv-mlp", "cnn", "resnet", "resnet-conv")
OPTIMIZERS = ("sgd", "adam")
# Fields that may differ inside one vectorized batch (they only change parameter values or update rules' numbers).
_PER_MEMBER = ("init", "init_params", "lr", "momentum", "weight_decay", "seed", "data_seed")


@dataclass(frozen=True)
class Trial:
    """One training run. ``epochs`` is the budget unless ``steps`` is given; ``eval_every`` (steps) defaults to
    once per epoch; ``limit``/``test_limit`` cap the train/test examples used (``test_limit=0``: no test evaluation).
    ``data_seed`` (default: ``seed``) orders the minibatches; ``seed`` initializes the network."""

    dataset: str = "mnist"
    arch: str = "mlp"
    depth: int = 4
    width: int = 64
    activation: str = "relu"
    init: str = "he"
    init_params: dict = field(default_factory=dict)
    eta: float | str = 1.0
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 1
    steps: int | None = None
    eval_every: int | None = None
    limit: int | None = None
    test_limit: int | None = None
    seed: int = 0
    data_seed: int | None = None

    def __post_init__(self):
        _validate(self)
        # canonical number types, so lr = 1 (TOML int) and lr = 1.0 are the same trial (same id)
        for name in ("lr", "momentum", "weight_decay") + (("eta",) if isinstance(self.eta, (int, float)) else ()):
            object.__setattr__(self, name, float(getattr(self, name)))
        if isinstance(self.eta, list):
            object.__setattr__(self, "eta", tuple(float(v) for v in self.eta))

    @property
    def resolved_init(self) -> str:
        """The init scheme text with ``init_params`` merged in, e.g. ``"fractional-moment(s=0.8, activation=relu)"``."""
        if not self.init_params:
            return self.init
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.init_params.items()))
        if self.init.rstrip().endswith(")"):
            head = self.init.rstrip()[:-1].rstrip()
            return f"{head}{', ' if not head.endswith('(') else ''}{extra})"
        return f"{self.init}({extra})"

    @property
    def resolved_data_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    def to_dict(self) -> dict:
        return {f.name: (dict(getattr(self, f.name)) if f.name == "init_params" else getattr(self, f.name))
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Trial:
        unknown = set(data) - set(TRIAL_FIELDS)
        if unknown:
            raise ValueError(f"unknown trial field(s) {sorted(unknown)}; valid fields: {', '.join(TRIAL_FIELDS)}")
        return cls(**data)

    def replace(self, **changes) -> Trial:
        return dataclasses.replace(self, **changes)

    @property
    def id(self) -> str:
        """Deterministic id: SHA-256 (first 16 hex digits) of the canonical JSON of the resolved config."""
        canon = self.to_dict()
        canon["init"] = self.resolved_init
        canon.pop("init_params")
        canon["data_seed"] = self.resolved_data_seed
        text = json.dumps(canon, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def group_key(self) -> tuple:
        """Trials with equal keys have identically shaped networks and schedules: they can share one batch."""
        d = self.to_dict()
        return tuple((k, json.dumps(d[k], sort_keys=True)) for k in TRIAL_FIELDS if k not in _PER_MEMBER)


TRIAL_FIELDS = tuple(f.name for f in dataclasses.fields(Trial))


def _validate(t: Trial) -> None:
    def need_int(name, minimum, optional=False):
        v = getattr(t, name)
        if optional and v is None:
            return
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"trial field {name} must be an integer >= {minimum}, got {v!r}")

    def need_num(name, minimum=0.0):
        v = getattr(t, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= minimum:
            raise ValueError(f"trial field {name} must be a number >= {minimum}, got {v!r}")

    if t.arch not in ARCHS:
        raise ValueError(f"unknown arch {t.arch!r}; valid: {', '.join(ARCHS)}")
    if t.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {t.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    for name in ("dataset", "activation", "init"):
        if not isinstance(getattr(t, name), str) or not getattr(t, name):
            raise TypeError(f"trial field {name} must be a non-empty string, got {getattr(t, name)!r}")
    if not isinstance(t.init_params, dict):
        raise TypeError(f"init_params must be a table/dict of scheme parameters, got {t.init_params!r}")
    need_int("depth", 0 if t.arch in ("mlp", "conv-mlp") else 1)
    for name in ("width", "batch_size", "epochs"):
        need_int(name, 1)
    need_int("steps", 1, optional=True)
    need_int("eval_every", 1, optional=True)
    need_int("limit", 1, optional=True)
    need_int("test_limit", 0, optional=True)
    need_int("seed", 0)
    need_int("data_seed", 0, optional=True)
    need_num("lr")
    need_num("momentum")
    need_num("weight_decay")
    if t.arch.startswith("resnet"):
        from deepstart.experiments.models import eta_schedule

        eta_schedule(list(t.eta) if isinstance(t.eta, (list, tuple)) else t.eta, t.depth)  # raises on a bad eta
    if t.momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {t.momentum}")


@dataclass(frozen=True)
class Data:
    """Train/test tensors: ``x`` float ``[N, ...]`` (images ``[N, C, H, W]``), ``y`` int64 labels."""

    x_train: object
    y_train: object
    x_test: object
    y_test: object
    name: str = ""

    @property
    def num_classes(self) -> int:
        return int(max(int(self.y_train.max()), int(self.y_test.max()) if len(self.y_test) else 0)) + 1

    def for_arch(self, arch: str, limit: int | None = None, test_limit: int | None = None) -> Data:
        """Flattened for ``mlp``/``resnet``, image-shaped for ``conv-mlp``/``cnn``/``resnet-conv``; limited to the
        first examples."""
        flat = arch in ("mlp", "resnet")
        xtr, xte = self.x_train[:limit], self.x_test[:test_limit]
        if flat:
            xtr, xte = xtr.flatten(1), xte.flatten(1)
        elif xtr.dim() == 2:
            raise ValueError(f"arch {arch!r} needs image-shaped data [N, C, H, W]; dataset {self.name!r} is flat")
        elif xtr.dim() == 3:  # [N, H, W] grey images
            xtr, xte = xtr.unsqueeze(1), xte.unsqueeze(1)
        return Data(xtr, self.y_train[:limit], xte, self.y_test[:test_limit], self.name)

    def to(self, device) -> Data:
        """The same data on ``device`` (itself when it is already there)."""
        if self.x_train.device == device and self.x_test.device == device:
            return self
        return Data(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device), self.y_test.to(device),
                    self.name)


def _toy(n_train: int = 2048, n_test: int = 512) -> Data:
    """10 Gaussian classes in 64 dims (8×8 images); class means of norm 3, unit noise. Seeded: always the same."""
    import torch

    g = torch.Generator().manual_seed(1234)
    means = torch.randn(10, 64, generator=g)
    means = 3.0 * means / means.norm(dim=1, keepdim=True)

    def split(n):
        y = torch.randint(0, 10, (n,), generator=g)
        x = means[y] + torch.randn(n, 64, generator=g)
        return x.reshape(n, 1, 8, 8), y

    xtr, ytr = split(n_train)
    xte, yte = split(n_test)
    return Data(xtr, ytr, xte, yte, "toy")


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, limit: int | None, test_limit: int | None) -> Data:
    if name == "toy":
        return _toy()
    from deepstart.data import load  # data engineer's part

    x_tr, y_tr = load(name, "train", limit=limit)
    x_te, y_te = load(name, "test", limit=test_limit if test_limit else None) if test_limit != 0 else (x_tr[:0], y_tr[:0])
    return Data(x_tr.float(), y_tr.long(), x_te.float(), y_te.long(), name)


def load_data(trial: Trial) -> Data:
    """The data ``trial`` trains on, shaped for its architecture and limited to ``limit``/``test_limit`` examples."""
    return _load_cached(trial.dataset, trial.limit, trial.test_limit).for_arch(trial.arch, trial.limit, trial.test_limit)
