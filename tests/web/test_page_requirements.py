"""Pages show a part (data or a button) to a session that meets the requirement of
the API operation behind it. The page names that requirement (``may(web, ADMIN)``);
this table checks it is still the operation's own, so page and API never disagree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from unity.api.routes import alerts as alerts_api
from unity.api.routes import channels as channels_api
from unity.api.routes import credentials as credentials_api
from unity.api.routes import enrollment as enrollment_api
from unity.api.routes import silences as silences_api
from unity.auth.access import ADMIN, READ, Requirement, requirement_of

# (what the page shows, the requirement the page applies, the API operation behind it)
SHOWN: list[tuple[str, Requirement, Callable[..., Any]]] = [
    ("/alerts: Acknowledge", ADMIN, alerts_api.acknowledge),
    ("/alerts: firing and pending", READ, alerts_api.list_alerts),
    ("/alerts: history", READ, alerts_api.alert_history),
    ("/alerts/silences: Add silence", ADMIN, silences_api.add_silence),
    ("/alerts/silences: maintenance", ADMIN, silences_api.add_window),
    ("/alerts/silences: silences", READ, silences_api.list_silences),
    ("/channels: add, test, delete", ADMIN, channels_api.create_channel),
    ("/channels: delivery log", READ, channels_api.list_deliveries),
    ("/plugins/{id}: alert rules", READ, alerts_api.list_rules),
    ("/plugins/{id}: alert periods on charts", READ, alerts_api.firing_periods),
    ("/plugins/{id}, /external: plugin keys", ADMIN, enrollment_api.list_keys),
    ("/external: enrollment tokens", ADMIN, enrollment_api.list_enrollments),
    ("/credentials: audit log", ADMIN, credentials_api.audit_log),
]


@pytest.mark.parametrize(("shown", "page", "operation"), SHOWN, ids=[s[0] for s in SHOWN])
def test_a_page_applies_the_requirement_of_the_operation_behind_it(
    shown: str, page: Requirement, operation: Callable[..., Any]
) -> None:
    assert requirement_of(operation) == page, shown
