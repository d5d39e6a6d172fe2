"""Every endpoint needs a hub token; read tokens read, admin tokens also change things."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select

from tests.api.helpers import (
    API,
    ENDPOINTS,
    READS,
    WRITES,
    client_for,
    error_of,
    execution_rows,
    issue_token,
    plugin_row,
    send,
)
from tests.support.sample_plugins import CounterPlugin
from unity.api.routes import plugins, system
from unity.auth.tokens import Scope, revoke_token
from unity.storage.models import ApiToken

# Checked on its own below: it answers an anonymous invalid body with 422.
REGISTER = "/api/plugins/v2/register"
# Liveness and readiness probes answer load balancers, which hold no credential.
PROBES = {"/healthz", "/readyz"}


def secret_of(token: str) -> str:
    """The secret part of ``unity_<12-char id>_<secret>`` (the secret may contain ``_``)."""
    return token[len("unity_") + 12 + 1 :]


def assert_unauthorized(response: httpx.Response, where: str) -> None:
    assert response.status_code == 401, (where, response.status_code, response.text)
    assert response.headers.get("www-authenticate") == "Bearer", where
    assert error_of(response, 401)["code"] == "unauthorized", where


def test_the_tables_cover_every_route_of_the_plugins_and_system_routers() -> None:
    served = {
        (method, route.path)
        for route in [*plugins.router.routes, *system.router.routes]
        if isinstance(route, APIRoute) and route.path not in PROBES
        for method in route.methods
    }
    assert served == {(method, template) for method, template, _, _ in ENDPOINTS}


async def test_no_token_is_401_with_a_bearer_challenge(anon: httpx.AsyncClient) -> None:
    for method, _, path, body in ENDPOINTS:
        assert_unauthorized(await send(anon, method, path, body), f"{method} {path}")


async def test_nothing_but_liveness_and_docs_answers_without_a_credential(
    app: FastAPI, anon: httpx.AsyncClient
) -> None:
    """Every route in the OpenAPI document, including ones added later."""
    checked = 0
    for template, operations in app.openapi()["paths"].items():
        if template in {*PROBES, REGISTER}:
            continue
        path = re.sub(r"\{plugin_id\}", "counter", template)
        path = re.sub(r"\{[a-z_]+\}", "x", path)
        for method in operations:
            body = {} if method in {"post", "put", "patch"} else None
            response = await send(anon, method.upper(), path, body)
            assert_unauthorized(response, f"{method.upper()} {template}")
            checked += 1
    assert checked >= len(ENDPOINTS)


async def test_no_token_is_401_even_for_an_unknown_plugin(anon: httpx.AsyncClient) -> None:
    for method, _, path, body in ENDPOINTS:
        missing = path.replace("/counter", "/no-such-plugin")
        assert_unauthorized(await send(anon, method, missing, body), f"{method} {missing}")


async def test_bad_credentials_are_401(app: FastAPI, read_token: str) -> None:
    admin = await issue_token(app, Scope.ADMIN)
    revoked = await issue_token(app, Scope.ADMIN)
    expired = await issue_token(app, Scope.ADMIN, expires_at=datetime.now(UTC) - timedelta(1))
    async with app.state.db.session() as session:
        assert await revoke_token(session, revoked.id)
    wrong_secret = f"unity_{admin.id}_{'A' * 43}"
    unknown_id = f"unity_{'z' * 12}_{secret_of(admin.value)}"
    bad = {
        "malformed": "not-a-token",
        "truncated": admin.value[:-1],
        "wrong secret": wrong_secret,
        "unknown id": unknown_id,
        "revoked": revoked.value,
        "expired": expired.value,
    }
    for label, token in bad.items():
        async with client_for(app, token) as c:
            for method, _, path, body in ENDPOINTS:
                response = await send(c, method, path, body)
                assert_unauthorized(response, f"{label}: {method} {path}")
    # The same requests go through with the live tokens, so the 401s above are the token's.
    async with client_for(app, read_token) as c:
        assert (await c.get(API)).status_code == 200


async def test_a_token_in_another_scheme_is_401(app: FastAPI, admin_token: str) -> None:
    async with client_for(app) as c:
        for header in (f"Basic {admin_token}", admin_token, f"Token {admin_token}", "Bearer"):
            response = await c.get(API, headers={"Authorization": header})
            assert_unauthorized(response, header)


async def test_the_bearer_scheme_is_case_insensitive(app: FastAPI, admin_token: str) -> None:
    async with client_for(app) as c:
        response = await c.get(API, headers={"Authorization": f"bearer {admin_token}"})
    assert response.status_code == 200


async def test_read_token_reads_every_get_endpoint(reader: httpx.AsyncClient) -> None:
    for method, _, path, body in READS:
        response = await send(reader, method, path, body)
        assert response.status_code == 200, (path, response.text)


async def test_read_token_is_forbidden_to_change_anything(
    app: FastAPI, reader: httpx.AsyncClient, counter: CounterPlugin
) -> None:
    for method, _, path, body in WRITES:
        response = await send(reader, method, path, body)
        error = error_of(response, 403)
        assert error["code"] == "forbidden", path
        assert "admin" in error["message"]
    row = await plugin_row(app, "counter")
    assert row.enabled is False
    assert row.config == {}
    assert row.run_count == 0
    assert "counter" not in app.state.manager.scheduler
    assert await execution_rows(app, "counter") == []
    assert counter.events == []
    assert counter.runs == 0


async def test_read_token_cannot_disable_an_enabled_plugin(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    assert (await client.post(f"{API}/counter/enable")).status_code == 200
    error_of(await reader.post(f"{API}/counter/disable"), 403)
    assert (await plugin_row(app, "counter")).enabled is True
    assert "counter" in app.state.manager.scheduler


async def test_read_token_is_forbidden_before_the_plugin_is_looked_up(
    reader: httpx.AsyncClient,
) -> None:
    error_of(await reader.post(f"{API}/no-such-plugin/execute"), 403)


async def test_admin_token_may_do_everything(
    client: httpx.AsyncClient, counter: CounterPlugin
) -> None:
    for method, _, path, body in ENDPOINTS:
        response = await send(client, method, path, body)
        assert response.status_code == 200, (method, path, response.text)
    assert counter.events[:3] == ["enable", "disable", "config"]


async def test_healthz_needs_no_token(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_needs_no_token_and_checks_the_database(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_tokens_are_stored_hashed(app: FastAPI, client: httpx.AsyncClient) -> None:
    issued = await issue_token(app, Scope.READ)
    assert issued.value.startswith(f"unity_{issued.id}_")
    secret = secret_of(issued.value)
    assert len(secret) == 43
    async with client_for(app, issued.value) as c:
        assert (await c.get(API)).status_code == 200
    async with app.state.db.session() as session:
        rows = list((await session.scalars(select(ApiToken))).all())
    assert rows
    stored = [str(getattr(row, column.key)) for row in rows for column in ApiToken.__table__.c]
    assert not any(secret in value or issued.value in value for value in stored)
    row = next(r for r in rows if r.id == issued.id)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert row.scope == "read"
    assert row.last_used_at is not None


async def test_no_token_is_401_even_with_a_malformed_body(anon: httpx.AsyncClient) -> None:
    response = await anon.put(
        f"{API}/counter/config",
        content=b'{"note": ',
        headers={"content-type": "application/json"},
    )
    assert_unauthorized(response, "PUT config with a malformed body")


async def test_register_without_a_token_is_401_whatever_the_body(
    anon: httpx.AsyncClient,
) -> None:
    assert_unauthorized(await anon.post(REGISTER, json={}), "POST register with {}")
