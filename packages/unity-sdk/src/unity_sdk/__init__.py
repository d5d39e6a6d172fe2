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
    "BatchAccepted",
    "CollectionError",
    "ConfigError",
    "DependencyMissingError",
    "HealthAccepted",
    "HealthReport",
    "HealthState",
    "HealthStatus",
    "Isolation",
    "MetadataError",
    "MetricBatch",
    "MetricField",
    "MetricKind",
    "PluginAuthError",
    "PluginBase",
    "PluginCategory",
    "PluginConfig",
    "PluginError",
    "PluginMetadata",
    "PluginNotReadyError",
    "RegisterRequest",
    "RegisterResponse",
    "Requirements",
    "Sample",
    "UnityError",
    "__version__",
    "check_document",
    "iter_metric_values",
]
