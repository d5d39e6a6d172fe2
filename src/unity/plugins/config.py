"""Config and metadata checks the hub runs off the event loop.

The rules themselves live in the SDK (``unity_sdk.validate_config``,
``parse_metadata``...), where ``FakeHub`` and the author tooling call them too.
What only the hub adds: a schema from outside the hub (an external plugin's)
can be slow to check, so :func:`validate_foreign` and
:func:`check_off_loop` run the rules on worker threads with a time limit
(:mod:`unity.plugins.schemas`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from unity.plugins.schemas import run_bounded
from unity_sdk import (
    RESERVED_KEYS,
    ConfigError,
    MetadataError,
    PluginMetadata,
    ValidatedConfig,
    plugin_view,
    validate_config,
)

__all__ = ["check_off_loop", "plugin_view_foreign", "validate_foreign"]


async def validate_foreign(
    metadata: PluginMetadata,
    raw: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None = None,
    timeout: float,
) -> ValidatedConfig:
    """:func:`~unity_sdk.validate_config` for a schema from outside the hub: off the
    event loop, ``ConfigError`` when it takes longer than ``timeout`` seconds."""
    try:
        return await run_bounded(validate_config, metadata, raw, previous=previous, timeout=timeout)
    except TimeoutError:
        raise ConfigError(
            f"validating the config of plugin {metadata.id!r} took longer than {timeout:g}s",
            [{"loc": [], "msg": "the plugin's config schema is too slow to check"}],
        ) from None


async def plugin_view_foreign(
    metadata: PluginMetadata, stored: Mapping[str, Any], *, timeout: float
) -> dict[str, Any]:
    """:func:`~unity_sdk.plugin_view` for a schema from outside the hub (see
    :func:`validate_foreign`); as stored, hub keys removed, when it is too slow."""
    try:
        return await run_bounded(plugin_view, metadata, stored, timeout=timeout)
    except TimeoutError:
        return {k: v for k, v in stored.items() if k not in RESERVED_KEYS}


async def check_off_loop(
    parse: Callable[[Any], PluginMetadata], document: Any, *, timeout: float
) -> PluginMetadata:
    """``parse(document)`` (:func:`~unity_sdk.parse_metadata`) off the event loop;
    ``MetadataError`` when it takes longer than ``timeout`` seconds."""
    try:
        return await run_bounded(parse, document, timeout=timeout)
    except TimeoutError:
        raise MetadataError(
            f"checking the plugin's metadata took longer than {timeout:g}s"
        ) from None
