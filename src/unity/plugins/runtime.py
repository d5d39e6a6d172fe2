"""What the hub keeps per plugin and per run, and how it reads plugin answers.

The types the registry, the supervisors, the API, the web pages and the tests
share: the managed-plugin record, run results, the domain errors, and the
conversions of a plugin's raw answers. States are ``unity_sdk.PluginState``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from unity.plugins.loader import LoadedPlugin
from unity.plugins.worker import PluginWorker
from unity_sdk import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    HealthState,
    HealthStatus,
    Isolation,
    PluginBase,
    PluginMetadata,
    PluginState,
    RunStatus,
    ValidatedConfig,
    encode_document,
    require_storable_numbers,
)

if TYPE_CHECKING:
    from unity.credentials.ssh import SSHRunner

__all__ = [
    "HOOK_TIMEOUT",
    "ManagedPlugin",
    "PluginNotFoundError",
    "PluginStateError",
    "RunResult",
    "as_document",
    "as_health",
    "describe_error",
    "run_data",
]


# How long lifecycle hooks (on_enable, on_disable, on_error...) may take.
HOOK_TIMEOUT = 30.0
# A run's recorded error (and the warning logged with it) keeps this many characters:
# a plugin raising with a megabyte message must not grow the database by as much.
MAX_ERROR_CHARS = 2000


class PluginNotFoundError(LookupError):
    """No plugin with that id is known to the hub."""


class PluginStateError(RuntimeError):
    """The request conflicts with the plugin's state (not loaded, hook failed...)."""


@dataclass
class ManagedPlugin:
    """A loaded plugin and everything the manager tracks about it."""

    loaded: LoadedPlugin
    instance: PluginBase[Any]
    worker: PluginWorker
    config: ValidatedConfig
    enabled: bool = False
    active: bool = False
    consecutive_failures: int = 0
    reload_error: str | None = None
    run_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    remotes: dict[str, tuple[PluginBase[Any], SSHRunner]] = field(default_factory=dict)
    # Set by the admin (UNITY_PROCESS_ISOLATION, UNITY_ISOLATE_ENTRY_POINTS).
    force_process: bool = False
    # CPU seconds of the worker thread at the end of the last run, and the delay
    # that CPU use imposes on the next run (UNITY_PLUGIN_CPU_SHARE).
    cpu_mark: float = 0.0
    cpu_delay: float = 0.0
    # What the runs say (unity_sdk.run_state) and the last assessed health; the
    # state shown (unity_sdk.plugin_state) follows from them.
    runs: PluginState = PluginState.UNKNOWN
    health: HealthState | None = None
    state: PluginState = PluginState.UNKNOWN

    @property
    def id(self) -> str:
        return self.loaded.id

    @property
    def metadata(self) -> PluginMetadata:
        return self.loaded.metadata

    @property
    def isolated(self) -> bool:
        return self.force_process or self.metadata.isolation is Isolation.PROCESS

    @property
    def interval(self) -> float:
        return self.config.interval or self.metadata.default_interval

    @property
    def busy(self) -> bool:
        return self.run_lock.locked() or self.worker.busy


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run, as recorded."""

    plugin_id: str
    status: RunStatus
    started_at: datetime
    duration_ms: float
    error: str | None = None
    data: dict[str, Any] | None = None
    metrics_count: int = 0


def describe_error(exc: BaseException) -> str:
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if len(text) > MAX_ERROR_CHARS:
        text = f"{text[:MAX_ERROR_CHARS]}... ({len(text):,} characters, truncated)"
    return text


def as_document(value: Any, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """A plugin's answer as the JSON document stored: ``TypeError`` when it is not a
    dict of storable JSON, ``DocumentTooLargeError`` past the limit."""
    document: dict[str, Any] = json.loads(encode_document(value, max_bytes=max_bytes))
    try:
        return require_storable_numbers(document, name="document")
    except ValueError as exc:
        raise TypeError(f"collect_data returned {exc}") from None


def run_data(
    documents: list[tuple[str, dict[str, Any]]], targets: tuple[str, ...]
) -> dict[str, Any] | None:
    """A run's result: the document, or one per host when the plugin has targets."""
    if not targets:
        return documents[0][1] if documents else None
    return dict(documents)


def as_health(value: Any) -> HealthStatus:
    if isinstance(value, HealthStatus):
        return value
    if isinstance(value, HealthState):
        return HealthStatus(status=value)
    if isinstance(value, bool):
        return HealthStatus(status=HealthState.HEALTHY if value else HealthState.UNHEALTHY)
    return HealthStatus.model_validate(value)
