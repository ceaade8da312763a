"""Sweep specs: expansion, ids, and errors that point at the TOML line."""
from __future__ import annotations

import pytest

from deepstart.experiments.spec import SpecError, SweepSpec, load_spec
from deepstart.experiments.trial import Trial

SPEC = """\
[sweep]
name = "t"
max_members = 4

[base]
dataset = "toy"
width = 8

[grid]
depth = [2, 4]
init = ["fractional-moment(activation=relu)", "fractional-moment(activation=linear)"]
seed = [0, 1, 2]

[grid.init_params]
s = [0.5, 1.0]

[[trials]]
depth = 3
init = "orthogonal"
"""


def test_expansion_counts_and_merging(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SPEC)
    spec = load_spec(path)
    trials = spec.trials()
    assert len(trials) == 2 * 2 * 3 * 2 + 1
    assert spec.max_members == 4 and spec.name == "t"
    assert all(t.width == 8 and t.dataset == "toy" for t in trials)
    assert trials[-1].depth == 3 and trials[-1].init == "orthogonal" and trials[-1].init_params == {}
    # grid order: depth, init, seed, then init_params (last axis varies fastest)
    assert trials[1].resolved_init == "fractional-moment(activation=relu, s=1.0)"
    assert trials[2].resolved_init == "fractional-moment(activation=relu, s=0.5)" and trials[2].seed == 1
    assert len({t.id for t in trials}) == len(trials)


def test_ids_are_deterministic_and_config_sensitive():
    a, b = Trial(depth=3, seed=1), Trial(depth=3, seed=1)
    assert a.id == b.id and len(a.id) == 16
    assert Trial(depth=3, seed=2).id != a.id
    # data_seed defaults to seed: writing it explicitly resolves to the same trial
    assert Trial(depth=3, seed=1, data_seed=1).id == a.id
    assert Trial(init="he", init_params={"scale": 2}).id == Trial(init="he(scale=2)").id


def test_duplicates_removed_and_spec_hash():
    spec = SweepSpec(name="d", base={"dataset": "toy"}, grid={"seed": [0, 0, 1]})
    assert len(spec.trials()) == 2
    assert spec.hash == SweepSpec(name="d", base={"dataset": "toy"}, grid={"seed": [0, 0, 1]}).hash
    assert spec.hash != SweepSpec(name="d", base={"dataset": "toy"}, grid={"seed": [0, 1]}).hash


@pytest.mark.parametrize("old,new,line,match", [
    ("width = 8", "widht = 8", 7, "unknown key 'widht' in \\[base\\]"),
    ("seed = [0, 1, 2]", "seed = [0, -1, 2]", 12, "seed must be an integer >= 0"),
    ('depth = 3\ninit = "orthogonal"', 'depth = 3\noptimizer = "lbfgs"', 19, "unknown optimizer 'lbfgs'"),
    ("max_members = 4", "max_members = 0", 3, "max_members must be"),
    ("max_members = 4", "max_member = 4", 3, "unknown key 'max_member' in \\[sweep\\]"),
    ("[base]", "[bases]", 5, "unknown section \\[bases\\]"),
])
def test_errors_point_at_line(tmp_path, old, new, line, match):
    path = tmp_path / "bad.toml"
    assert old in SPEC
    path.write_text(SPEC.replace(old, new))
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:{line}:"), str(info.value)


def test_toml_syntax_error_has_position(tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text(SPEC.replace("width = 8", "width = = 8"))
    with pytest.raises(SpecError, match=r"invalid TOML: .*line 7"):
        load_spec(path)


def test_missing_name_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="needs name"):
        load_spec("[sweep]\nmax_members = 2\n")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_example_spec_parses():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "sweeps" / "quick.toml"
    spec = load_spec(path)
    assert spec.name == "quick" and len(spec.trials()) == 2 * 3 * 2  # depth × init × seed


def test_number_types_are_canonical():
    assert Trial(lr=1, eta=1).id == Trial(lr=1.0, eta=1.0).id
    assert Trial(arch="resnet", eta=[1, 0.5], depth=2).eta == (1.0, 0.5)
    with pytest.raises(ValueError, match="lr must be a number"):
        Trial(lr="fast")


def test_bad_eta_in_spec_points_at_line(tmp_path):
    path = tmp_path / "eta.toml"
    path.write_text('[sweep]\nname = "e"\n[base]\ndataset = "toy"\narch = "resnet"\neta = "1/x"\n')
    with pytest.raises(SpecError, match="unknown eta schedule") as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:6:")
