"""The SDK's public surface: one sorted ``__all__``, complete, every name importable."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import unity_sdk

# Modules authors import by path: the contract (re-exported whole by the package)
# and the tooling (imported as modules, never re-exported). Every other module is
# an implementation detail and starts with an underscore.
CONTRACT_MODULES = ("alerts", "discovery", "errors", "metadata", "plugin", "state")
TOOLING_MODULES = ("pytest_plugin", "run", "testing")


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then the rest.
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_without_duplicates() -> None:
    assert unity_sdk.__all__ == sorted(set(unity_sdk.__all__), key=_isort_key)


@pytest.mark.parametrize("name", unity_sdk.__all__)
def test_every_exported_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from unity_sdk import {name}", namespace)
    assert namespace[name] is getattr(unity_sdk, name)


def test_every_public_attribute_is_exported() -> None:
    public = {
        name
        for name, value in vars(unity_sdk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(unity_sdk.__all__) == set()


def test_the_public_modules_are_the_contract_and_the_tooling() -> None:
    modules = {info.name for info in pkgutil.iter_modules(unity_sdk.__path__)}
    public = {name for name in modules if not name.startswith("_")}
    assert public == {*CONTRACT_MODULES, *TOOLING_MODULES}


@pytest.mark.parametrize("module", CONTRACT_MODULES)
def test_the_contract_modules_are_exported_whole(module: str) -> None:
    names = importlib.import_module(f"unity_sdk.{module}").__all__
    assert set(names) - set(unity_sdk.__all__) == set()


def test_exported_names_come_from_the_sdk() -> None:
    for name in unity_sdk.__all__:
        value = getattr(unity_sdk, name)
        origin = getattr(value, "__module__", None)
        if origin is not None and isinstance(value, type | types.FunctionType):
            assert origin.startswith("unity_sdk."), (name, origin)
