"""Every example of every ``--help`` text and every command of the README runs, in a temporary folder, with the exit
code it documents, and leaves the repository as it was (``git status --porcelain`` unchanged).

Help examples state their exit code in a ``# exit N`` comment. README commands are found in its ``bash`` blocks and
in inline code that starts with ``deepstart`` and has an argument; a new one must be listed in ``EXIT`` (when not 0),
``SKIP`` (with the reason) or ``QUICKER`` (a smaller variant of the same path, with the reason) only if needed."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from deepstart.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# README commands that exit non-zero on purpose
EXIT = {
    'deepstart check "mlp:depth=100,width=64,activation=relu,init=glorot" --html out/report.html --fail-on fm1,fm2': 1,
}
# README commands not run here, and why
SKIP = {
    "bash scripts/demo.sh": "set-up: creates .venv and pip-installs (minutes, network); its check is check --help's "
                            "first example, run here",
    "bash scripts/test.sh": "set-up: this test suite itself",
    "deepstart data fetch mnist": "downloads from the network; tests/data tests fetch against a local mirror",
    "deepstart reproduce all --quick --out docs/reproductions --gallery docs/reproductions.md":
        "regenerates the tracked gallery on purpose (15+ minutes); the same code path runs here with --tiny",
}
# (pattern, replacement, why): README commands run at smaller sizes through the same code path
QUICKER = [
    (" --quick ", " --tiny ", "--quick takes 3-15 minutes per paper; --tiny runs the same path in seconds"),
    ("n_layer=24,n_embd=256", "n_layer=2,n_embd=64", "a 24 x 256 GPT-2 takes ~11 s on one idle core"),
]
MODEL_FILE = "import torch\n\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), " \
             "torch.nn.Linear(8, 2))\n"


def _readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        found += [c for c in (re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()) if c]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if re.match(r"(\.venv/bin/)?deepstart \S+ \S", span):  # a command, not the name of one
            found.append(span.replace(".venv/bin/", ""))
    return list(dict.fromkeys(found))


def _help_examples() -> list[tuple[str, int]]:
    def parsers(p):
        yield p
        for action in p._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for sub in action.choices.values():
                    yield from parsers(sub)

    found = []
    for p in parsers(build_parser()):
        for line in p.format_help().splitlines():
            m = re.match(r"\s*(deepstart .*?)\s+# exit (\d)", line)
            if m:
                found.append((m.group(1), int(m.group(2))))
    return list(dict.fromkeys(found))


def _git_status() -> list[str] | None:
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
                              text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return sorted(line for line in done.stdout.splitlines() if "__pycache__" not in line)


@pytest.fixture
def scratch(tmp_path, monkeypatch, data_root):
    """A temporary current folder holding what the README assumes (examples/, mymodel.py); one torch thread."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    (tmp_path / "path" / "to").mkdir(parents=True)
    (tmp_path / "path" / "to" / "mymodel.py").write_text(MODEL_FILE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEEPSTART_DATA", str(data_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield tmp_path
    sys.modules.pop("mymodel", None)


def _run(command: str) -> int:
    argv = shlex.split(command)
    if argv[:2] == ["mkdir", "-p"]:
        for folder in argv[2:]:
            Path(folder).mkdir(parents=True, exist_ok=True)
        return 0
    assert argv[0] == "deepstart", f"not a deepstart command: {command!r}; list it in SKIP with the reason"
    return main(argv[1:] + (["--no-progress"] if argv[1] in ("check", "reproduce") else []))


def test_the_lists_find_the_documented_commands():
    commands = _readme_commands()
    assert any(c.startswith("deepstart check") for c in commands) and len(commands) >= 10, commands
    assert set(SKIP) <= set(commands) and set(EXIT) <= set(commands)  # no stale entries
    examples = _help_examples()
    assert {c.split()[1] for c, _ in examples} >= {"check", "theory"}, examples


def _planned() -> dict:
    """``{command as run: expected exit code}``: help examples, then README commands (smaller where QUICKER
    says so), each distinct command once."""
    plan = dict(_help_examples())
    for command in _readme_commands():
        if command in SKIP:
            continue
        quick = command
        for pattern, replacement, _ in QUICKER:
            quick = quick.replace(pattern, replacement)
        assert plan.setdefault(quick, EXIT.get(command, 0)) == EXIT.get(command, 0), f"{quick}: two exit codes"
    return plan


@pytest.mark.slow
def test_help_examples_and_readme_commands_run_as_documented(scratch, capsys):
    before = _git_status()
    plan = _planned()
    for command, code in plan.items():
        assert _run(command) == code, (command, capsys.readouterr().err[-2000:])
    assert (scratch / "out" / "report.html").is_file() and (scratch / "out" / "quick.db").is_file()
    assert _git_status() == before, "a documented command wrote into the repository"
    assert len(plan) >= 15, plan
