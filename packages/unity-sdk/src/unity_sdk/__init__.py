"""unity-sdk: the plugin contract of the Unity homelab hub.

Everything a plugin author needs is importable from here::

    from unity_sdk import PluginBase, PluginMetadata, PluginCategory

An external plugin (its own process, reporting over HTTP) subclasses
``ExternalPluginBase``; ``HubClient`` is the HTTP client underneath. Test
helpers live in :mod:`unity_sdk.testing`, not imported here.
"""

from unity_sdk.alerts import AlertKind, AlertRule, AlertSeverity, convert_unit, rule_problems
from unity_sdk.client import HubClient
from unity_sdk.errors import (
    CollectionError,
    ConfigError,
    DependencyMissingError,
    DocumentTooLargeError,
    HubAuthError,
    HubError,
    HubRequestError,
    HubUnavailableError,
    MetadataError,
    PluginAuthError,
    PluginError,
    PluginNotReadyError,
    UnityError,
    error_details,
)
from unity_sdk.external import ExternalPluginBase
from unity_sdk.metadata import (
    HealthState,
    HealthStatus,
    Isolation,
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginCategory,
    PluginMetadata,
    Requirements,
)
from unity_sdk.metrics import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    check_document,
    encode_document,
    iter_metric_values,
    undeclared_numbers,
)
from unity_sdk.numbers import number_problems
from unity_sdk.plugin import PluginBase
from unity_sdk.prometheus import (
    PrometheusSeries,
    check_prometheus_names,
    prometheus_collisions,
    prometheus_series,
)
from unity_sdk.state import PluginState, RunStatus, plugin_state, run_state
from unity_sdk.wire import (
    BatchAccepted,
    HealthAccepted,
    HealthReport,
    MetricBatch,
    PluginConfig,
    RegisterRequest,
    RegisterResponse,
    Sample,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "AlertKind",
    "AlertRule",
    "AlertSeverity",
    "BatchAccepted",
    "CollectionError",
    "ConfigError",
    "DependencyMissingError",
    "DocumentTooLargeError",
    "ExternalPluginBase",
    "HealthAccepted",
    "HealthReport",
    "HealthState",
    "HealthStatus",
    "HubAuthError",
    "HubClient",
    "HubError",
    "HubRequestError",
    "HubUnavailableError",
    "Isolation",
    "MetadataError",
    "MetricBatch",
    "MetricDisplay",
    "MetricField",
    "MetricKind",
    "PluginAuthError",
    "PluginBase",
    "PluginCategory",
    "PluginConfig",
    "PluginError",
    "PluginMetadata",
    "PluginNotReadyError",
    "PluginState",
    "PrometheusSeries",
    "RegisterRequest",
    "RegisterResponse",
    "Requirements",
    "RunStatus",
    "Sample",
    "UnityError",
    "__version__",
    "check_document",
    "check_prometheus_names",
    "convert_unit",
    "encode_document",
    "error_details",
    "iter_metric_values",
    "number_problems",
    "plugin_state",
    "prometheus_collisions",
    "prometheus_series",
    "rule_problems",
    "run_state",
    "undeclared_numbers",
]
