"""``/api/plugins/v2``: list, inspect, control and query plugins."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from unity.api.body import body_schema, merge_patch, read_json
from unity.api.deps import (
    AdminToken,
    ManagerDep,
    PluginKeyOrReadToken,
    ReadToken,
    SessionDep,
    SettingsDep,
)
from unity.api.errors import ApiError
from unity.api.routes.credentials import credential_errors
from unity.api.schemas import (
    EventList,
    EventOut,
    ExecutionList,
    ExecutionOut,
    HealthOut,
    LoadFailureOut,
    MetricList,
    MetricOut,
    PluginDetail,
    PluginList,
    PluginSummary,
    RescanOut,
    RunResultOut,
    SeriesOut,
)
from unity.plugins import config as plugin_config
from unity.plugins.loader import LoadFailure
from unity.plugins.manager import PluginManager
from unity.settings import Settings
from unity.views import catalogue, history
from unity_sdk import (
    HOST_ID_PATTERN,
    PLUGIN_ID_PATTERN,
    PluginConfig,
    RunStatus,
    ValidatedConfig,
    mask_secrets,
    plugin_view,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/plugins/v2", tags=["plugins"])

# A page's cursor is the id of the last plugin listed: a plugin id, or a plugin
# instance on an agent's host ("system-info@nas").
PLUGIN_ID = rf"^{PLUGIN_ID_PATTERN[1:-1]}(?:@{HOST_ID_PATTERN[1:-1]})?$"


def _page_size(limit: int, settings: Settings) -> None:
    if limit > settings.max_page_size:
        raise ApiError(422, f"limit must be at most {settings.max_page_size}")


def _failures(failures: Iterable[LoadFailure]) -> list[LoadFailureOut]:
    return [LoadFailureOut.model_validate(f) for f in failures]


_OUTCOMES = ", ".join(RunStatus)


def _outcome(status: str | None) -> RunStatus | None:
    """The ``status`` filter of the run history; its own 422 lists the outcomes."""
    if status is None:
        return None
    try:
        return RunStatus(status)
    except ValueError:
        message = f"status must be one of {_OUTCOMES}"
        raise ApiError(
            422, message, details=[{"loc": ["query", "status"], "msg": message}]
        ) from None


async def _detail(manager: PluginManager, plugin_id: str) -> PluginDetail:
    """The plugin as just changed through the manager (which commits its own session)."""
    return PluginDetail.model_validate(catalogue.detail_of(manager, await manager.row(plugin_id)))


@router.get("", response_model=PluginList)
async def list_plugins(
    _: ReadToken,
    session: SessionDep,
    manager: ManagerDep,
    settings: SettingsDep,
    category: str | None = None,
    enabled: bool | None = None,
    external: bool | None = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: Annotated[str | None, Query(pattern=PLUGIN_ID)] = None,
) -> PluginList:
    """List plugins, filtered by category, enabled and external; paginated by id."""
    _page_size(limit, settings)
    views, next_cursor = await catalogue.plugin_page(
        session,
        manager,
        category=category,
        enabled=enabled,
        external=external,
        after=cursor,
        limit=limit,
    )
    return PluginList(
        items=[PluginSummary.model_validate(v) for v in views],
        next_cursor=next_cursor,
        load_failures=_failures(catalogue.load_failures(manager)),
    )


@router.post("/rescan", response_model=RescanOut)
async def rescan(_: AdminToken, manager: ManagerDep) -> RescanOut:
    """Look for plugin packages installed since the hub started (new entry points of
    the ``unity.plugins`` group) and load them, disabled, without a restart."""
    added, failures = await manager.rescan()
    return RescanOut(added=added, load_failures=_failures(failures))


@router.get("/{plugin_id}", response_model=PluginDetail)
async def get_plugin(
    plugin_id: str, _: ReadToken, session: SessionDep, manager: ManagerDep
) -> PluginDetail:
    """Everything about one plugin: metadata, config (secrets masked), health, state, last run."""
    return PluginDetail.model_validate(await catalogue.plugin_detail(session, manager, plugin_id))


@router.post("/{plugin_id}/enable", response_model=PluginDetail)
async def enable_plugin(plugin_id: str, _: AdminToken, manager: ManagerDep) -> PluginDetail:
    """Enable the plugin and schedule it at once. 422 when its config is incomplete."""
    await manager.enable(plugin_id)
    return await _detail(manager, plugin_id)


@router.post("/{plugin_id}/disable", response_model=PluginDetail)
async def disable_plugin(plugin_id: str, _: AdminToken, manager: ManagerDep) -> PluginDetail:
    """Disable the plugin: unschedule it and call its ``on_disable``."""
    await manager.disable(plugin_id)
    return await _detail(manager, plugin_id)


@router.post("/{plugin_id}/execute", response_model=RunResultOut)
async def execute_plugin(plugin_id: str, _: AdminToken, manager: ManagerDep) -> RunResultOut:
    """Run a collection now, record it like a scheduled run, and return the result."""
    return RunResultOut.model_validate(await manager.execute(plugin_id))


@router.get("/{plugin_id}/config", response_model=PluginConfig)
async def get_config(
    plugin_id: str, caller: PluginKeyOrReadToken, manager: ManagerDep, request: Request
) -> PluginConfig:
    """The stored config. To people's tokens secret fields read back as
    ``********`` and credential references as ``{"$credential": name}``; to an
    external plugin's own key (or the key of the agent whose instance it is),
    the values it runs with (references resolved, each resolution audited)."""
    row = await manager.row(plugin_id)
    metadata = await manager.metadata_for(plugin_id)
    if caller.kind in ("plugin", "agent"):
        # The plugin gets what it runs with: its own keys, defaults filled in.
        actor = f"agent:{caller.host_id}" if caller.kind == "agent" else f"plugin:{plugin_id}"
        with credential_errors():
            stored = await manager.links.resolve(
                metadata,
                manager.vault.opened(plugin_id, row.config),
                actor=actor,
                source=request.client.host if request.client else None,
                plugin_id=plugin_id,
            )
        timeout = manager.settings.schema_check_seconds
        if row.external:
            config = await plugin_config.plugin_view_foreign(metadata, stored, timeout=timeout)
        else:
            config = plugin_view(metadata, stored)
    else:
        config = mask_secrets(metadata, row.config)
    return PluginConfig(
        plugin_id=plugin_id,
        config=config,
        interval=row.config.get("interval") or metadata.default_interval,
        enabled=row.enabled,
        config_schema=metadata.config_json_schema(),
    )


@router.put(
    "/{plugin_id}/config",
    response_model=PluginConfig,
    openapi_extra=body_schema({"type": "object", "description": "The whole new config object"}),
)
async def put_config(
    plugin_id: str, request: Request, _: AdminToken, manager: ManagerDep
) -> PluginConfig:
    """Replace the whole config (fields not sent go back to their defaults; ``PATCH``
    changes only the fields it sends). Validated against the plugin's schema first:
    on any error the answer is 422 with one entry per field and nothing is saved.
    ``interval`` (seconds) and ``retention_days`` are understood by the hub."""
    config = await read_json(request)
    if not isinstance(config, dict):
        raise ApiError(422, "the config must be a JSON object")
    return await _saved(manager, plugin_id, await manager.set_config(plugin_id, config))


async def _saved(
    manager: PluginManager, plugin_id: str, validated: ValidatedConfig
) -> PluginConfig:
    """The answer to a config change: what was stored, secrets masked."""
    metadata = await manager.metadata_for(plugin_id)
    row = await manager.row(plugin_id)
    return PluginConfig(
        plugin_id=plugin_id,
        config=mask_secrets(metadata, validated.stored),
        interval=validated.interval or metadata.default_interval,
        enabled=row.enabled,
        config_schema=metadata.config_json_schema(),
    )


@router.patch(
    "/{plugin_id}/config",
    response_model=PluginConfig,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {
                    "schema": {
                        "type": "object",
                        "description": "The fields to change; null removes a field",
                    }
                }
                for media in ("application/merge-patch+json", "application/json")
            },
        }
    },
)
async def patch_config(
    plugin_id: str, request: Request, _: AdminToken, manager: ManagerDep
) -> PluginConfig:
    """Change some fields of the config (JSON Merge Patch, RFC 7396): fields not
    sent keep their value, ``null`` removes one (back to its default). The result
    is validated like ``PUT``, which replaces the whole config instead."""
    patch = await read_json(request)
    if not isinstance(patch, dict):
        raise ApiError(422, "a merge patch of the config must be a JSON object")
    row = await manager.row(plugin_id)
    validated = await manager.set_config(plugin_id, merge_patch(row.config, patch))
    return await _saved(manager, plugin_id, validated)


@router.get("/{plugin_id}/health", response_model=HealthOut)
async def get_health(
    plugin_id: str,
    _: ReadToken,
    session: SessionDep,
    manager: ManagerDep,
    cached: bool = False,
) -> HealthOut:
    """Run the plugin's health check now and return it (``cached=true``: the last answer)."""
    row = await history.registered(session, plugin_id)
    if not cached and plugin_id in manager.plugins:
        await manager.check_health(plugin_id)
        row = await manager.row(plugin_id)
    return HealthOut.model_validate(catalogue.plugin_view(manager, row).health)


@router.get("/{plugin_id}/metrics", response_model=MetricList | SeriesOut)
async def get_metrics(
    plugin_id: str,
    _: ReadToken,
    session: SessionDep,
    settings: SettingsDep,
    start: datetime | None = None,
    end: datetime | None = None,
    host: str | None = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: str | None = None,
    field: Annotated[str | None, Query(description="A declared numeric metric")] = None,
    step: Annotated[int | None, Query(ge=1, le=86400 * 31)] = None,
    item: Annotated[
        list[str] | None,
        Query(
            max_length=history.MAX_SERIES_ITEMS, description="Only these items of a per-item metric"
        ),
    ] = None,
) -> MetricList | SeriesOut:
    """Stored collections, newest first (time range, host, limit/cursor).

    With ``field`` (a declared numeric or state metric) the answer is a series
    instead: avg/min/max/count per ``step`` seconds over the range (default: the
    last 24 hours, step chosen for ~300 points), with every bucket present --
    one without a sample is null, so a chart shows the gap. A field with ``*``
    answers one series per item in ``items`` (``item`` picks some); a state
    metric counts ``true`` as 1 and ``false`` as 0.
    """
    if field is not None:
        series = await history.metric_series(
            session, plugin_id, field, start=start, end=end, step=step, host=host, items=item
        )
        return SeriesOut.model_validate(series)
    _page_size(limit, settings)
    rows, next_cursor = await history.metric_documents(
        session, plugin_id, start=start, end=end, host=host, limit=limit, cursor=cursor
    )
    return MetricList(
        plugin_id=plugin_id,
        items=[MetricOut.model_validate(r) for r in rows],
        next_cursor=next_cursor,
    )


@router.get("/{plugin_id}/events", response_model=EventList)
async def get_events(
    plugin_id: str,
    _: ReadToken,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> EventList:
    """State changes, newest first: from which state to which, when, and why."""
    _page_size(limit, settings)
    rows = await history.state_events(session, plugin_id, limit=limit)
    return EventList(plugin_id=plugin_id, items=[EventOut.model_validate(r) for r in rows])


@router.get("/{plugin_id}/executions", response_model=ExecutionList)
async def get_executions(
    plugin_id: str,
    _: ReadToken,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[str | None, Query(description=f"Only runs that ended {_OUTCOMES}")] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: str | None = None,
) -> ExecutionList:
    """Run history, newest first: status, duration, error, metrics count."""
    _page_size(limit, settings)
    rows, next_cursor = await history.executions(
        session, plugin_id, status=_outcome(status), limit=limit, cursor=cursor
    )
    return ExecutionList(
        plugin_id=plugin_id,
        items=[ExecutionOut.model_validate(r) for r in rows],
        next_cursor=next_cursor,
    )
