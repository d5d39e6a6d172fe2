"""The read model: what the hub shows about its plugins, in plain functions.

The API routes, the dashboard and ``/metrics`` all read through here, so a
plugin has one metadata source and one state wherever it appears:

- :mod:`unity.views.catalogue`: every plugin with its metadata and its
  :class:`~unity_sdk.PluginState` (:func:`plugin_metadata`, :func:`state_of`).
- :mod:`unity.views.history`: a plugin's runs, documents and metric series.
- :mod:`unity.views.overview`: the dashboard's overview (hosts, state counts).
- :mod:`unity.views.hosts`: host cards (the hub's own and the agents'), a host's
  plugins and discovery proposals; :mod:`unity.views.readings` their numbers.
- :mod:`unity.views.alerts`: active alerts, their history and firing periods,
  the rules in force and the threshold lines charts draw, silences, maintenance.
- :mod:`unity.views.channels`: notification channels and the delivery log.

Layering: ``web | api | cli → views → plugins | credentials | auth → storage``.
The views return plain records; each caller shapes them (JSON, HTML, text).
"""

from __future__ import annotations

from unity.views.catalogue import (
    HealthView,
    PluginDetailView,
    PluginView,
    detail_of,
    every_plugin,
    expected_interval,
    external_plugins,
    is_stale,
    load_failures,
    plugin_detail,
    plugin_metadata,
    plugin_page,
    plugin_view,
    state_of,
)
from unity.views.history import (
    ItemSeries,
    Point,
    QueryError,
    Series,
    executions,
    metric_documents,
    metric_series,
    registered,
    state_events,
)
from unity.views.hosts import HostDetail, ProposalView, host_cards, host_detail, host_proposals
from unity.views.overview import HostCard, Overview, build_overview, count_states

__all__ = [
    "HealthView",
    "HostCard",
    "HostDetail",
    "ItemSeries",
    "Overview",
    "PluginDetailView",
    "PluginView",
    "Point",
    "ProposalView",
    "QueryError",
    "Series",
    "build_overview",
    "count_states",
    "detail_of",
    "every_plugin",
    "executions",
    "expected_interval",
    "external_plugins",
    "host_cards",
    "host_detail",
    "host_proposals",
    "is_stale",
    "load_failures",
    "metric_documents",
    "metric_series",
    "plugin_detail",
    "plugin_metadata",
    "plugin_page",
    "plugin_view",
    "registered",
    "state_events",
    "state_of",
]
