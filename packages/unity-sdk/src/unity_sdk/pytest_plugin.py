"""pytest fixtures for plugin authors, installed with unity-sdk (``pytest11``).

- ``fake_hub``: a fresh :class:`unity_sdk.testing.FakeHub`.
- ``collect``: :func:`unity_sdk.testing.collect_once` --
  ``document = await collect(MyPlugin, {"url": ...})``.
- ``unity_plugin_check``: :func:`unity_sdk.testing.check_plugin` -- collects
  once and fails the test on any problem with the declared metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pytest

from unity_sdk.plugin import PluginBase
from unity_sdk.testing import FakeHub, check_plugin, collect_once

__all__ = ["Collector", "collect", "fake_hub", "unity_plugin_check"]


class Collector(Protocol):
    """The type of the ``collect`` and ``unity_plugin_check`` fixtures."""

    async def __call__(
        self,
        plugin: type[PluginBase[Any]] | PluginBase[Any],
        config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...


@pytest.fixture
def fake_hub() -> FakeHub:
    """An in-memory hub; pass ``fake_hub.transport`` to ``HubClient`` or ``run``."""
    return FakeHub()


@pytest.fixture
def collect() -> Collector:
    """Run a plugin once like the hub does and return its document."""
    return collect_once


@pytest.fixture
def unity_plugin_check() -> Collector:
    """Collect once and assert the document matches the declared metrics."""
    return check_plugin
