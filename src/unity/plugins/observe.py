"""What the hub tells observers (the alert engine) after every run.

After every recorded run -- scheduled, manual, or an external plugin's batch --
the hub calls each registered observer with a :class:`RunObserved`. When a
plugin's state or health changes, it also calls them with a
:class:`StateChanged` (the change is stored as an event first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from unity_sdk import HealthStatus, PluginState, RunStatus

__all__ = ["Observer", "RunObserved", "StateChanged"]


@dataclass(frozen=True)
class RunObserved:
    """One recorded run."""

    plugin_id: str
    at: datetime  # when the run started (the samples' timestamp)
    status: RunStatus
    state: PluginState  # the plugin's state after this run
    documents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (host, doc)
    health: HealthStatus | None = None  # what assess(document) said, if anything
    external: bool = False


@dataclass(frozen=True)
class StateChanged:
    """A plugin's state went from ``previous`` to ``current``."""

    plugin_id: str
    at: datetime
    previous: PluginState
    current: PluginState
    message: str = ""


Observer = Callable[[RunObserved | StateChanged], Awaitable[None]]
