"""Every command the README shows parses: the right command, its arguments, existing options.

The commands of the set-up block and of the tables' "how" / command columns are parsed by
click exactly as the shell would pass them (without running them: some train for an hour);
placeholders in capitals are given real files of the repository.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from graded.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: README placeholders -> real arguments.
PLACEHOLDERS = {
    "TARGET": "examples/data/trabecular_bone_stiffness.csv",
    "TESTSET": "inverse/data/testset",
    "DATASET": "inverse/voxelcell/data/testset",
    "DIR": "inverse/data/testset",
    "OUT": "out/x",
    "spec.yaml": "examples/graded_bar.yaml",
}


def _commands() -> list[str]:
    found = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split("#")[0].strip()
                if part.startswith("graded "):
                    found.append(part)
    for line in README.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            for cell in {cells[0], cells[-1]}:
                if cell.startswith("`graded "):  # a command column, not prose naming a command
                    found += [s for s in re.findall(r"`([^`]+)`", cell) if s.startswith("graded ")]
    return list(dict.fromkeys(found))


COMMANDS = _commands()


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 8 and any(c.startswith("graded build") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command):
    args = [PLACEHOLDERS.get(a, a) for a in shlex.split(command)[1:]]
    ctx = cli.make_context("graded", [], resilient_parsing=True)
    cmd: click.Command = cli
    while isinstance(cmd, click.Group):
        while args and args[0].startswith("-"):  # group options: -v, -q
            args = args[1:]
        assert args, f"{command}: names no command"
        name, args = args[0], args[1:]
        sub = cmd.get_command(ctx, name)
        assert sub is not None, f"{command}: no command {name!r}"
        cmd = sub
    cmd.make_context(cmd.name, args, parent=ctx)  # raises on a missing argument or an unknown option


def test_ci_runs_the_readme_test_command():
    block = re.findall(r"```bash\n(.*?)```", README, flags=re.S)[0]
    test_cmd = [line for line in block.splitlines() if "pytest" in line][0].strip()
    assert test_cmd in (ROOT / ".ci" / "run").read_text()
    assert "ruff check" in test_cmd
