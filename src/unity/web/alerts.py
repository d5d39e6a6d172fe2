"""The alerts pages: what fires (then what is pending, then what happened), and
the silences and maintenance windows that hold notices back.

They read through the API's own route functions, so a page shows exactly
what the session's token may see; every change is a call to ``/api/alerts``
made by the page's script.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from unity.alerts.rules import describe
from unity.api.deps import DatabaseDep, SettingsDep
from unity.api.routes import alerts as alerts_api
from unity.api.routes import silences as silences_api
from unity.auth.sessions import WebSession
from unity.plugins.manager import PluginManager
from unity.storage.db import Database
from unity.web.common import WebDep, may, principal_of, render
from unity_sdk import AlertRule

__all__ = ["RuleRow", "plugin_rules", "router"]

router = APIRouter(include_in_schema=False)
HISTORY = 50


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(
    request: Request, web: WebDep, db: DatabaseDep, settings: SettingsDep
) -> HTMLResponse:
    principal = principal_of(web)
    active = (await alerts_api.list_alerts(principal, db)).items
    history = await alerts_api.alert_history(principal, db, settings, limit=HISTORY)
    return render(
        request,
        "alerts.html",
        web,
        nav="alerts",
        firing=[a for a in active if a.state == "firing"],
        pending=[a for a in active if a.state == "pending"],
        history=history.items,
        may_ack=may(web, alerts_api.acknowledge),
    )


@router.get("/alerts/silences", response_class=HTMLResponse)
async def silences_page(request: Request, web: WebDep, db: DatabaseDep) -> HTMLResponse:
    principal = principal_of(web)
    return render(
        request,
        "silences.html",
        web,
        nav="alerts",
        silences=(await silences_api.list_silences(principal, db)).items,
        windows=(await silences_api.list_windows(principal, db)).items,
        may_change=may(web, silences_api.add_silence),
    )


@dataclass(frozen=True)
class RuleRow:
    """One rule on a plugin's page: what it checks, and how many of its alerts fire."""

    rule: AlertRule
    source: str
    enabled: bool
    overridden: bool
    condition: str
    firing: int


async def plugin_rules(
    web: WebSession, db: Database, manager: PluginManager, plugin_id: str
) -> list[RuleRow] | None:
    """The rules of one plugin for its page; None when the session may not read them."""
    if not may(web, alerts_api.list_rules):
        return None
    principal = principal_of(web)
    rules = (await alerts_api.list_rules(principal, manager, db, plugin_id=plugin_id)).items
    active = (await alerts_api.list_alerts(principal, db, plugin_id=plugin_id)).items
    firing = Counter(a.rule_id for a in active if a.state == "firing")
    metadata = await manager.metadata_for(plugin_id)
    units = {m.name: m.unit for m in metadata.metrics}
    return [
        RuleRow(
            r.rule,
            r.source,
            r.enabled,
            r.overridden,
            describe(r.rule, units.get(r.rule.metric or "", "")),
            firing[r.rule.id],
        )
        for r in rules
    ]
