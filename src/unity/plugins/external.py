"""External plugins: registration, metric batches and health reports.

External plugins run on other hosts and push over HTTP; the hub keeps their
registry row, config, metrics and health like any other plugin but never runs
their code. What a registration must satisfy is the SDK's rulebook
(:func:`unity_sdk.parse_metadata`), which the SDK's ``FakeHub`` applies too.
Metric batches are stored by :mod:`unity.plugins.ingest`.

An id belongs to the enrollment token of its first registration: another
token registering it is refused (409) unless an admin made that token to take
the id over. A registration that proposes its key's secret can be retried: the
same token, id and secret get the same key back, spending no further use.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from unity.auth import external as external_auth
from unity.auth.external import IssuedSecret
from unity.plugins.config import check_off_loop
from unity.plugins.manager import PluginManager
from unity.plugins.observe import StateChanged
from unity.plugins.runtime import PluginNotFoundError, PluginStateError
from unity.storage import events, registry
from unity.storage.models import EnrollmentToken, Plugin
from unity.storage.types import utcnow
from unity_sdk import (
    RESERVED_KEYS,
    RUN_STATES,
    HealthReport,
    HealthState,
    PluginMetadata,
    PluginState,
    RegisterRequest,
    RegisterResponse,
    parse_metadata,
    plugin_state,
    secret_fields,
)

__all__ = [
    "EnrollmentRefusedError",
    "EnrollmentScopeError",
    "RegistrationConflictError",
    "external_row",
    "external_state",
    "is_backing_off",
    "is_stale",
    "record_health",
    "register",
    "report_interval",
]


log = logging.getLogger(__name__)


class EnrollmentRefusedError(PermissionError):
    """The enrollment token is invalid, expired, revoked or used up."""


class EnrollmentScopeError(PermissionError):
    """A takeover token was used for another plugin id than its own."""


class RegistrationConflictError(PluginStateError):
    """The plugin id belongs to another registration (or to an in-hub plugin)."""


async def register(
    manager: PluginManager, request: RegisterRequest, enrollment_token: str
) -> RegisterResponse:
    """Trade an enrollment token for a plugin API key; create or refresh the registry row.

    Everything happens in one transaction: a refused registration changes
    nothing and spends no use of the token.
    """
    metadata = await check_off_loop(
        parse_metadata, request.metadata, timeout=manager.settings.schema_check_seconds
    )
    if metadata.id in manager.plugins:
        raise RegistrationConflictError(_in_hub(metadata.id))
    try:
        async with manager.db.session() as session:
            key = await _register(session, metadata, request, enrollment_token)
            row = await session.get(Plugin, metadata.id)
            if row is not None and row.config:
                # A field the new schema marks secret may hold a plain value.
                row.config = manager.vault.sealed(metadata, row.config)
    except IntegrityError as exc:
        # PostgreSQL: another registration inserted the same new id concurrently.
        raise RegistrationConflictError(_CONCURRENT.format(plugin_id=metadata.id)) from exc
    return RegisterResponse(plugin_id=metadata.id, api_key=key.value, key_id=key.id)


async def _register(
    session: Any, metadata: PluginMetadata, request: RegisterRequest, value: str
) -> IssuedSecret:
    enrollment = await external_auth.authenticate_enrollment(session, value)
    if enrollment is None:
        raise EnrollmentRefusedError(_REFUSED)
    if enrollment.takeover_plugin_id not in (None, metadata.id):
        raise EnrollmentScopeError(
            f"this enrollment token only takes over plugin {enrollment.takeover_plugin_id!r}"
        )
    repeated = await _repeated(session, metadata.id, enrollment, request.key_secret)
    if repeated is None and not await external_auth.claim_enrollment_use(session, enrollment.id):
        # A concurrent copy of this very request may have won the last use: its
        # key answers this one too.
        repeated = await _repeated(session, metadata.id, enrollment, request.key_secret)
        if repeated is None:
            raise EnrollmentRefusedError(_REFUSED)
    # Claimed first: on SQLite the claim's write lock serialises registrations,
    # so the owner read below cannot be stale.
    row = await session.get(Plugin, metadata.id, with_for_update=True)
    takeover = _check_owner(row, metadata.id, enrollment)
    if row is not None:
        _drop_unmasked_secrets(row, metadata)
    synced, created = await registry.sync_plugin(
        session, metadata=metadata, external=True, enable_if_new=True
    )
    if row is None and not created:
        # PostgreSQL: a concurrent registration inserted the id after our read.
        raise RegistrationConflictError(_CONCURRENT.format(plugin_id=metadata.id))
    row = synced
    if takeover:
        revoked = await external_auth.revoke_plugin_keys(session, metadata.id)
        log.warning(
            "plugin %s taken over by enrollment token %s; %d key(s) of the previous "
            "registration revoked",
            metadata.id,
            enrollment.id,
            revoked,
        )
    row.owner_enrollment_id = enrollment.id
    if repeated is not None:
        return repeated
    return await external_auth.issue_plugin_key(
        session,
        plugin_id=metadata.id,
        hostname=request.hostname,
        enrollment_id=enrollment.id,
        secret=request.key_secret,
    )


_REFUSED = "enrollment token is invalid, expired, revoked or used up"
_CONCURRENT = "plugin id {plugin_id!r} was registered concurrently by another registration; retry"


def _in_hub(plugin_id: str) -> str:
    return f"plugin id {plugin_id!r} belongs to a plugin inside the hub"


async def _repeated(
    session: Any, plugin_id: str, enrollment: EnrollmentToken, secret: str | None
) -> IssuedSecret | None:
    if secret is None:
        return None
    return await external_auth.find_proposed_key(
        session, plugin_id=plugin_id, enrollment_id=enrollment.id, secret=secret
    )


def _check_owner(row: Plugin | None, plugin_id: str, enrollment: EnrollmentToken) -> bool:
    """Refuse another registration's id; True when this one takes the id over."""
    if row is None:
        return False
    if not row.external:
        raise RegistrationConflictError(_in_hub(plugin_id))
    if row.owner_enrollment_id == enrollment.id:
        return False
    if enrollment.takeover_plugin_id == plugin_id:
        return True
    raise RegistrationConflictError(
        f"plugin id {plugin_id!r} is already registered by another enrollment token; "
        f"to hand it over, an admin creates an enrollment token with takeover={plugin_id!r} "
        "(`unity token create --enroll --takeover ID`)"
    )


def _drop_unmasked_secrets(row: Plugin, metadata: PluginMetadata) -> None:
    """Remove stored values of fields the new schema no longer marks secret.

    Masking follows the schema, so such a value would otherwise be shown to
    every reader from now on; the admin sets it again if it is still needed.
    """
    try:
        before = secret_fields(PluginMetadata.model_validate(row.plugin_metadata))
    except ValidationError:
        # Unreadable old metadata: treat every stored value as having been secret.
        before = set(row.config) - RESERVED_KEYS
    exposed = sorted((before - secret_fields(metadata)) & set(row.config))
    if exposed:
        row.config = {k: v for k, v in row.config.items() if k not in exposed}
        log.warning(
            "plugin %s re-registered with a schema where %s %s no longer secret: "
            "the stored value(s) were removed; set them again if still needed",
            metadata.id,
            ", ".join(exposed),
            "is" if len(exposed) == 1 else "are",
        )


async def external_row(session: Any, plugin_id: str) -> Plugin:
    row = await registry.get_plugin(session, plugin_id)
    if row is None:
        raise PluginNotFoundError(plugin_id)
    if not row.external:
        raise PluginStateError(f"plugin {plugin_id!r} is not an external plugin")
    return row


def _state(row: Plugin, manager: PluginManager, now: datetime) -> PluginState:
    """The state of an external plugin, from its row."""
    return external_state(
        enabled=row.enabled,
        runs=row.state,
        health_status=row.health_status,
        last_seen_at=row.last_seen_at,
        interval=report_interval(row.config, row.plugin_metadata),
        missed=manager.settings.stale_after_missed,
        now=now,
        backing_off=is_backing_off(row),
    )


def external_state(
    *,
    enabled: bool,
    runs: str,
    health_status: str,
    last_seen_at: datetime | None,
    interval: float,
    missed: int,
    now: datetime,
    backing_off: bool = False,
) -> PluginState:
    """The state of an external plugin from the columns of its row (``backing_off``:
    see :func:`is_backing_off`)."""
    return plugin_state(
        enabled=enabled,
        runs=runs if runs in RUN_STATES else PluginState.UNKNOWN,
        health=health_status if health_status != HealthState.UNKNOWN else None,
        stale=enabled and not backing_off and _overdue(last_seen_at, interval * missed, now),
    )


def is_backing_off(row: Plugin) -> bool:
    """An agent's instance whose last report was a failure: the agent spaces its
    failing runs out (backoff), as the hub does its own, so its silence is not
    staleness; it shows unhealthy, and its host turns stale if the agent goes quiet."""
    return row.host_id is not None and row.health_status == HealthState.UNHEALTHY


def report_interval(config: dict[str, Any] | None, metadata: dict[str, Any]) -> float:
    """Seconds between an external plugin's reports: its configured interval, else
    the default its metadata declares."""
    return float((config or {}).get("interval") or metadata.get("default_interval", 60))


def _overdue(last_seen_at: datetime | None, seconds: float, now: datetime) -> bool:
    return last_seen_at is not None and now - last_seen_at > timedelta(seconds=seconds)


async def _changed(
    session: Any,
    row: Plugin,
    previous: PluginState,
    current: PluginState,
    at: datetime,
    message: str,
) -> StateChanged | None:
    """Store the state change of an external plugin, if there was one."""
    if current is previous:
        return None
    await events.record_event(
        session,
        plugin_id=row.id,
        at=at,
        previous=previous.value,
        current=current.value,
        message=message[:2000],
    )
    return StateChanged(row.id, at, previous, current, message)


async def record_health(manager: PluginManager, plugin_id: str, report: HealthReport) -> datetime:
    now = utcnow()
    async with manager.db.session() as session:
        row = await external_row(session, plugin_id)
        previous = _state(row, manager, now)
        row.health_status = report.status.value
        row.health_message = report.message
        row.health_details = {
            **report.details,
            "buffered": report.buffered,
            "dropped": report.dropped,
        }
        row.health_checked_at = now
        row.last_seen_at = now
        change = await _changed(
            session, row, previous, _state(row, manager, now), now, report.message
        )
    if change is not None:
        await manager.recorder.tell(change)
    return now


def is_stale(row: Plugin, *, missed: int, now: datetime | None = None) -> bool:
    """An enabled external plugin that has not reported for ``missed`` intervals."""
    if not (row.external and row.enabled) or is_backing_off(row):
        return False
    interval = report_interval(row.config, row.plugin_metadata)
    return _overdue(row.last_seen_at, interval * missed, now or utcnow())
