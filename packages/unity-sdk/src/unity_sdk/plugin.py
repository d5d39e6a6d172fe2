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

A plugin with settings declares them as a pydantic model, names it as the
metadata's ``config_schema`` and subclasses ``PluginBase[ThatModel]``:
``self.config`` is then the validated model instance (the hub validates every
config before the plugin sees it; the plugin never re-validates)::

    class PingConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")

        url: str = Field(description="What to ping")
        timeout: float = Field(5, gt=0, description="Seconds to wait")
        token: SecretStr | None = Field(None, description="Masked, never logged")

    class Ping(PluginBase[PingConfig]):
        def get_metadata(self) -> PluginMetadata:
            return PluginMetadata(id="ping", name="Ping", version="1.0.0",
                                  config_schema=PingConfig)

        async def collect_data(self) -> dict[str, Any]:
            async with httpx.AsyncClient(timeout=self.config.timeout) as client:
                ...

The JSON Schema of the model feeds the API and the dashboard's config form;
``SecretStr`` fields are secret (masked, sealed at rest, may reference a stored
credential). ``PluginBase[Model]`` and ``config_schema`` must name the same
model (the hub refuses the plugin otherwise). A plugin whose ``config_schema``
is a JSON Schema dict, or that has none, subclasses plain ``PluginBase`` and
receives a dict with the schema's defaults filled in.

A plugin may also take part in discovery: the classmethod ``discover(facts)``
gets what a scan saw on a host (:class:`~unity_sdk.discovery.HostFacts`:
listening sockets, disks, GPUs, the Docker socket, commands on PATH...) and
returns :class:`~unity_sdk.Proposal` s, suggestions someone accepts or
dismisses (by default none). It runs wherever discovery runs (the hub for its
own machine, the agent on every other), so it reads only ``facts``.

Where the code runs (``PluginMetadata.isolation``):

- ``Isolation.THREAD`` (default): an event-loop thread of the hub's own
  process, shared with other plugins until one blocks it (then that one gets
  a thread of its own). Blocking calls only block that thread, but the thread cannot be killed, and
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
from typing import Any, ClassVar, Generic, cast, get_args, get_origin

from pydantic import BaseModel, ValidationError
from typing_extensions import TypeVar

from unity_sdk._agent_wire import Proposal
from unity_sdk._runner import LocalRunner, Runner
from unity_sdk.discovery import HostFacts
from unity_sdk.errors import ConfigError, error_details
from unity_sdk.metadata import HealthStatus, PluginMetadata

__all__ = ["ConfigT", "PluginBase"]

# What ``self.config`` holds: the plugin's config model, by default a dict.
ConfigT = TypeVar("ConfigT", bound=BaseModel | dict[str, Any], default=dict[str, Any])


class PluginBase(ABC, Generic[ConfigT]):
    """Base class of every Unity plugin.

    The hub creates one instance per plugin (and per remote target) and keeps
    it for as long as the plugin is loaded. ``self.config`` holds the validated
    config: an instance of ``config_model`` for a ``PluginBase[Model]``, else a
    dict with defaults filled in. ``self.runner`` runs commands on the target
    host (a ``Runner``); ``self.logger`` is a logger named
    after the plugin.

    ``config_model`` is the model named by ``PluginBase[Model]`` (None for a
    plain ``PluginBase``). A config given as a mapping (``Plugin(config={...})``
    in a test) is validated against it, ``ConfigError`` when it does not fit;
    none or an empty one holds the model's defaults, unvalidated when the
    model has required fields (such an instance only describes the plugin: the
    hub runs a plugin only with a config that validated).
    """

    config_model: ClassVar[type[BaseModel] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            origin = get_origin(base)
            if isinstance(origin, type) and issubclass(origin, PluginBase):
                model = next(iter(get_args(base)), None)
                if isinstance(model, type) and issubclass(model, BaseModel):
                    cls.config_model = model

    def __init__(
        self,
        config: ConfigT | Mapping[str, Any] | None = None,
        *,
        runner: Runner | None = None,
    ) -> None:
        self.config = config
        self.runner: Runner = runner or LocalRunner()
        self.logger = logging.getLogger(f"unity.plugin.{type(self).__name__}")

    @property
    def config(self) -> ConfigT:
        """The validated config (see the class docstring)."""
        return self._config

    @config.setter
    def config(self, value: ConfigT | Mapping[str, Any] | None) -> None:
        self._config = cast(ConfigT, _adopt(type(self).config_model, value))

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

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """Propose this plugin for what a host runs (default: nothing to propose).

        Discovery calls it on the class, with what one scan of a host saw, and
        shows the proposals to someone who may accept them; nothing is enabled
        by proposing. Read only ``facts``: no I/O, no network, quick. Each
        proposal names this plugin, has a ``key`` stable across scans (the id,
        or ``"{id}:{what}"``, so a dismissed proposal stays dismissed), and a
        ``config`` that validates against the plugin's schema, pointing at
        what was found. A secret the plugin needs stays out of ``config``:
        ``credential`` names its field, for a stored credential. Proposals
        that break these rules are left out
        (:func:`~unity_sdk.discovery.collect_proposals`). Example::

            @classmethod
            def discover(cls, facts: HostFacts) -> list[Proposal]:
                return [
                    Proposal(
                        key=f"postgres:{socket.port}",
                        plugin="postgres",
                        title=f"PostgreSQL on port {socket.port}",
                        reason=f"{socket.process or 'a process'} listens on {socket.endpoint}",
                        config={"host": socket.host, "port": socket.port},
                        credential="password",
                    )
                    for socket in facts.listening(ports=[5432], processes=["postgres"])
                ]
        """
        return []

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

    async def on_config_change(self, new: ConfigT) -> None:
        """Called after a new, validated config was stored and set as ``self.config``.

        Example::

            async def on_config_change(self, new: PingConfig) -> None:
                self.client.base_url = new.url
        """


def _adopt(model: type[BaseModel] | None, value: Any) -> BaseModel | dict[str, Any]:
    """``value`` in the shape ``self.config`` holds for a class whose model is ``model``."""
    if model is None:
        # A plain PluginBase with a model as config_schema gets the values as a dict.
        return value.model_dump() if isinstance(value, BaseModel) else dict(value or {})
    if isinstance(value, model):
        return value
    data = value.model_dump() if isinstance(value, BaseModel) else dict(value or {})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        if not data:
            # Not configured yet: only the defaults, for describing the plugin.
            return model.model_construct()
        problems = error_details(exc)
        raise ConfigError(f"config is not a valid {model.__name__}", problems) from None
