"""symgraph installs whole. A folder of the source without ``__init__.py`` is silently left out
of wheels and sdists by ``packages = find:`` (the editable install hides it), so: every folder
holding Python files is a package that setuptools finds, and, run against an installed wheel
(``SYMGRAPH_SOURCE_TREE`` naming the checkout it was built from, as CI does), that install holds
every module of the source tree."""

import configparser
import os
import re
import sysconfig
from pathlib import Path

import pytest

import symgraph

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = Path(symgraph.__file__).resolve().parent


def python_folders(package: Path) -> set[str]:
    """The dotted names of ``package`` and of the folders under it that hold ``.py`` files."""
    found = set()
    for folder, subfolders, files in os.walk(package):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        if any(name.endswith(".py") for name in files):
            found.add(".".join(Path(folder).relative_to(package.parent).parts))
    return found


def modules(package: Path) -> set[str]:
    """The ``.py`` files under ``package``, relative to it."""
    return {path.relative_to(package).as_posix() for path in package.rglob("*.py") if "__pycache__" not in path.parts}


def test_every_folder_holding_python_files_is_a_package():
    folders = python_folders(INSTALLED)
    assert "symgraph.graph" in folders
    missing = sorted(
        name for name in folders if not (INSTALLED.parent / name.replace(".", "/") / "__init__.py").exists()
    )
    assert not missing, f"folders without __init__.py, left out of wheels: {missing}"


def test_setuptools_finds_every_folder_holding_python_files():
    if not (ROOT / "symgraph").is_dir() or not (ROOT / "setup.cfg").is_file():
        pytest.skip(f"no source tree (symgraph/ and setup.cfg) in {ROOT}")
    setuptools = pytest.importorskip("setuptools")
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["options"]["packages"].strip() == "find:"
    find = config["options.packages.find"] if config.has_section("options.packages.find") else {}

    def patterns(key: str) -> list[str]:
        return [pattern for pattern in re.split(r"[\s,]+", find.get(key, "")) if pattern]

    found = setuptools.find_packages(str(ROOT), include=patterns("include") or ["*"], exclude=patterns("exclude"))
    assert set(found) == python_folders(ROOT / "symgraph")


def test_the_installed_package_holds_every_source_module():
    source = os.environ.get("SYMGRAPH_SOURCE_TREE")
    if not source:
        pytest.skip("tests an installed wheel: set SYMGRAPH_SOURCE_TREE to the checkout it was built from")
    source_package = Path(source).resolve() / "symgraph"
    site_packages = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    assert INSTALLED.parent in site_packages, f"symgraph imported from {INSTALLED}, not from {site_packages}"
    assert not INSTALLED.is_relative_to(Path(source).resolve())
    missing = sorted(modules(source_package) - modules(INSTALLED))
    assert not missing, f"modules of the source tree missing from the installed package: {missing}"
