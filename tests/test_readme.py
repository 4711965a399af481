"""The README's tour runs as written, its quick-start commands name files that exist, and CI
runs those very commands first."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isfile(os.path.join(ROOT, "README.md")):
    pytest.skip(f"no README.md in {ROOT}: these tests check it", allow_module_level=True)


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md")) as readme:
        return readme.read()


def _tour() -> str:
    section = _readme().split("## A tour", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's tour has no python block"
    return match.group(1)


def test_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    exec(compile(_tour(), "README.md tour", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    accuracy = float(re.search(r"accuracy ([0-9.]+)", printed).group(1))
    assert accuracy > 0.9
    assert (tmp_path / "train.svg").stat().st_size > 1000


def test_tour_is_about_twenty_lines():
    lines = [line for line in _tour().splitlines() if line.strip()]
    assert len(lines) <= 24


def _quick_start_commands() -> list[str]:
    section = _readme().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _ci_commands() -> list[str]:
    """The lines of .ci/run that do something (no blank lines, no comments)."""
    with open(os.path.join(ROOT, ".ci", "run")) as ci:
        lines = [line.strip() for line in ci.read().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_quick_start_commands_name_existing_files():
    commands = _quick_start_commands()
    assert commands, "no quick-start commands"
    text = "\n".join(commands)
    for script in re.findall(r"python (\S+\.py)", text):
        assert os.path.exists(os.path.join(ROOT, script)), script
    assert "pytest" in text
    with open(os.path.join(ROOT, ".ci", "run")) as ci:
        assert "python -m pytest" in ci.read() and "python -m pytest" in text


def test_ci_runs_the_readme_commands_as_written_before_installing_anything_else():
    """On a fresh machine the README's commands must work with nothing but Python: CI runs each
    exactly as written, in order, before it installs anything of its own (Graphviz, a wheel)."""
    readme, ci = _quick_start_commands(), _ci_commands()
    missing = [command for command in readme if command not in ci]
    assert not missing, f".ci/run does not run these README commands as written: {missing}"
    positions = [ci.index(command) for command in readme]
    assert positions == sorted(positions)
    installs = [
        line for line in ci[: positions[-1]] if re.search(r"apt-get|\bapt\b|pip3? (install|wheel)|-m build", line)
    ]
    extra = [line for line in installs if line not in readme]
    assert not extra, f".ci/run installs something before the README's commands: {extra}"
