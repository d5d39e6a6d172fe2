"""Finding plugins: the built-in list and the ``unity.plugins`` entry points.

There are exactly two sources, both explicit: ``BUILTIN_PLUGINS`` in
``unity_catalogue`` and the entry-point group ``unity.plugins`` (the
entry-point name is the plugin id). Every plugin is validated here by the
SDK's rule (:func:`unity_sdk.check_plugin_class`, the one ``unity author check``
and ``check_plugin`` apply too); one that fails to import or validate becomes
a :class:`LoadFailure` and is skipped.

Loading runs third-party code (the import, ``__init__``, ``get_metadata()``),
so each plugin loads on its own daemon thread and all of them share one time
bound: a plugin still loading when it expires is a :class:`LoadFailure` too,
its thread abandoned, and start-up goes on without it.
"""

from __future__ import annotations

import importlib
import logging
import os
import site
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from unity_sdk import PluginBase, PluginMetadata, check_plugin_class

__all__ = ["ENTRY_POINT_GROUP", "LoadFailure", "LoadedPlugin", "PluginLoader"]

ENTRY_POINT_GROUP = "unity.plugins"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin class that passed validation, with its metadata."""

    cls: type[PluginBase[Any]]
    metadata: PluginMetadata
    source: str  # "builtin" or "entry_point"
    distribution: str | None = None

    @property
    def id(self) -> str:
        return self.metadata.id

    @property
    def source_file(self) -> Path | None:
        module = sys.modules.get(self.cls.__module__)
        path = getattr(module, "__file__", None)
        return Path(path) if path else None


@dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    source: str
    error: str
    distribution: str | None = field(default=None)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


_Load = Callable[[], "LoadedPlugin | LoadFailure"]


def _in_daemon_thread(load: _Load, name: str) -> Future[LoadedPlugin | LoadFailure]:
    """Start ``load`` on a daemon thread: one that never returns cannot hold the process."""
    future: Future[LoadedPlugin | LoadFailure] = Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(load())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, name=f"plugin-load:{name}", daemon=True).start()
    return future


def load_bounded(
    jobs: Sequence[tuple[str, str, str | None, _Load]], timeout: float | None
) -> list[LoadedPlugin | LoadFailure]:
    """Run every ``(name, source, distribution, load)`` job at once, within ``timeout``.

    Results keep the order of ``jobs``; a job still running at the deadline
    becomes a :class:`LoadFailure`. ``timeout=None`` waits for every job.
    """
    futures = [_in_daemon_thread(load, name) for name, _, _, load in jobs]
    wait(futures, timeout=timeout)
    results: list[LoadedPlugin | LoadFailure] = []
    for (name, source, distribution, _), future in zip(jobs, futures, strict=True):
        if not future.done():
            error = (
                f"did not load within {timeout:g}s (its import or get_metadata() blocked); "
                "the hub started without it"
            )
            results.append(LoadFailure(name, source, error, distribution))
        elif future.exception() is not None:
            exc = future.exception()
            assert exc is not None
            results.append(LoadFailure(name, source, _describe(exc), distribution))
        else:
            results.append(future.result())
    return results


_seen_path_files: set[Path] = set()


def site_dirs() -> list[Path]:
    """The environment's site directories, where packages are installed."""
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return [Path(d) for d in dirs if Path(d).is_dir()]


def install_dirs() -> list[Path]:
    """Where a package installed for the hub lands: the site directories and the
    ``PYTHONPATH`` folders (``pip install --target``)."""
    extra = [Path(d) for d in os.environ.get("PYTHONPATH", "").split(os.pathsep) if d]
    return [*site_dirs(), *(d for d in extra if d.is_dir())]


def _path_files() -> set[Path]:
    return {pth for folder in site_dirs() for pth in folder.glob("*.pth")}


def refresh_installed_packages() -> None:
    """Make packages installed after start-up importable, as a new process would see them.

    Caches of the import system are dropped, and ``.pth`` files that appeared in
    the site directories since start-up (an editable ``pip install -e``) are
    processed once, as Python's ``site`` module does at start-up.
    """
    importlib.invalidate_caches()
    if not _seen_path_files:
        return
    known = set(sys.path)
    for pth in sorted(_path_files() - _seen_path_files):
        _seen_path_files.add(pth)
        site.addpackage(str(pth.parent), pth.name, known)


def remember_installed_packages() -> None:
    """Note the ``.pth`` files that Python processed at start-up (see above)."""
    _seen_path_files.update(_path_files())


class PluginLoader:
    """Discovers and validates plugins from the two explicit sources."""

    def __init__(
        self,
        builtins: Sequence[type[PluginBase[Any]]] | None = None,
        *,
        group: str = ENTRY_POINT_GROUP,
        skip: Iterable[str] = (),
    ) -> None:
        if builtins is None:
            from unity_catalogue import BUILTIN_PLUGINS

            builtins = BUILTIN_PLUGINS
        self.builtins = list(builtins)
        self.group = group
        self.skip = set(skip)

    def discover(
        self, timeout: float | None = None, *, known: Iterable[str] | None = None
    ) -> tuple[list[LoadedPlugin], list[LoadFailure]]:
        """Load every plugin within ``timeout`` seconds; return the good ones and the failures.

        With ``known`` (a rescan of a running hub): only entry points whose name is
        not in it, after the import system has been told about packages
        installed since the process started.
        """
        rescan = known is not None
        loaded_before = set(known or ())
        if rescan:
            refresh_installed_packages()
        loaded: dict[str, LoadedPlugin] = {}
        failures: list[LoadFailure] = []

        def add(result: LoadedPlugin | LoadFailure) -> None:
            if isinstance(result, LoadFailure):
                log.error(
                    "plugin %s (%s) failed to load: %s", result.name, result.source, result.error
                )
                failures.append(result)
            elif result.id in self.skip:
                log.info("plugin %s skipped by settings", result.id)
            elif result.id in loaded:
                other = loaded[result.id]
                failures.append(
                    LoadFailure(
                        result.id,
                        result.source,
                        f"duplicate plugin id: already provided by {other.cls.__module__}",
                        result.distribution,
                    )
                )
            else:
                loaded[result.id] = result

        jobs: list[tuple[str, str, str | None, _Load]] = []
        for cls in () if rescan else self.builtins:
            name = str(getattr(cls, "__name__", repr(cls)))
            jobs.append((name, "builtin", None, partial(self._load_class, cls, "builtin")))
        for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
            if ep.name not in self.skip and ep.name not in loaded_before:
                distribution = ep.dist.name if ep.dist else None
                load = partial(self._load_entry_point, ep)
                jobs.append((ep.name, "entry_point", distribution, load))
        for result in load_bounded(jobs, timeout):
            add(result)
        return list(loaded.values()), failures

    def _load_class(
        self,
        cls: object,
        source: str,
        *,
        expected_id: str | None = None,
        distribution: str | None = None,
    ) -> LoadedPlugin | LoadFailure:
        name = expected_id or str(getattr(cls, "__name__", repr(cls)))
        try:
            metadata = check_plugin_class(cls, expected_id=expected_id)
        except Exception as exc:
            return LoadFailure(name, source, _describe(exc), distribution)
        assert isinstance(cls, type)
        return LoadedPlugin(cls, metadata, source, distribution)

    def _load_entry_point(self, ep: EntryPoint) -> LoadedPlugin | LoadFailure:
        distribution = ep.dist.name if ep.dist else None
        try:
            obj = ep.load()
        except Exception as exc:
            return LoadFailure(ep.name, "entry_point", _describe(exc), distribution)
        return self._load_class(obj, "entry_point", expected_id=ep.name, distribution=distribution)

    def reload(
        self, plugin: LoadedPlugin, timeout: float | None = None
    ) -> LoadedPlugin | LoadFailure:
        """Re-import the plugin's module and validate the new class, within ``timeout``.

        On any failure the caller keeps the old class: nothing here touches it.
        """
        job = (plugin.id, plugin.source, plugin.distribution, partial(self._reload, plugin))
        return load_bounded([job], timeout)[0]

    def _reload(self, plugin: LoadedPlugin) -> LoadedPlugin | LoadFailure:
        module_name = plugin.cls.__module__
        try:
            module = importlib.reload(sys.modules[module_name])
            cls = getattr(module, plugin.cls.__qualname__)
        except Exception as exc:
            return LoadFailure(plugin.id, plugin.source, _describe(exc), plugin.distribution)
        expected = plugin.id
        result = self._load_class(
            cls, plugin.source, expected_id=expected, distribution=plugin.distribution
        )
        return result
