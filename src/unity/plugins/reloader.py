"""Development hot reload: watch plugin source files and swap live instances.

Started by ``unity serve --reload``. When a plugin's module file changes, the
manager re-imports it and swaps the instance (old ``on_disable``, new
``on_enable``, config kept). When a package is installed into the hub's
environment, the manager rescans for new plugins. A broken edit leaves the old code running and
the error visible on the plugin (``reload_error``) and in the log.
"""

from __future__ import annotations

import logging
from pathlib import Path

from watchfiles import Change, awatch

from unity.plugins.loader import install_dirs
from unity.plugins.manager import PluginManager

__all__ = ["watch_installs", "watch_plugins"]

log = logging.getLogger(__name__)


def _sources(manager: PluginManager) -> dict[Path, list[str]]:
    files: dict[Path, list[str]] = {}
    for plugin_id, managed in manager.plugins.items():
        path = managed.loaded.source_file
        if path is not None:
            files.setdefault(path.resolve(), []).append(plugin_id)
    return files


async def watch_plugins(manager: PluginManager, *, debounce_ms: int = 300) -> None:
    """Reload plugins whose source file changes, until cancelled."""
    files = _sources(manager)
    if not files:
        return
    folders = sorted({str(path.parent) for path in files})
    log.info("watching %d plugin source files for changes", len(files))
    async for changes in awatch(*folders, debounce=debounce_ms, recursive=False):
        changed = {Path(name).resolve() for kind, name in changes if kind is not Change.deleted}
        for path in sorted(changed & files.keys()):
            for plugin_id in files[path]:
                error = await manager.reload(plugin_id)
                if error is None:
                    log.info("hot-reloaded %s from %s", plugin_id, path)


def _is_install(change: tuple[Change, str]) -> bool:
    kind, name = change
    return kind is not Change.deleted and name.endswith((".dist-info", ".pth"))


async def watch_installs(manager: PluginManager, *, debounce_ms: int = 1000) -> None:
    """Rescan for new plugins whenever a package is installed, until cancelled."""
    folders = [str(folder) for folder in install_dirs()]
    if not folders:
        return
    async for changes in awatch(*folders, debounce=debounce_ms, recursive=False):
        if any(_is_install(change) for change in changes):
            added, failures = await manager.rescan()
            for plugin_id in added:
                log.info("found newly installed plugin %s", plugin_id)
            for failure in failures:
                log.error(
                    "newly installed plugin %s failed to load: %s", failure.name, failure.error
                )
