"""What the overview shows: every host as a card, every enabled plugin, the state counts.

The host cards are :func:`unity.views.hosts.host_cards` (the hub's own host
first); their headline numbers and sparklines come from
:mod:`unity.views.readings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from unity.plugins.loader import LoadFailure
from unity.plugins.manager import PluginManager
from unity.storage.types import utcnow
from unity.views.catalogue import PluginView, every_plugin, load_failures
from unity.views.hosts import HostCard, host_cards
from unity.views.readings import (
    SPARK_HEIGHT,
    SPARK_WIDTH,
    Reading,
    Sparkline,
    lookup,
    sparkline,
)
from unity_sdk import PluginState

__all__ = [
    "SPARK_HEIGHT",
    "SPARK_WIDTH",
    "HostCard",
    "Overview",
    "Reading",
    "Sparkline",
    "build_overview",
    "count_states",
    "lookup",
    "sparkline",
]


@dataclass
class Overview:
    hosts: list[HostCard]
    plugins: list[PluginView]  # the enabled ones
    disabled: int
    load_failures: list[LoadFailure]
    counts: dict[PluginState, int]  # every state, most of them 0


def count_states(plugins: list[PluginView]) -> dict[PluginState, int]:
    """How many plugins are in each state, every state present."""
    counts = dict.fromkeys(PluginState, 0)
    for plugin in plugins:
        counts[plugin.state] += 1
    return counts


async def build_overview(session: AsyncSession, manager: PluginManager) -> Overview:
    """Every host, every enabled plugin, and how many plugins are in each state."""
    now = utcnow()
    plugins = await every_plugin(session, manager)
    hosts = await host_cards(session, manager, plugins=plugins, now=now)
    enabled = [p for p in plugins if p.enabled]
    return Overview(
        hosts=hosts,
        plugins=enabled,
        disabled=len(plugins) - len(enabled),
        load_failures=list(load_failures(manager)),
        counts=count_states(plugins),
    )
