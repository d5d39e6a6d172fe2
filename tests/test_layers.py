"""The import layers (``[tool.importlinter]`` in pyproject.toml) and the SDK's privacy.

The hub's packages import only downward (cli, app, web, api, read model,
plugins, credentials/auth, storage, settings), the SDK never imports the hub,
and a private module (``_name``) is imported only inside its own package --
checked by import-linter over ``src/`` and the SDK. The two tests below cover
what import-linter does not see: test code, benchmarks, examples and docs.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDK_TESTS = ROOT / "packages" / "unity-sdk" / "tests"
PRIVATE_SDK = re.compile(r"unity_sdk\._(?!_)")  # unity_sdk._wire, not unity_sdk.__all__


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_the_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_hub_package_has_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["id"] == "hub-layers"]
    placed = {name.strip("() ") for layer in layers for name in layer.split("|")}
    modules = {
        f"unity.{path.stem}"
        for path in (ROOT / "src" / "unity").iterdir()
        if not path.name.startswith("_")
        and (path.suffix == ".py" or (path / "__init__.py").exists())
    }
    assert modules - placed == set(), "add each new package to a layer in pyproject.toml"


def test_the_sdk_tests_import_nothing_of_the_hub() -> None:
    found = {
        (path.name, module)
        for path in SDK_TESTS.rglob("*.py")
        for module in _imported_modules(path)
        if module.split(".")[0] in {"unity", "tests"}
    }
    assert found == set()


def test_nothing_outside_the_sdk_uses_its_private_modules() -> None:
    found = {
        (str(path.relative_to(ROOT)), module)
        for folder in ("src", "tests", "benchmarks", "examples")
        for path in (ROOT / folder).rglob("*.py")
        for module in _imported_modules(path)
        if PRIVATE_SDK.match(module)
    }
    assert found == set()
    mentioned = {
        str(path.relative_to(ROOT))
        for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
        if PRIVATE_SDK.search(path.read_text())
    }
    assert mentioned == set()
