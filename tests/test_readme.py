"""The README's tour runs as written, and its quick-start commands name files that exist."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def test_quick_start_commands_name_existing_files():
    section = _readme().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
    assert commands, "no quick-start commands"
    text = "\n".join(commands)
    for script in re.findall(r"python (\S+\.py)", text):
        assert os.path.exists(os.path.join(ROOT, script)), script
    assert "pytest" in text
    with open(os.path.join(ROOT, ".ci", "run")) as ci:
        assert "python -m pytest" in ci.read() and "python -m pytest" in text
