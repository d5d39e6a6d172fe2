"""``/api/plugins/v2``: list, inspect, control and query plugins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

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
    ExecutionList,
    ExecutionOut,
    HealthOut,
    ItemSeriesOut,
    LoadFailureOut,
    MetricList,
    MetricOut,
    PluginDetail,
    PluginList,
    PluginSummary,
    RescanOut,
    RunResultOut,
    SeriesOut,
    SeriesPointOut,
)
from unity.plugins import config as plugin_config
from unity.plugins.external import is_stale
from unity.plugins.manager import PluginManager, PluginNotFoundError
from unity.storage import metrics as metric_store
from unity.storage import registry
from unity.storage.models import Plugin
from unity_sdk import (
    MetricDisplay,
    MetricField,
    PluginMetadata,
    ValidatedConfig,
    mask_secrets,
    plugin_view,
)
from unity_sdk.wire import PluginConfig

__all__ = ["router"]

router = APIRouter(prefix="/api/plugins/v2", tags=["plugins"])

PLUGIN_ID = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"
MAX_SERIES_POINTS = 10_000
MAX_SERIES_ITEMS = 64
MAX_ITEM_POINTS = 100_000
EXECUTION_STATUSES = {"success", "failed", "timed_out", "skipped"}


def _summary_fields(row: Plugin, manager: PluginManager) -> dict[str, Any]:
    managed = manager.plugins.get(row.id)
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "description": row.description,
        "category": row.category,
        "enabled": row.enabled,
        "external": row.external,
        "loaded": managed is not None,
        "state": _state(row, manager),
        "health": HealthOut(
            status=row.health_status, message=row.health_message, checked_at=row.health_checked_at
        ),
        "interval": managed.interval if managed else row.config.get("interval"),
        "run_count": row.run_count,
        "last_run_at": row.last_run_at,
        "last_success_at": row.last_success_at,
        "last_error": row.last_error,
    }


def _state(row: Plugin, manager: PluginManager) -> str:
    if not row.enabled:
        return "disabled"
    if is_stale(row, missed=manager.settings.stale_after_missed):
        return "stale"
    return row.state


def _detail(row: Plugin, manager: PluginManager) -> PluginDetail:
    managed = manager.plugins.get(row.id)
    metadata = managed.metadata if managed else PluginMetadata.model_validate(row.plugin_metadata)
    config = mask_secrets(metadata, row.config)
    return PluginDetail(
        **_summary_fields(row, manager),
        author=row.author,
        metadata=row.plugin_metadata,
        config=config,
        consecutive_failures=row.consecutive_failures,
        reload_error=managed.reload_error if managed else None,
        last_seen_at=row.last_seen_at,
        health_details=row.health_details,
    )


async def _row(session: SessionDep, plugin_id: str) -> Plugin:
    row = await registry.get_plugin(session, plugin_id)
    if row is None:
        raise PluginNotFoundError(plugin_id)
    return row


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    if limit > settings.max_page_size:
        raise ApiError(422, f"limit must be at most {settings.max_page_size}")
    rows = await registry.list_plugins(
        session,
        category=category,
        enabled=enabled,
        external=external,
        after=cursor,
        limit=limit + 1,
    )
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return PluginList(
        items=[PluginSummary(**_summary_fields(row, manager)) for row in rows[:limit]],
        next_cursor=next_cursor,
        load_failures=[
            LoadFailureOut(name=f.name, source=f.source, error=f.error, distribution=f.distribution)
            for f in manager.failures.values()
        ],
    )


@router.post("/rescan", response_model=RescanOut)
async def rescan(_: AdminToken, manager: ManagerDep) -> RescanOut:
    """Look for plugin packages installed since the hub started (new entry points of
    the ``unity.plugins`` group) and load them, disabled, without a restart."""
    added, failures = await manager.rescan()
    return RescanOut(
        added=added,
        load_failures=[
            LoadFailureOut(name=f.name, source=f.source, error=f.error, distribution=f.distribution)
            for f in failures
        ],
    )


@router.get("/{plugin_id}", response_model=PluginDetail)
async def get_plugin(
    plugin_id: str, _: ReadToken, session: SessionDep, manager: ManagerDep
) -> PluginDetail:
    """Everything about one plugin: metadata, config (secrets masked), health, state, last run."""
    return _detail(await _row(session, plugin_id), manager)


@router.post("/{plugin_id}/enable", response_model=PluginDetail)
async def enable_plugin(plugin_id: str, _: AdminToken, manager: ManagerDep) -> PluginDetail:
    """Enable the plugin and schedule it at once. 422 when its config is incomplete."""
    await manager.enable(plugin_id)
    return _detail(await manager.row(plugin_id), manager)


@router.post("/{plugin_id}/disable", response_model=PluginDetail)
async def disable_plugin(plugin_id: str, _: AdminToken, manager: ManagerDep) -> PluginDetail:
    """Disable the plugin: unschedule it and call its ``on_disable``."""
    await manager.disable(plugin_id)
    return _detail(await manager.row(plugin_id), manager)


@router.post("/{plugin_id}/execute", response_model=RunResultOut)
async def execute_plugin(plugin_id: str, _: AdminToken, manager: ManagerDep) -> RunResultOut:
    """Run a collection now, record it like a scheduled run, and return the result."""
    result = await manager.execute(plugin_id)
    return RunResultOut(
        plugin_id=result.plugin_id,
        status=result.status,
        started_at=result.started_at,
        duration_ms=result.duration_ms,
        error=result.error,
        metrics_count=result.metrics_count,
        data=result.data,
    )


@router.get("/{plugin_id}/config", response_model=PluginConfig)
async def get_config(
    plugin_id: str, caller: PluginKeyOrReadToken, manager: ManagerDep, request: Request
) -> PluginConfig:
    """The stored config. To people's tokens secret fields read back as
    ``********`` and credential references as ``{"$credential": name}``; to an
    external plugin's own key, the values it runs with (references resolved,
    each resolution audited)."""
    row = await manager.row(plugin_id)
    metadata = await manager.metadata_for(plugin_id)
    if caller.kind == "plugin":
        # The plugin gets what it runs with: its own keys, defaults filled in.
        with credential_errors():
            stored = await manager.links.resolve(
                metadata,
                manager.stored_config(plugin_id, row.config),
                actor=f"plugin:{plugin_id}",
                source=request.client.host if request.client else None,
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
    if cached or plugin_id not in manager.plugins:
        row = await _row(session, plugin_id)
        return HealthOut(
            status=row.health_status, message=row.health_message, checked_at=row.health_checked_at
        )
    await _row(session, plugin_id)
    status = await manager.check_health(plugin_id)
    row = await manager.row(plugin_id)
    return HealthOut(
        status=status.status.value, message=status.message, checked_at=row.health_checked_at
    )


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
        Query(max_length=MAX_SERIES_ITEMS, description="Only these items of a per-item metric"),
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
    row = await _row(session, plugin_id)
    try:
        start, end = _utc(start), _utc(end)
        default_end = end or datetime.now(UTC)
        default_start = default_end - timedelta(hours=24)
    except OverflowError as exc:
        raise ApiError(422, "start and end must be ordinary dates") from exc
    if start and end and start >= end:
        raise ApiError(422, "start must be before end")
    if field is None:
        if limit > settings.max_page_size:
            raise ApiError(422, f"limit must be at most {settings.max_page_size}")
        rows, next_cursor = await metric_store.query_metrics(
            session,
            plugin_id=plugin_id,
            start=start,
            end=end,
            host=host,
            limit=limit,
            cursor=cursor,
        )
        return MetricList(
            plugin_id=plugin_id,
            items=[
                MetricOut(id=r.id, host=r.host, timestamp=r.timestamp, data=r.data) for r in rows
            ],
            next_cursor=next_cursor,
        )
    declared = {m["name"]: m for m in row.plugin_metadata.get("metrics", [])}
    if field not in declared:
        raise ApiError(422, f"plugin {plugin_id!r} declares no metric {field!r}")
    metric = MetricField.model_validate(declared[field])
    state = metric.shown_as is MetricDisplay.STATE
    if not (metric.numeric or state):
        raise ApiError(422, f"metric {field!r} is not a numeric series")
    per_item = "*" in metric.path
    if item is not None and not per_item:
        raise ApiError(422, f"metric {field!r} has no items to pick")
    end = end or default_end
    start = start or default_start
    span = (end - start).total_seconds()
    step = step or max(1, int(span // 300))
    if span / step > MAX_SERIES_POINTS:
        raise ApiError(422, f"range/step gives more than {MAX_SERIES_POINTS} points")
    out = SeriesOut(
        plugin_id=plugin_id,
        field=field,
        unit=metric.unit,
        kind=metric.kind.value,
        display=metric.shown_as.value,
        step=step,
        start=start,
        end=end,
        host=host,
        points=[],
    )
    if per_item:
        found = await metric_store.item_series(
            session,
            plugin_id=plugin_id,
            path=metric.path,
            start=start,
            end=end,
            step=step,
            host=host,
            items=item,
            booleans=state,
        )
        # Bounds the answer: a metric over thousands of items (processes,
        # sockets) would otherwise send every one of them at full resolution.
        room = max(1, min(MAX_SERIES_ITEMS, MAX_ITEM_POINTS * step // max(1, int(span))))
        names = sorted(found)
        out.items = [ItemSeriesOut(item=n, points=_points(found[n])) for n in names[:room]]
        out.items_omitted = max(0, len(names) - room)
        return out
    out.points = _points(
        await metric_store.series(
            session,
            plugin_id=plugin_id,
            path=metric.path,
            start=start,
            end=end,
            step=step,
            host=host,
            booleans=state,
        )
    )
    return out


def _points(points: list[metric_store.SeriesPoint]) -> list[SeriesPointOut]:
    return [
        SeriesPointOut(t=p.bucket, avg=p.avg, min=p.min, max=p.max, count=p.count) for p in points
    ]


@router.get("/{plugin_id}/executions", response_model=ExecutionList)
async def get_executions(
    plugin_id: str,
    _: ReadToken,
    session: SessionDep,
    settings: SettingsDep,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: str | None = None,
) -> ExecutionList:
    """Run history, newest first: status, duration, error, metrics count."""
    await _row(session, plugin_id)
    if limit > settings.max_page_size:
        raise ApiError(422, f"limit must be at most {settings.max_page_size}")
    if status is not None and status not in EXECUTION_STATUSES:
        raise ApiError(422, f"status must be one of {', '.join(sorted(EXECUTION_STATUSES))}")
    rows, next_cursor = await metric_store.list_executions(
        session, plugin_id=plugin_id, status=status, limit=limit, cursor=cursor
    )
    return ExecutionList(
        plugin_id=plugin_id,
        items=[
            ExecutionOut(
                id=r.id,
                started_at=r.started_at,
                completed_at=r.completed_at,
                status=r.status,
                duration_ms=r.duration_ms,
                error=r.error,
                metrics_count=r.metrics_count,
                trigger=r.trigger,
            )
            for r in rows
        ],
        next_cursor=next_cursor,
    )
