"""Loading plugin classes from a path an author points at.

A path is either a plugin package (a folder with ``pyproject.toml`` declaring
``[project.entry-points."unity.plugins"]``) or a single ``.py`` file; a
``:ClassName`` suffix picks one class from a file. Entry-point names are
checked against the plugin ids exactly as the hub's loader does.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from unity.plugins.loader import ENTRY_POINT_GROUP
from unity_sdk import PluginBase

__all__ = ["Candidate", "SourceError", "find_plugins"]


class SourceError(Exception):
    """The path does not lead to any plugin class."""


@dataclass(frozen=True)
class Candidate:
    """A plugin class found at the path, and the entry-point name it is published under."""

    cls: type[PluginBase[Any]]
    entry_point: str | None


def _import_file(path: Path) -> ModuleType:
    name = f"unity_author_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SourceError(f"{path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def _classes_in(module: ModuleType) -> list[type[PluginBase[Any]]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, PluginBase)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def _from_package(folder: Path) -> list[Candidate]:
    data = tomllib.loads((folder / "pyproject.toml").read_text())
    points = data.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if not points:
        raise SourceError(
            f'{folder / "pyproject.toml"} declares no [project.entry-points."{ENTRY_POINT_GROUP}"]'
        )
    for root in (folder / "src", folder):
        if root.is_dir() and str(root) not in sys.path:
            sys.path.insert(0, str(root))
    found = []
    for name, target in points.items():
        module_name, _, attr = str(target).partition(":")
        try:
            module = importlib.import_module(module_name)
            obj = getattr(module, attr) if attr else None
        except Exception as exc:
            raise SourceError(f"entry point {name!r} = {target!r} fails to load: {exc}") from exc
        if not (inspect.isclass(obj) and issubclass(obj, PluginBase)):
            raise SourceError(f"entry point {name!r} = {target!r} is not a PluginBase subclass")
        found.append(Candidate(obj, name))
    return found


def find_plugins(spec: str) -> list[Candidate]:
    """The plugin classes at ``spec`` (a package folder, a file, or file:Class)."""
    path_text, _, class_name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    path = Path(path_text).expanduser()
    if path.is_dir():
        if not (path / "pyproject.toml").is_file():
            raise SourceError(
                f"{path} has no pyproject.toml; point at a plugin package or a .py file"
            )
        return _from_package(path)
    if not path.is_file():
        raise SourceError(f"{path} does not exist")
    try:
        module = _import_file(path)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{path} fails to import: {type(exc).__name__}: {exc}") from exc
    classes = _classes_in(module)
    if class_name:
        classes = [c for c in classes if c.__name__ == class_name]
    if not classes:
        raise SourceError(f"{spec} defines no PluginBase subclass")
    return [Candidate(cls, None) for cls in classes]
