"""unity-sdk: the plugin contract of the Unity homelab hub.

Everything a plugin author needs is importable from here::

    from unity_sdk import PluginBase, PluginMetadata, PluginCategory
"""

from unity_sdk.errors import (
    CollectionError,
    ConfigError,
    DependencyMissingError,
    MetadataError,
    PluginAuthError,
    PluginError,
    PluginNotReadyError,
    UnityError,
)
from unity_sdk.metadata import (
    HealthState,
    HealthStatus,
    Isolation,
    MetricField,
    MetricKind,
    PluginCategory,
    PluginMetadata,
    Requirements,
)
from unity_sdk.metrics import check_document, iter_metric_values
from unity_sdk.plugin import PluginBase

__version__ = "0.1.0"

__all__ = [
    "CollectionError",
    "ConfigError",
    "DependencyMissingError",
    "HealthState",
    "HealthStatus",
    "Isolation",
    "MetadataError",
    "MetricField",
    "MetricKind",
    "PluginAuthError",
    "PluginBase",
    "PluginCategory",
    "PluginError",
    "PluginMetadata",
    "PluginNotReadyError",
    "Requirements",
    "UnityError",
    "__version__",
    "check_document",
    "iter_metric_values",
]
