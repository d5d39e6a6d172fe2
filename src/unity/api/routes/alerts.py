"""``/api/alerts``: active alerts, their history and firing periods, rules.

Reading needs a read token; every change (rules, overrides, acknowledgement,
silences, maintenance windows) an admin token. A rule on a metric the plugin
does not declare, in a unit that does not convert, or with a threshold that
can never (or always) be crossed is refused with 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from unity.alerts import AlertEngine, RuleError
from unity.alerts.rules import EXTERNAL_RULES, OVERRIDABLE, apply_override
from unity.alerts.store import load_rule_config
from unity.api.body import body_schema, json_body
from unity.api.deps import AdminToken, DatabaseDep, ManagerDep, ReadToken, SettingsDep
from unity.api.errors import ApiError
from unity.api.routes.credentials import actor_of
from unity.plugins.manager import PluginManager
from unity.storage.models import AlertInstance, AlertRuleOverride, AlertRuleRow
from unity.storage.types import utcnow
from unity.views import alerts as views
from unity_sdk import AlertRule, PluginMetadata, rule_problems

__all__ = ["router"]

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    fingerprint: str
    plugin_id: str
    rule_id: str
    host: str
    item: str
    severity: str
    state: Literal["inactive", "pending", "firing", "resolved"]
    value: float | None
    threshold: float | None
    unit: str
    summary: str
    labels: dict[str, Any]
    since: datetime = Field(description="When the condition became true")
    last_eval_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    ack_by: str | None
    ack_note: str | None
    ack_at: datetime | None


class AlertList(BaseModel):
    items: list[AlertOut]


class TransitionOut(BaseModel):
    id: int
    fingerprint: str
    plugin_id: str
    rule_id: str
    host: str
    item: str
    severity: str
    from_state: str
    to_state: str
    value: float | None
    summary: str
    at: datetime


class TransitionList(BaseModel):
    items: list[TransitionOut]
    next_cursor: int | None = Field(default=None, description="`before` of the next page")


class PeriodOut(BaseModel):
    fingerprint: str
    rule_id: str
    host: str
    item: str
    severity: str
    start: datetime
    end: datetime | None = Field(description="None: still firing")


class PeriodList(BaseModel):
    items: list[PeriodOut]


class Ack(BaseModel):
    note: str = Field(default="", max_length=1000)


class RuleOut(BaseModel):
    plugin_id: str
    source: Literal["default", "user"]
    enabled: bool
    overridden: bool
    rule: AlertRule


class RuleList(BaseModel):
    items: list[RuleOut]


class RuleIn(AlertRule):
    """A new rule: an alert rule and the plugin it watches."""

    plugin_id: str = Field(max_length=64)


class OverrideIn(BaseModel):
    """Switch a rule off or on, and (default rules) change some of its fields."""

    enabled: bool = True
    changes: dict[str, Any] = Field(
        default_factory=dict, description=f"Fields replaced: {', '.join(OVERRIDABLE)}"
    )


def _loc(field: str, msg: str = "") -> dict[str, Any]:
    return {"loc": field.split("."), "msg": msg}


def _engine(request: Request) -> AlertEngine:
    engine: AlertEngine = request.app.state.alerts
    return engine


def alert_out(row: AlertInstance) -> AlertOut:
    return AlertOut.model_validate(row, from_attributes=True)


# -- alerts ---------------------------------------------------------------


@router.get("", response_model=AlertList)
async def list_alerts(_: ReadToken, db: DatabaseDep, plugin_id: str | None = None) -> AlertList:
    """Active alerts: firing first, then pending."""
    async with db.session() as session:
        rows = await views.active_alerts(session, plugin_id=plugin_id)
        return AlertList(items=[alert_out(r) for r in rows])


@router.get("/history", response_model=TransitionList)
async def alert_history(
    _: ReadToken,
    db: DatabaseDep,
    settings: SettingsDep,
    limit: int = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    plugin_id: str | None = None,
    fingerprint: str | None = None,
) -> TransitionList:
    """Every transition of every alert, newest first, with the value that caused it."""
    if not 1 <= limit <= settings.max_page_size:
        raise ApiError(422, f"limit must be from 1 to {settings.max_page_size}")
    async with db.session() as session:
        rows = await views.alert_history(
            session, limit=limit + 1, before=before, plugin_id=plugin_id, fingerprint=fingerprint
        )
        items = [TransitionOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
        return TransitionList(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


@router.get("/periods", response_model=PeriodList)
async def firing_periods(
    _: ReadToken,
    db: DatabaseDep,
    plugin_id: Annotated[str, Query(max_length=64)],
    start: datetime,
    end: datetime,
    host: Annotated[str | None, Query(max_length=255)] = None,
) -> PeriodList:
    """When the plugin's alerts were firing between ``start`` and ``end`` (what its
    charts shade); an alert without a host counts for every host. A time without a
    zone is UTC."""
    async with db.session() as session:
        found = await views.alert_periods(
            session, plugin_id=plugin_id, start=start, end=end, host=host
        )
    return PeriodList(items=[PeriodOut.model_validate(p, from_attributes=True) for p in found])


@router.post(
    "/{fingerprint}/ack",
    response_model=AlertOut,
    openapi_extra=body_schema(Ack.model_json_schema()),
)
async def acknowledge(
    fingerprint: str,
    caller: AdminToken,
    body: Annotated[Ack, json_body(Ack)],
    db: DatabaseDep,
    request: Request,
) -> AlertOut:
    """Acknowledge an active alert: it is no longer told again until it resolves."""
    async with db.session() as session:
        row = await session.get(AlertInstance, fingerprint)
        if row is None:
            raise ApiError(404, f"no alert {fingerprint!r}")
        if row.state not in ("pending", "firing"):
            raise ApiError(409, f"alert {fingerprint!r} is {row.state}, not active")
        await session.execute(
            update(AlertInstance)
            .where(AlertInstance.fingerprint == fingerprint)
            .values(
                ack_by=actor_of(caller),
                ack_note=body.note,
                ack_at=utcnow(),
                version=row.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        await session.refresh(row)
        result = alert_out(row)
    await _engine(request).reload(fingerprint)
    return result


# -- rules ----------------------------------------------------------------


async def _metadata(manager: PluginManager, plugin_id: str) -> PluginMetadata:
    return await manager.metadata_for(plugin_id)  # PluginNotFoundError answers 404


@router.get("/rules", response_model=RuleList)
async def list_rules(
    _: ReadToken, manager: ManagerDep, db: DatabaseDep, plugin_id: str | None = None
) -> RuleList:
    """Every rule in force: each plugin's default rules (with overrides), then users' rules."""
    async with db.session() as session:
        found = await views.rules_in_force(session, manager, plugin_id=plugin_id)
    return RuleList(
        items=[
            RuleOut(plugin_id=r.plugin_id, source=r.source, enabled=r.enabled,
                    overridden=r.overridden, rule=r.rule)
            for r in found
        ]
    )  # fmt: skip


def _refuse(problems: list[tuple[str, str]], prefix: str = "") -> ApiError:
    field, why = problems[0]
    return ApiError(
        422,
        f"{prefix}{field}: {why}",
        details=[_loc(f"{prefix}{f}", msg) for f, msg in problems],
    )


async def _check_rule(manager: PluginManager, plugin_id: str, rule: AlertRule) -> None:
    metadata = await _metadata(manager, plugin_id)
    problems = rule_problems(rule, metadata.metrics)
    if problems:
        raise _refuse(problems)
    if any(r.id == rule.id for r in metadata.alert_rules):
        raise ApiError(409, f"plugin {plugin_id!r} ships a rule {rule.id!r}; override it instead")


@router.post(
    "/rules",
    response_model=RuleOut,
    status_code=201,
    openapi_extra=body_schema(RuleIn.model_json_schema()),
)
async def add_rule(
    caller: AdminToken,
    body: Annotated[RuleIn, json_body(RuleIn)],
    manager: ManagerDep,
    db: DatabaseDep,
    request: Request,
) -> RuleOut:
    """Add a rule to a plugin."""
    async with db.session() as session:
        rule = AlertRule.model_validate(body.model_dump(exclude={"plugin_id"}))
        await _check_rule(manager, body.plugin_id, rule)
        if await session.get(AlertRuleRow, (body.plugin_id, rule.id)) is not None:
            raise ApiError(409, f"plugin {body.plugin_id!r} already has a rule {rule.id!r}")
        session.add(
            AlertRuleRow(
                plugin_id=body.plugin_id,
                rule_id=rule.id,
                definition=rule.model_dump(mode="json"),
                created_by=actor_of(caller),
            )
        )
        result = RuleOut(
            plugin_id=body.plugin_id, source="user", enabled=True, overridden=False, rule=rule
        )
    await _engine(request).refresh()
    return result


async def _user_rule(session: AsyncSession, plugin_id: str, rule_id: str) -> AlertRuleRow:
    """A rule a user added to the plugin; 404 when there is none."""
    row = await session.get(AlertRuleRow, (plugin_id, rule_id))
    if row is None:
        raise ApiError(404, f"plugin {plugin_id!r} has no user rule {rule_id!r}")
    return row


@router.put(
    "/rules/{plugin_id}/{rule_id}",
    response_model=RuleOut,
    openapi_extra=body_schema(AlertRule.model_json_schema()),
)
async def replace_rule(
    plugin_id: str,
    rule_id: str,
    caller: AdminToken,
    body: Annotated[AlertRule, json_body(AlertRule)],
    manager: ManagerDep,
    db: DatabaseDep,
    request: Request,
) -> RuleOut:
    """Replace a user's rule (a default rule is changed with an override)."""
    async with db.session() as session:
        row = await _user_rule(session, plugin_id, rule_id)
        if body.id != rule_id:
            raise ApiError(422, "id: the rule's id cannot change", details=[_loc("id")])
        await _check_rule(manager, plugin_id, body)
        row.definition = body.model_dump(mode="json")
        row.created_by = actor_of(caller)
        result = RuleOut(
            plugin_id=plugin_id, source="user", enabled=True, overridden=False, rule=body
        )
    await _engine(request).refresh()
    return result


@router.delete("/rules/{plugin_id}/{rule_id}", status_code=204)
async def delete_rule(
    plugin_id: str, rule_id: str, _: AdminToken, db: DatabaseDep, request: Request
) -> Response:
    """Delete a user's rule; its active alerts resolve."""
    async with db.session() as session:
        row = await _user_rule(session, plugin_id, rule_id)
        await session.delete(row)
        await session.execute(
            delete(AlertRuleOverride).where(
                AlertRuleOverride.plugin_id == plugin_id, AlertRuleOverride.rule_id == rule_id
            )
        )
        result = Response(status_code=204)
    await _engine(request).refresh()
    return result


@router.put(
    "/rules/{plugin_id}/{rule_id}/override",
    response_model=RuleOut,
    openapi_extra=body_schema(OverrideIn.model_json_schema()),
)
async def override_rule(
    plugin_id: str,
    rule_id: str,
    caller: AdminToken,
    body: Annotated[OverrideIn, json_body(OverrideIn)],
    manager: ManagerDep,
    db: DatabaseDep,
    request: Request,
) -> RuleOut:
    """Switch a rule off (``enabled: false``) or change a default rule's fields."""
    async with db.session() as session:
        metadata = await _metadata(manager, plugin_id)
        config = await load_rule_config(session)
        shipped = [*metadata.alert_rules, *(EXTERNAL_RULES if plugin_id in config.external else [])]
        default = next((r for r in shipped if r.id == rule_id), None)
        user = next((r for r in config.user_rules_of(plugin_id) if r.id == rule_id), None)
        if default is None and user is None:
            raise ApiError(404, f"plugin {plugin_id!r} has no rule {rule_id!r}")
        if user is not None and body.changes:
            raise ApiError(422, "changes: edit your own rule instead", details=[_loc("changes")])
        rule = user or default
        assert rule is not None
        if body.changes:
            try:
                rule = apply_override(rule, body.changes)
            except RuleError as exc:
                raise _refuse(exc.problems, "changes.") from None
            problems = rule_problems(rule, metadata.metrics)
            if problems:
                raise _refuse(problems, "changes.")
        row = await session.get(AlertRuleOverride, (plugin_id, rule_id))
        if row is None:
            row = AlertRuleOverride(plugin_id=plugin_id, rule_id=rule_id)
            session.add(row)
        row.enabled, row.changes, row.updated_by = body.enabled, body.changes, actor_of(caller)
        row.updated_at = utcnow()
        source: Literal["default", "user"] = "user" if user is not None else "default"
        result = RuleOut(plugin_id=plugin_id, source=source, enabled=body.enabled, overridden=True,
                       rule=rule)  # fmt: skip
    await _engine(request).refresh()
    return result


@router.delete("/rules/{plugin_id}/{rule_id}/override", status_code=204)
async def restore_rule(
    plugin_id: str, rule_id: str, _: AdminToken, db: DatabaseDep, request: Request
) -> Response:
    """Drop the override: the rule is as shipped (or as its user wrote it) again."""
    async with db.session() as session:
        row = await session.get(AlertRuleOverride, (plugin_id, rule_id))
        if row is None:
            raise ApiError(404, f"rule {rule_id!r} of plugin {plugin_id!r} is not overridden")
        await session.delete(row)
        result = Response(status_code=204)
    await _engine(request).refresh()
    return result
