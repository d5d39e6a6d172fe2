"""unity-sdk: the plugin contract of the Unity homelab hub.

Everything a plugin author needs is importable from here::

    from unity_sdk import PluginBase, PluginMetadata, PluginCategory

An external plugin (its own process, reporting over HTTP) subclasses
``ExternalPluginBase``; ``HubClient`` is the HTTP client underneath.

Public modules: this package, the contract modules it re-exports whole
(:mod:`unity_sdk.plugin`, :mod:`unity_sdk.metadata`, :mod:`unity_sdk.errors`,
:mod:`unity_sdk.state`, :mod:`unity_sdk.alerts`), and the author tooling imported by module path:
:mod:`unity_sdk.testing` (``FakeHub``, ``check_plugin``),
:mod:`unity_sdk.pytest_plugin` (fixtures, a ``pytest11`` entry point) and
:mod:`unity_sdk.run` (``python -m unity_sdk.run``). Modules whose names start
with an underscore are implementation details: the hub, like any other
consumer, imports only the names listed in ``__all__`` below.

What the hub accepts (plugin classes, metadata, configs, metric batches) is
the rulebook here too (``check_plugin_class``, ``parse_metadata``,
``validate_config``, ``accept_batch``): the hub calls these very functions.
"""

from unity_sdk._client import HubClient
from unity_sdk._config import (
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
from unity_sdk._external import ExternalPluginBase
from unity_sdk._metrics import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    check_document,
    encode_document,
    iter_metric_values,
    undeclared_numbers,
)
from unity_sdk._numbers import number_problems, require_storable_numbers
from unity_sdk._prometheus import (
    PrometheusSeries,
    check_prometheus_names,
    prometheus_advice,
    prometheus_collisions,
    prometheus_series,
)
from unity_sdk._rules import (
    accept_batch,
    accept_batch_json,
    check_metadata,
    check_plugin_class,
    parse_metadata,
)
from unity_sdk._runner import CommandResult, LocalRunner, Runner
from unity_sdk._wire import (
    API_KEY_PREFIX,
    ENROLLMENT_PREFIX,
    ERROR_CODES,
    MAX_BATCH_SAMPLES,
    MAX_HEALTH_DETAILS_BYTES,
    MAX_HEALTH_REPORT_BYTES,
    BatchAccepted,
    HealthAccepted,
    HealthReport,
    MetricBatch,
    PluginConfig,
    RegisterRequest,
    RegisterResponse,
    Sample,
    batch_problems,
    new_key_secret,
)
from unity_sdk.alerts import (
    AlertKind,
    AlertRule,
    AlertSeverity,
    convert_unit,
    rate_scale,
    rule_problems,
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
    error_lines,
)
from unity_sdk.metadata import (
    MAX_METRICS,
    PLUGIN_ID_PATTERN,
    HealthState,
    HealthStatus,
    Isolation,
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginCategory,
    PluginMetadata,
    Requirements,
    duplicate_names,
)
from unity_sdk.plugin import ConfigT, PluginBase
from unity_sdk.state import RUN_STATES, PluginState, RunStatus, plugin_state, run_state

__version__ = "0.1.0"

__all__ = [
    "API_KEY_PREFIX",
    "CREDENTIAL_REF",
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "ENROLLMENT_PREFIX",
    "ERROR_CODES",
    "HUB_KEYS",
    "INTERVAL_KEY",
    "LOCAL_TARGET",
    "MASK",
    "MAX_BATCH_SAMPLES",
    "MAX_HEALTH_DETAILS_BYTES",
    "MAX_HEALTH_REPORT_BYTES",
    "MAX_METRICS",
    "PLUGIN_ID_PATTERN",
    "RESERVED_KEYS",
    "RETENTION_KEY",
    "RUN_STATES",
    "TARGETS_KEY",
    "AlertKind",
    "AlertRule",
    "AlertSeverity",
    "BatchAccepted",
    "BatchRefusedError",
    "CollectionError",
    "CommandResult",
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
    "LocalRunner",
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
    "Runner",
    "Sample",
    "UnityError",
    "ValidatedConfig",
    "__version__",
    "accept_batch",
    "accept_batch_json",
    "batch_problems",
    "check_document",
    "check_metadata",
    "check_plugin_class",
    "check_prometheus_names",
    "convert_unit",
    "credential_reference",
    "duplicate_names",
    "encode_document",
    "error_details",
    "error_lines",
    "iter_metric_values",
    "mask_secrets",
    "new_key_secret",
    "number_problems",
    "parse_metadata",
    "plugin_state",
    "plugin_view",
    "prometheus_advice",
    "prometheus_collisions",
    "prometheus_series",
    "rate_scale",
    "require_storable_numbers",
    "rule_problems",
    "run_state",
    "secret_fields",
    "undeclared_numbers",
    "validate_config",
]
