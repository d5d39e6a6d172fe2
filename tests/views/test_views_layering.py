"""The read model sits below the API, the dashboard and the CLI, never above them."""

from __future__ import annotations

import ast
from pathlib import Path

import unity

SRC = Path(unity.__file__).parent


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_views_import_nothing_above_them() -> None:
    above = ("unity.api", "unity.web", "unity.cli", "unity.app", "unity.prometheus")
    for path in sorted((SRC / "views").glob("*.py")):
        wrong = {name for name in imported(path) if name.startswith(above)}
        assert not wrong, f"{path.name} imports {sorted(wrong)}"


def test_the_dashboard_reads_plugins_through_the_views() -> None:
    for path in sorted((SRC / "web").glob("*.py")):
        names = imported(path)
        assert "unity.api.schemas" not in names, path.name
        assert "unity.api.routes.plugins" not in names, path.name
