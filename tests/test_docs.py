"""docs/API.md covers every public name, and each of its examples runs as written.

What counts as public (see the reference's last section): every attribute of ``symgraph`` that
does not start with ``_`` except its submodules (``graph``, ``ops``, ``rewrite``, ``compile``,
``printing``, ``viz``, ``variables`` are the implementation; ``nn``, ``optim`` and ``errors``
are checked through their own names); ``symgraph.nn.__all__``; ``symgraph.optim.__all__`` (the
module's other attributes are its imports); the classes of ``symgraph.errors``; ``config.floatX``;
and the public members of ``Variable``, ``SharedVariable``, ``Constant``, ``TensorType``,
``Apply``, ``Function`` and ``RandomStreams``. Every re-exported class is documented, none is
excluded.
"""

import inspect
import os
import re
import shutil

import numpy as np
import pytest

import symgraph as sg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_PATH = os.path.join(ROOT, "docs", "API.md")
if not os.path.isfile(API_PATH):
    pytest.skip(f"no {API_PATH}: these tests check it", allow_module_level=True)


def _text() -> str:
    with open(API_PATH, encoding="utf-8") as reference:
        return reference.read()


TEXT = _text()
SPANS = re.findall(r"`([^`\n]+)`", TEXT)


def _documented(name: str) -> bool:
    """Whether ``name`` appears in backticks, alone or at the end of a dotted path, possibly
    followed by its arguments and result: `name`, `sg.name(x) -> Variable`, `x.name(axis=None)`."""
    pattern = re.compile(rf"(?:^|\.){re.escape(name)}(?:\(.*\))?(?: -> .*)?$")
    return any(pattern.search(span.strip()) for span in SPANS)


def _public(names) -> list[str]:
    return sorted(name for name in names if not name.startswith("_"))


def _symgraph_names() -> list[str]:
    return [name for name in _public(dir(sg)) if not inspect.ismodule(getattr(sg, name))]


def _members(cls: type, inherited_from: type | None = None) -> list[str]:
    names = set(_public(dir(cls)))
    if inherited_from is not None:
        names -= set(dir(inherited_from))
    return sorted(names)


def _function_members() -> list[str]:
    x = sg.vector("x")
    compiled = sg.function([x], x * 2)
    return _public(set(vars(compiled)) | set(dir(type(compiled))))


PUBLIC = (
    [("sg", name) for name in _symgraph_names()]
    + [("sg.nn", name) for name in sg.nn.__all__]
    + [("sg.optim", name) for name in sg.optim.__all__]
    + [("sg.errors", name) for name, value in vars(sg.errors).items() if isinstance(value, type)]
    + [("sg.config", "floatX")]
    + [("Variable", name) for name in _members(sg.Variable)]
    + [("SharedVariable", name) for name in _members(sg.SharedVariable, sg.Variable)]
    + [("Constant", name) for name in _members(sg.Constant, sg.Variable)]
    + [("TensorType", name) for name in _members(sg.TensorType)]
    + [("Apply", name) for name in _members(sg.Apply)]
    + [("Function", name) for name in _function_members()]
    + [("RandomStreams", name) for name in _members(sg.RandomStreams)]
)


@pytest.mark.parametrize(("owner", "name"), PUBLIC, ids=[f"{owner}.{name}" for owner, name in PUBLIC])
def test_public_name_is_documented(owner, name):
    assert _documented(name), f"{owner}.{name} does not appear in backticks in docs/API.md"


def test_the_name_check_can_fail():
    assert not _documented("no_such_name_in_the_reference")
    assert _documented("dropout") and _documented("get_value")


def test_every_symgraph_callable_is_covered_by_the_list():
    # The parametrized list above must hold every public callable of the three modules.
    listed = {(owner, name) for owner, name in PUBLIC}
    for name in _symgraph_names():
        if callable(getattr(sg, name)):
            assert ("sg", name) in listed
    assert {name for owner, name in listed if owner == "sg.optim"} == {"sgd", "momentum", "adam"}


# --- the examples -----------------------------------------------------------------------------------
def _blocks() -> list[tuple[str, str]]:
    """``(id, code)`` of every python block, the id naming its section and rank in it."""
    blocks = []
    for section in re.split(r"^## ", TEXT, flags=re.M)[1:]:
        number = section.split(".", 1)[0] if section[:1].isdigit() else section.split()[0].lower()
        for rank, code in enumerate(re.findall(r"```python\n(.*?)```", section, re.S), start=1):
            blocks.append((f"section{number}-{rank}", code))
    return blocks


BLOCKS = _blocks()


def test_the_reference_has_examples():
    assert len(BLOCKS) >= 20


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[block_id for block_id, _ in BLOCKS])
def test_example_runs(code, tmp_path, monkeypatch):
    if "sg.plot(" in code and shutil.which("dot") is None:
        pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    printed = []
    namespace = {"np": np, "sg": sg, "__name__": "__docs__", "print": lambda *args: printed.append(args)}
    exec(compile(code, "docs/API.md", "exec"), namespace)
    # Every print in an example must run: most sit in the except branch of an error the text
    # promises, so an error the code no longer raises fails here.
    assert len(printed) == len(re.findall(r"(?<![\w.])print\(", code)), "an example's except branch did not run"


# --- links ------------------------------------------------------------------------------------------
def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_internal_links_point_to_headings():
    anchors = {_slug(heading) for heading in re.findall(r"^#+ (.*)$", TEXT, flags=re.M)}
    anchors |= set(re.findall(r'<a id="([^"]+)"', TEXT))
    links = re.findall(r"\]\(#([^)]+)\)", TEXT)
    assert links, "the table of contents links nowhere"
    missing = [link for link in links if link not in anchors]
    assert not missing, f"links to missing headings: {missing}"
