"""docs/glossary.md stays true: every name it cites exists, no retired name is used.

A cited name is a Python name (``unity...``, ``unity_sdk...``, ``unity_catalogue...``, imported and
looked up), a ``unity`` command (found in the CLI's command tree) or a file
of the repository. A retired name must not appear in ``src/`` or ``docs/``
(the glossary aside); a retired Python name must not be importable either.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import typer

from unity.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "docs" / "glossary.md"
TEXT_SUFFIXES = {".py", ".md", ".html", ".js", ".css", ".toml", ".txt", ".mako"}


def _table(heading: str) -> list[list[str]]:
    section = GLOSSARY.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]
    return [row for row in cells[1:] if not set(row[0]) <= {"-"}]


def _quoted(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _python_object(name: str) -> object:
    """Import the longest module prefix of ``name``, then look up the rest."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(name)


def _subcommands(command: Any) -> dict[str, Any]:
    return dict(getattr(command, "commands", {}))


def _command_exists(words: list[str]) -> bool:
    command = typer.main.get_command(app)
    for word in words:
        if word not in _subcommands(command):
            return False
        command = _subcommands(command)[word]
    return True


def _check_reference(reference: str) -> None:
    if reference.startswith("unity "):
        assert _command_exists(reference.split()[1:]), f"no command `{reference}`"
    elif "/" in reference or reference.endswith((".toml", ".md")):
        assert (ROOT / reference).exists(), f"no file {reference}"
    elif reference.split(".")[0] in {"unity", "unity_sdk", "unity_catalogue", "unity_agent"}:
        _python_object(reference)
    else:
        pytest.fail(f"`{reference}` is neither a Python name, a command nor a file")


TERMS = _table("Terms")
RETIRED = [name for row in _table("Retired names") for name in _quoted(row[0])]


def test_the_glossary_has_terms_and_retired_names() -> None:
    assert len(TERMS) >= 25
    assert len({row[0] for row in TERMS}) == len(TERMS), "a term is listed twice"
    assert "unity plugin" in RETIRED


@pytest.mark.parametrize("row", TERMS, ids=[row[0] for row in TERMS])
def test_every_cited_name_exists(row: list[str]) -> None:
    term, meaning, where = row
    assert meaning.endswith("."), term
    references = _quoted(where)
    assert references, f"{term} cites nothing in code"
    for reference in references:
        _check_reference(reference)


def test_every_replacement_exists() -> None:
    for row in _table("Retired names"):
        for reference in _quoted(row[1]):
            if not reference.startswith("from "):
                _check_reference(reference)


def _files_to_search() -> list[Path]:
    return [
        path
        for folder in ("src", "docs")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path != GLOSSARY
    ]


@pytest.mark.parametrize("retired", RETIRED)
def test_a_retired_name_is_used_nowhere(retired: str) -> None:
    # `unity plugin` must not match `unity plugins`, nor `unity_sdk.wire` match
    # `unity_sdk.wire_x`: a retired name ends where no name character follows.
    pattern = re.compile(re.escape(retired) + r"(?![\w-])")
    found = [
        str(path.relative_to(ROOT))
        for path in _files_to_search()
        if pattern.search(path.read_text())
    ]
    assert found == [], f"`{retired}` is retired (docs/glossary.md) but used in {found}"
    if (
        retired.split(".")[0] in {"unity", "unity_sdk", "unity_catalogue", "unity_agent"}
        and " " not in retired
    ):
        with pytest.raises((ModuleNotFoundError, AttributeError)):
            _python_object(retired)


def test_a_retired_command_still_runs_hidden() -> None:
    groups = _subcommands(typer.main.get_command(app))
    assert groups["plugin"].hidden
    assert not groups["author"].hidden
    assert _subcommands(groups["plugin"]).keys() == _subcommands(groups["author"]).keys()
