"""The plugin contract: every method the hub calls on a plugin, in one place.

A plugin is a subclass of :class:`PluginBase` with two methods:
``get_metadata()`` and ``async collect_data()``. Everything else has a sensible
default. The hub owns scheduling, timeouts, retries, execution history and
storage; a plugin only describes itself and collects.

Example::

    from unity_sdk import PluginBase, PluginCategory, PluginMetadata

    class Uptime(PluginBase):
        def get_metadata(self) -> PluginMetadata:
            return PluginMetadata(
                id="uptime", name="Uptime", version="1.0.0",
                category=PluginCategory.SYSTEM,
            )

        async def collect_data(self) -> dict[str, float]:
            with open("/proc/uptime") as f:
                return {"uptime": float(f.read().split()[0])}

Where the code runs (``PluginMetadata.isolation``):

- ``Isolation.THREAD`` (default): a worker thread of the hub's own process.
  Blocking calls only block that thread, but the thread cannot be killed, and
  whatever ends or corrupts the process ends the hub: ``os._exit()``, a crash
  in a C extension, unbounded memory.
- ``Isolation.PROCESS``: a fresh child process per collection and health
  check, memory-capped, killed on timeout; a crash or ``os._exit()`` fails
  only that run. No state survives between runs and ``targets`` do not apply.

Declare ``PROCESS`` for code that may crash, hang in native code or allocate
without bound; administrators can force it for any plugin
(``UNITY_PROCESS_ISOLATION``, ``unity serve --isolate ID``).

Limits the hub applies to every run: the document at most 1 MiB of JSON
(:class:`~unity_sdk.errors.DocumentTooLargeError` otherwise), 64 KiB of
printed and logged output a minute (the rest is dropped), and in thread mode a tenth
of a CPU core on average (a hungrier plugin is run less often).
``get_metadata()`` must return at once: loading is bounded (5 s by default)
and a plugin still loading then is reported as failed to load.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from unity_sdk._runner import LocalRunner, Runner
from unity_sdk.metadata import HealthStatus, PluginMetadata

__all__ = ["PluginBase"]


class PluginBase(ABC):
    """Base class of every Unity plugin.

    The hub creates one instance per plugin (and per remote target) and keeps
    it for as long as the plugin is loaded. ``self.config`` holds the validated
    config (defaults filled in); ``self.runner`` runs commands on the target
    host (see :mod:`unity_sdk._runner`); ``self.logger`` is a logger named
    after the plugin.
    """

    def __init__(
        self, config: Mapping[str, Any] | None = None, *, runner: Runner | None = None
    ) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self.runner: Runner = runner or LocalRunner()
        self.logger = logging.getLogger(f"unity.plugin.{type(self).__name__}")

    @abstractmethod
    def get_metadata(self) -> PluginMetadata:
        """Describe the plugin: id, name, version, category, metrics, schema.

        Called once when the plugin is loaded, with a time limit: no network
        or disk work here. The result must not change while the plugin runs.
        Example::

            def get_metadata(self) -> PluginMetadata:
                return PluginMetadata(
                    id="uptime", name="Uptime", version="1.0.0",
                    metrics=[MetricField(name="uptime", unit="s")],
                    default_interval=30,
                )
        """

    @abstractmethod
    async def collect_data(self) -> dict[str, Any]:
        """Collect one document of metrics and return it as a JSON-able dict.

        Raise one of :mod:`unity_sdk.errors` when collection fails; the hub
        records the failure and retries with backoff. Example::

            async def collect_data(self) -> dict[str, Any]:
                return {"cpu": {"percent": psutil.cpu_percent()}}
        """

    async def health_check(self) -> HealthStatus:
        """Report whether the plugin can collect right now (default: healthy).

        Example::

            async def health_check(self) -> HealthStatus:
                if not shutil.which("sensors"):
                    return HealthStatus.unhealthy("the sensors command is not installed")
                return HealthStatus.healthy()
        """
        return HealthStatus.healthy()

    def assess(self, document: dict[str, Any]) -> HealthStatus | None:
        """Judge the health of what the plugin watches from a document it just collected.

        Called by the hub after every successful run with that run's document,
        so health is always current (not only when ``health_check`` is asked).
        Return ``None`` (the default) to say nothing; return
        ``HealthStatus.not_applicable(...)`` when there is nothing to monitor
        on this host. Must be quick and pure: no I/O. Example::

            def assess(self, document: dict[str, Any]) -> HealthStatus | None:
                if document["ups"]["on_battery"]:
                    return HealthStatus.degraded("on battery")
                return HealthStatus.healthy()
        """
        return None

    async def on_enable(self) -> None:
        """Called when the plugin is enabled or loaded enabled; open resources here.

        Example::

            async def on_enable(self) -> None:
                self.client = httpx.AsyncClient(base_url=self.config["url"])
        """

    async def on_disable(self) -> None:
        """Called when the plugin is disabled, reloaded or the hub stops; release resources.

        Example::

            async def on_disable(self) -> None:
                await self.client.aclose()
        """

    async def on_error(self, exc: BaseException) -> None:
        """Called after a collection failed or timed out, with the exception.

        The hub has already recorded the failure; use this to reset state.
        Example::

            async def on_error(self, exc: BaseException) -> None:
                self.connection = None  # reconnect on the next run
        """

    async def on_config_change(self, new: dict[str, Any]) -> None:
        """Called after a new, validated config was stored and set as ``self.config``.

        Example::

            async def on_config_change(self, new: dict[str, Any]) -> None:
                self.client.base_url = new["url"]
        """
