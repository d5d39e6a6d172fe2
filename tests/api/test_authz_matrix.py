"""The authorization matrix: every operation of the OpenAPI document, with every
kind of credential, against the one rule.

Operations come from ``app.openapi()``, so an endpoint added later is walked
without touching this file; its requirement is read from its route
(``requirement_of``), and an operation that declares none fails here unless it
is listed as public below. The expected outcome of each (requirement,
credential) pair is written out by hand in ``RULE`` rather than computed by the
code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import error_of
from tests.support.authz import (
    BEARER_KINDS,
    NONE,
    OTHER_PLUGIN,
    PLUGIN,
    SESSION_KINDS,
    UNAUTHENTICATED,
    World,
    asgi_client,
    endpoints,
    join_body,
    populate,
    register_body,
)
from unity.auth.access import requirement_of

ALLOWED = "allowed"
AUTHENTICATED = tuple(k for k in (*BEARER_KINDS, *SESSION_KINDS) if k not in UNAUTHENTICATED)
# Admin credentials last: their changes (deletions, revocations) come after every other check.
KINDS = [
    NONE,
    *[k for k in (*BEARER_KINDS, *SESSION_KINDS) if "admin" not in k],
    "admin",
    "admin session",
]

# requirement name -> credential kind -> expected outcome, for live credentials.
RULE: dict[str, dict[str, str | int]] = {
    "read": {
        "read": ALLOWED,
        "admin": ALLOWED,
        "read session": ALLOWED,
        "admin session": ALLOWED,
        "own key": 403,
        "other key": 403,
        "agent key": 403,
    },
    "admin": {
        "read": 403,
        "admin": ALLOWED,
        "read session": 403,
        "admin session": ALLOWED,
        "own key": 403,
        "other key": 403,
        "agent key": 403,
    },
    # The path's plugin is an external plugin, no instance of the agent's host.
    "own plugin key": {
        "read": 403,
        "admin": 403,
        "read session": 403,
        "admin session": 403,
        "own key": ALLOWED,
        "other key": 403,
        "agent key": 403,
    },
    "own plugin key or read": {
        "read": ALLOWED,
        "admin": ALLOWED,
        "read session": ALLOWED,
        "admin session": ALLOWED,
        "own key": ALLOWED,
        "other key": 403,
        "agent key": 403,
    },
    "agent key": {
        "read": 403,
        "admin": 403,
        "read session": 403,
        "admin session": 403,
        "own key": 403,
        "other key": 403,
        "agent key": ALLOWED,
    },
}
# Operations that take no hub credential, and what any of the matrix's credentials gets.
PUBLIC: dict[tuple[str, str], str | int] = {
    ("GET", "/healthz"): 200,
    ("GET", "/readyz"): 200,
    # Need an enrollment token, which is none of the matrix's credentials.
    ("POST", "/api/plugins/v2/register"): 401,
    ("POST", "/api/agents/v1/join"): 401,
}
# What the review found the dashboard showing a read-only session: admin-only in the API.
ADMIN_ONLY = [
    ("GET", "/api/credentials/audit"),
    ("GET", "/api/enrollment-tokens"),
    ("GET", "/api/plugins/v2/{plugin_id}/keys"),
]

# Notification channels: read scope lists, admin scope changes and sends tests.
NOTIFICATIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/alerts/channels"): "read",
    ("POST", "/api/alerts/channels"): "admin",
    ("GET", "/api/alerts/channels/{name}"): "read",
    ("PATCH", "/api/alerts/channels/{name}"): "admin",
    ("DELETE", "/api/alerts/channels/{name}"): "admin",
    ("POST", "/api/alerts/channels/{name}/test"): "admin",
    ("GET", "/api/alerts/deliveries"): "read",
}


def operations(app: FastAPI) -> list[tuple[str, str, Callable[..., Any]]]:
    """Every (method, path template) of the OpenAPI document with its route function."""
    functions = endpoints(app)
    return [
        (method.upper(), template, functions[(method.upper(), template)])
        for template, items in app.openapi()["paths"].items()
        for method in items
    ]


def expected(method: str, template: str, endpoint: Callable[..., Any], kind: str) -> str | int:
    if (method, template) in PUBLIC:
        return PUBLIC[(method, template)]
    requirement = requirement_of(endpoint)
    assert requirement is not None, f"{method} {template} declares no requirement"
    if kind in UNAUTHENTICATED:
        return 401
    return RULE[requirement.name][kind]


def body_for(method: str, template: str) -> Any:
    if template == "/api/plugins/v2/register":
        return register_body("ext-new")
    if template == "/api/agents/v1/join":
        return join_body("matrix-new")
    return {} if method in ("POST", "PUT", "PATCH") else None


async def _send(
    app: FastAPI, world: World, method: str, template: str, kind: str
) -> httpx.Response:
    async with asgi_client(app) as c:
        body = body_for(method, template)
        return await c.request(
            method,
            world.fill(template),
            headers=world.headers(kind, method),
            **({} if body is None else {"json": body}),
        )


@pytest.fixture
async def world(app: FastAPI) -> World:
    return await populate(app)


def test_every_credential_kind_of_the_review_is_walked() -> None:
    assert set(KINDS) == {
        "none",
        "malformed",
        "revoked",
        "expired",
        "read",
        "admin",
        "own key",
        "other key",
        "agent key",
        "read session",
        "admin session",
    }
    assert all(set(row) == set(AUTHENTICATED) for row in RULE.values())


def test_the_operations_the_dashboard_hid_are_admin_only(app: FastAPI) -> None:
    routes = {(m, t): r for m, t, r in operations(app)}
    for method, template in ADMIN_ONLY:
        requirement = requirement_of(routes[(method, template)])
        assert requirement is not None
        assert requirement.name == "admin", (method, template)


def test_notification_operations_have_the_listed_requirements(app: FastAPI) -> None:
    routes = {(m, t): r for m, t, r in operations(app)}
    found = {key for key in routes if key[1].startswith(("/api/alerts/channels", "/api/alerts/d"))}
    assert found == set(NOTIFICATIONS), "every notification operation is listed here"
    for key, name in NOTIFICATIONS.items():
        requirement = requirement_of(routes[key])
        assert requirement is not None, key
        assert requirement.name == name, key


async def test_the_authorization_matrix(app: FastAPI, world: World) -> None:
    ops = operations(app)
    assert len(ops) >= 30, "the walk sees the whole API"
    mismatches = []
    for kind in KINDS:
        for method, template, route in ops:
            want = expected(method, template, route, kind)
            answer = await _send(app, world, method, template, kind)
            got = answer.status_code
            ok = got not in (401, 403, 429) and got < 500 if want == ALLOWED else got == want
            if not ok:
                mismatches.append(f"{kind:>13}  {method} {template}: {got}, want {want}")
            elif got in (401, 403):
                error = error_of(answer, got)
                assert error["code"] == ("unauthorized" if got == 401 else "forbidden")
                if got == 401:
                    assert answer.headers["www-authenticate"] == "Bearer"
    assert mismatches == [], "\n" + "\n".join(mismatches)


async def test_another_plugins_key_is_refused_even_on_its_own_requests(
    app: FastAPI, world: World
) -> None:
    """The other key is live: it reports for its own plugin, only not for this one."""
    other = world.headers("other key", "POST")
    async with asgi_client(app) as c:
        health = {"status": "healthy"}
        own = await c.post(f"/api/plugins/v2/{OTHER_PLUGIN}/health", json=health, headers=other)
        assert own.status_code == 200, own.text
        foreign = await c.post(f"/api/plugins/v2/{PLUGIN}/health", json=health, headers=other)
        assert error_of(foreign, 403)["message"] == "this API key belongs to another plugin"
