"""The tables: plugin registry, metrics and their rollup tiers, executions, hub
tokens, credentials, notifications, alerts, hosts and their agents.

Only sealed bytes of a secret are stored in ``credentials``; ``public`` holds
what may be shown (fingerprints, public keys, user names, certificate subject
and expiry).

Every table of the hub is defined in this package, one module per area, and
imported from here (``from unity.storage.models import Plugin``).
"""

from unity.storage.models._base import Base, table_of
from unity.storage.models.access import ApiToken, BatchReceipt, EnrollmentToken, PluginApiKey
from unity.storage.models.alerts import (
    AlertInstance,
    AlertRuleOverride,
    AlertRuleRow,
    AlertSilence,
    AlertTransition,
    MaintenanceWindow,
)
from unity.storage.models.credentials import Credential, CredentialAudit, Server
from unity.storage.models.hosts import AgentKey, DiscoveryProposal, Host
from unity.storage.models.hub import HubLease
from unity.storage.models.notify import (
    NotificationChannel,
    NotificationDelivery,
    NotificationOutbox,
)
from unity.storage.models.plugins import (
    LatestMetric,
    MetricSeries,
    Plugin,
    PluginEvent,
    PluginExecution,
    PluginMetric,
    RollupHour,
    RollupMark,
    RollupMinute,
)

__all__ = [
    "AgentKey",
    "AlertInstance",
    "AlertRuleOverride",
    "AlertRuleRow",
    "AlertSilence",
    "AlertTransition",
    "ApiToken",
    "Base",
    "BatchReceipt",
    "Credential",
    "CredentialAudit",
    "DiscoveryProposal",
    "EnrollmentToken",
    "Host",
    "HubLease",
    "LatestMetric",
    "MaintenanceWindow",
    "MetricSeries",
    "NotificationChannel",
    "NotificationDelivery",
    "NotificationOutbox",
    "Plugin",
    "PluginApiKey",
    "PluginEvent",
    "PluginExecution",
    "PluginMetric",
    "RollupHour",
    "RollupMark",
    "RollupMinute",
    "Server",
    "table_of",
]
