"""unity-sdk: the plugin contract of the Unity homelab hub.

Everything a plugin author needs is importable from here::

    from unity_sdk import PluginBase, PluginMetadata, PluginCategory

An external plugin (its own process, reporting over HTTP) subclasses
``ExternalPluginBase``; ``HubClient`` is the HTTP client underneath. What
the hub accepts (plugin classes, metadata, configs, metric batches) is the
rulebook here too (``check_plugin_class``, ``parse_metadata``,
``validate_config``, ``accept_batch``): the hub calls these very functions.
Test helpers live in :mod:`unity_sdk.testing`, not imported here.
"""

from unity_sdk.client import HubClient
from unity_sdk.config import (
    CREDENTIAL_REF,
    HUB_KEYS,
    INTERVAL_KEY,
    LOCAL_TARGET,
    MASK,
    RESERVED_KEYS,
    RETENTION_KEY,
    TARGETS_KEY,
    HubKey,
    ValidatedConfig,
    credential_reference,
    mask_secrets,
    plugin_view,
    secret_fields,
    validate_config,
)
from unity_sdk.errors import (
    BatchRefusedError,
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
from unity_sdk.plugin import ConfigT, PluginBase
from unity_sdk.prometheus import (
    PrometheusSeries,
    check_prometheus_names,
    prometheus_collisions,
    prometheus_series,
)
from unity_sdk.rules import (
    accept_batch,
    check_metadata,
    check_plugin_class,
    parse_metadata,
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
    "CREDENTIAL_REF",
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "HUB_KEYS",
    "INTERVAL_KEY",
    "LOCAL_TARGET",
    "MASK",
    "RESERVED_KEYS",
    "RETENTION_KEY",
    "TARGETS_KEY",
    "BatchAccepted",
    "BatchRefusedError",
    "CollectionError",
    "ConfigError",
    "ConfigT",
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
    "HubKey",
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
    "ValidatedConfig",
    "__version__",
    "accept_batch",
    "check_document",
    "check_metadata",
    "check_plugin_class",
    "check_prometheus_names",
    "credential_reference",
    "encode_document",
    "error_details",
    "iter_metric_values",
    "mask_secrets",
    "number_problems",
    "parse_metadata",
    "plugin_state",
    "plugin_view",
    "prometheus_collisions",
    "prometheus_series",
    "run_state",
    "secret_fields",
    "undeclared_numbers",
    "validate_config",
]
