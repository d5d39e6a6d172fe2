"""The overview, the plugin catalogue and the plugin pages, with their live fragments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from unity.api.deps import ManagerDep, SessionDep, SettingsDep
from unity.auth import external as external_auth
from unity.auth.access import ADMIN
from unity.credentials import CredentialError, Inventory
from unity.plugins.runtime import PluginNotFoundError
from unity.storage import metrics as metric_store
from unity.storage import series as series_store
from unity.views import (
    build_overview,
    every_plugin,
    executions,
    load_failures,
    plugin_detail,
    state_events,
)
from unity.views.alerts import plugin_rules, threshold_lines
from unity.views.overview import lookup
from unity.web.common import WebDep, may, render
from unity.web.forms import config_form
from unity.web.templating import format_fact
from unity_sdk import MetricDisplay, MetricField, PluginCategory

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
HISTORY = 25
RANGES = [
    (900, "Last 15 minutes"),
    (3600, "Last hour"),
    (6 * 3600, "Last 6 hours"),
    (86400, "Last day"),
    (7 * 86400, "Last week"),
    (30 * 86400, "Last 30 days"),
    (90 * 86400, "Last 90 days"),
    (365 * 86400, "Last year"),
]


@dataclass(frozen=True)
class Fact:
    """A metric that does not change from run to run, with its latest value(s) for people."""

    metric: MetricField
    values: list[tuple[str, str]]


def facts_of(metrics: list[MetricField], document: Mapping[str, Any]) -> list[Fact]:
    """The facts panel of one host: each declared fact found in its newest document."""
    facts = []
    for metric in metrics:
        values = [
            (item, format_fact(value, metric.unit))
            for item, value in series_store.walk(document, metric.path)
            if value is None or isinstance(value, str | int | float | bool)
        ]
        if values:
            facts.append(Fact(metric, values))
    return facts


def range_choices(retention_days: int) -> list[tuple[int, str]]:
    """The chart ranges up to what the hub keeps, the whole kept history last."""
    kept = retention_days * 86400
    choices = [(seconds, label) for seconds, label in RANGES if seconds < kept]
    days = "day" if retention_days == 1 else "days"
    return [*choices, (kept, f"All kept ({retention_days} {days})")]


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request, web: WebDep, session: SessionDep, manager: ManagerDep
) -> HTMLResponse:
    data = await build_overview(session, manager)
    return render(request, "overview.html", web, nav="overview", data=data)


@router.get("/live/overview", response_class=HTMLResponse)
async def overview_live(
    request: Request, web: WebDep, session: SessionDep, manager: ManagerDep
) -> HTMLResponse:
    data = await build_overview(session, manager)
    return render(request, "_overview_live.html", web, data=data)


@router.get("/plugins", response_class=HTMLResponse)
async def catalogue(
    request: Request,
    web: WebDep,
    session: SessionDep,
    manager: ManagerDep,
    category: str = "",
    q: str = "",
) -> HTMLResponse:
    plugins = await every_plugin(session, manager)
    needle = q.strip().lower()
    shown = [
        p
        for p in plugins
        if (not category or p.category == category)
        and (not needle or needle in f"{p.id} {p.name} {p.description}".lower())
    ]
    return render(
        request,
        "plugins.html",
        web,
        nav="plugins",
        plugins=shown,
        total=len(plugins),
        failures=load_failures(manager),
        categories=[c.value for c in PluginCategory],
        category=category,
        q=q,
    )


async def _names(manager: ManagerDep) -> tuple[list[tuple[str, str]], list[str]]:
    """Stored credentials (name, kind) and inventory servers; empty without a usable keyring."""
    try:
        store = manager.credentials
        credentials = [(c.name, c.kind) for c in await store.list_credentials(limit=1000)]
        servers = [s.name for s in await Inventory(store).list_servers(limit=1000)]
    except CredentialError:
        return [], []
    return credentials, servers


async def _plugin_context(
    plugin_id: str, session: SessionDep, manager: ManagerDep
) -> dict[str, Any]:
    detail = await plugin_detail(session, manager, plugin_id)
    runs, _ = await executions(session, plugin_id, limit=HISTORY)
    changes = await state_events(session, plugin_id, limit=HISTORY)
    latest = await metric_store.latest_documents(session, plugin_ids=[plugin_id])
    return {"detail": detail, "executions": runs, "events": changes, "latest": latest}


def _instant(text: str) -> str:
    """``?at=`` (a notification's link) as an ISO time with a zone; "" when it is none."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        return ""


@router.get("/plugins/{plugin_id}", response_class=HTMLResponse)
async def plugin_page(
    request: Request,
    plugin_id: str,
    web: WebDep,
    session: SessionDep,
    manager: ManagerDep,
    settings: SettingsDep,
    host: str = "",
    at: str = "",
) -> HTMLResponse:
    try:
        context = await _plugin_context(plugin_id, session, manager)
    except PluginNotFoundError:
        return render(
            request,
            "error.html",
            web,
            status_code=404,
            nav="plugins",
            message=f"No plugin {plugin_id!r}.",
        )
    detail = context["detail"]
    metadata = detail.declared
    if metadata is None:
        return render(
            request,
            "error.html",
            web,
            status_code=500,
            nav="plugins",
            message=f"The stored metadata of plugin {plugin_id!r} is not valid; "
            "re-register or reinstall it.",
        )
    credentials, servers = await _names(manager)
    fields = config_form(
        metadata, detail.config, retention_days=settings.retention_days, servers=servers
    )
    shown = {d: [m for m in metadata.metrics if m.shown_as is d] for d in MetricDisplay}
    charts = [m for m in shown[MetricDisplay.CHART] if m.numeric]
    keys = (
        await external_auth.list_plugin_keys(session, plugin_id)
        if detail.external and may(web, ADMIN)
        else None
    )
    rules = await plugin_rules(session, manager, plugin_id)
    lines = threshold_lines(rules, charts)
    newest: Mapping[str, Any] = context["latest"][0].data if context["latest"] else {}
    retention = int(detail.config.get("retention_days") or settings.retention_days)
    # Charts read the rollup tiers, which outlive the raw documents.
    charted = max(retention, settings.rollup_hour_days) if charts else retention
    return render(
        request,
        "plugin.html",
        web,
        nav="plugins",
        metadata=metadata,
        fields=fields,
        charts=charts,
        states=shown[MetricDisplay.STATE],
        facts=[
            (doc.host, facts_of(shown[MetricDisplay.FACT], doc.data)) for doc in context["latest"]
        ],
        ranges=range_choices(charted),
        retention=charted,
        interval=detail.interval or metadata.default_interval,
        credentials=credentials,
        keys=keys,
        newest=newest,
        lookup=lookup,
        alert_rules=rules,
        thresholds={name: [line.as_json() for line in found] for name, found in lines.items()},
        focus_host=host,
        focus_at=_instant(at),
        **context,
    )


@router.get("/live/plugins/{plugin_id}", response_class=HTMLResponse)
async def plugin_live(
    request: Request,
    plugin_id: str,
    web: WebDep,
    session: SessionDep,
    manager: ManagerDep,
    settings: SettingsDep,
) -> HTMLResponse:
    context = await _plugin_context(plugin_id, session, manager)
    return render(request, "_plugin_live.html", web, **context)


@router.get("/live/plugins/{plugin_id}/history", response_class=HTMLResponse)
async def plugin_history(
    request: Request,
    plugin_id: str,
    web: WebDep,
    session: SessionDep,
    manager: ManagerDep,
    settings: SettingsDep,
) -> HTMLResponse:
    context = await _plugin_context(plugin_id, session, manager)
    return render(request, "_plugin_history.html", web, **context)
