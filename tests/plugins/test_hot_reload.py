"""Hot reload swaps a plugin's live instance; a broken edit keeps the old one."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from unity.plugins.loader import PluginLoader
from unity.plugins.manager import PluginManager
from unity.plugins.reloader import watch_plugins
from unity.settings import Settings
from unity.storage.db import Database

SOURCE = """
from unity_sdk import PluginBase, PluginMetadata

EVENTS = []


class Live(PluginBase):
    def get_metadata(self):
        return PluginMetadata(id="live", name="Live", version="{version}")

    async def collect_data(self):
        return {{"answer": {answer}}}

    async def on_enable(self):
        EVENTS.append(("enable", "{version}"))

    async def on_disable(self):
        EVENTS.append(("disable", "{version}"))
"""


@pytest.fixture
def plugin_file(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "pluginsrc"
    folder.mkdir()
    path = folder / "live_plugin.py"
    path.write_text(SOURCE.format(version="1.0.0", answer=1))
    sys.path.insert(0, str(folder))
    yield path
    sys.path.remove(str(folder))
    sys.modules.pop("live_plugin", None)


@pytest.fixture
async def manager(settings: Settings, plugin_file: Path) -> AsyncIterator[PluginManager]:
    module = importlib.import_module("live_plugin")
    db = Database(settings.effective_database_url)
    await db.upgrade()
    mgr = PluginManager(db, settings, PluginLoader([module.Live], group="none"))
    await mgr.start()
    await mgr.enable("live")
    yield mgr
    await mgr.stop()
    await db.dispose()


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)
    importlib.invalidate_caches()
    # Make sure the new source is not mistaken for the cached bytecode.
    for pyc in path.parent.glob("__pycache__/*"):
        pyc.unlink()


async def _answer(mgr: PluginManager) -> Any:
    result = await mgr.execute("live")
    assert result.data is not None
    return result.data["answer"]


async def test_reload_swaps_instance_and_keeps_config(
    manager: PluginManager, plugin_file: Path
) -> None:
    await manager.set_config("live", {"interval": 5})
    assert await _answer(manager) == 1
    _rewrite(plugin_file, SOURCE.format(version="1.1.0", answer=2))
    assert await manager.reload("live") is None
    assert await _answer(manager) == 2
    managed = manager.get("live")
    assert managed.metadata.version == "1.1.0"
    assert managed.config.stored == {"interval": 5}
    assert managed.interval == 5
    assert (await manager.row("live")).version == "1.1.0"
    events = sys.modules["live_plugin"].EVENTS
    assert events[-1] == ("enable", "1.1.0")
    assert "live" in manager.scheduler.scheduled


async def test_broken_edit_keeps_the_old_instance(
    manager: PluginManager, plugin_file: Path
) -> None:
    _rewrite(plugin_file, "this is not python(\n")
    error = await manager.reload("live")
    assert error is not None
    assert "SyntaxError" in error
    assert manager.get("live").reload_error == error
    assert await _answer(manager) == 1
    _rewrite(plugin_file, SOURCE.format(version="1.2.0", answer=3).replace('"live"', '"Bad Id"'))
    assert await manager.reload("live") is not None
    assert await _answer(manager) == 1


async def test_watcher_reloads_on_file_change(manager: PluginManager, plugin_file: Path) -> None:
    task = asyncio.create_task(watch_plugins(manager, debounce_ms=50))
    try:
        await asyncio.sleep(0.5)
        _rewrite(plugin_file, SOURCE.format(version="2.0.0", answer=7))
        for _ in range(100):
            if manager.get("live").metadata.version == "2.0.0":
                break
            await asyncio.sleep(0.1)
        assert await _answer(manager) == 7
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
