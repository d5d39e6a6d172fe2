"""Joining with an enrollment token: the host, its four instances and its key; retries,
refusals (nothing written), joining again with a host id (a new key, the rest kept),
the hub's own host id (409), and where an agent key works."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.agents.support import (
    AGENTS,
    API,
    DEFAULT_PLUGINS,
    auth,
    counts,
    enroll,
    join,
    joined,
    platform,
)
from tests.api.helpers import error_of
from tests.support.authz import asgi_client
from unity.auth import bearer
from unity.settings import Settings
from unity.storage.models import AgentKey, EnrollmentToken, Host, Plugin, PluginMetric
from unity_sdk import new_key_secret


async def test_a_join_creates_the_host_its_four_instances_and_its_key(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await enroll(client)
    answer = await join(anon, token, "NAS-01.lan")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["host_id"] == "nas-01"
    assert body["api_key"].startswith("unitya_")
    assert body["poll_seconds"] == 10
    async with app.state.db.session() as session:
        host = await session.get(Host, "nas-01")
        assert host is not None
        assert (host.kind, host.hostname, host.platform) == (
            "agent",
            "NAS-01.lan",
            platform("NAS-01.lan"),
        )
        assert host.last_seen_at is not None
        keys = list(await session.scalars(select(AgentKey).where(AgentKey.host_id == "nas-01")))
        rows = list(await session.scalars(select(Plugin).where(Plugin.host_id == "nas-01")))
    assert [k.id for k in keys] == [body["key_id"]]
    secret = body["api_key"].split("_", 2)[2]
    assert keys[0].secret_hash == bearer.hash_secret(secret) != secret
    assert sorted(r.id for r in rows) == [f"{p}@nas-01" for p in DEFAULT_PLUGINS]
    for row in rows:
        assert row.external
        assert row.enabled
        assert row.plugin_type == row.plugin_metadata["id"] == row.id.split("@")[0]
    # The instances are plugins of the hub like any external one.
    detail = (await client.get(f"{API}/system-info@nas-01")).json()
    assert (detail["external"], detail["enabled"], detail["state"]) == (True, True, "unknown")
    assert detail["metadata"]["id"] == "system-info"


async def test_the_plugin_list_pages_across_instance_ids(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await joined(client, anon, "nas")
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(API, params=params)
        assert page.status_code == 200, page.text
        seen += [p["id"] for p in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert {f"{p}@nas" for p in DEFAULT_PLUGINS} <= set(seen)
    assert len(seen) == len(set(seen))


async def test_a_retried_join_gets_the_same_key_and_spends_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await enroll(client, max_uses=1)
    secret = new_key_secret()
    first = await join(anon, token, "nas", key_secret=secret)
    again = await join(anon, token, "nas", key_secret=secret)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert first.json()["api_key"].endswith(secret)
    after = await counts(app)
    assert (after["keys"], after["uses"]) == (1, 1)
    # Concurrent copies of one join (a client retrying before the answer came) agree too.
    token = await enroll(client, max_uses=1)
    secret = new_key_secret()
    answers = await asyncio.gather(*(join(anon, token, "pi", key_secret=secret) for _ in range(3)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["api_key"] for a in answers}) == 1


@pytest.mark.parametrize("problem", ["forged", "expired", "used up", "revoked", "missing"])
async def test_a_refused_token_is_401_and_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, problem: str
) -> None:
    token = await enroll(client, max_uses=1)
    if problem == "forged":
        token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    elif problem == "expired":
        async with app.state.db.session() as session:
            row = (await session.scalars(select(EnrollmentToken))).one()
            row.expires_at = row.created_at
    elif problem == "used up":
        assert (await join(anon, token, "first")).status_code == 201
    elif problem == "revoked":
        token_id = token.split("_")[1]
        assert (await client.delete(f"/api/enrollment-tokens/{token_id}")).status_code == 204
    before = await counts(app)
    if problem == "missing":
        answer = await anon.post(f"{AGENTS}/join", json={"platform": platform("nas")})
    else:
        answer = await join(anon, token, "nas", key_secret=new_key_secret())
    error = error_of(answer, 401)
    assert answer.headers["www-authenticate"] == "Bearer"
    expected = "required" if problem == "missing" else "invalid, expired, revoked or used up"
    assert expected in error["message"]
    assert await counts(app) == before
    async with app.state.db.session() as session:
        assert await session.get(Host, "nas") is None


async def test_joining_again_with_the_host_id_replaces_its_key_and_keeps_the_rest(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await join(anon, await enroll(client), "nas")
    assert first.status_code == 201
    old_key = first.json()["api_key"]
    # History and config the host must keep; the old key verified once, so remembered.
    batch = {
        "batch_id": "before-rejoin",
        "samples": [{"host": "nas", "timestamp": "2026-01-01T00:00:00Z", "data": {"uptime": 1}}],
    }
    sent = await anon.post(f"{API}/system-info@nas/metrics", json=batch, headers=auth(old_key))
    assert sent.status_code == 200, sent.text
    disabled = await client.post(f"{API}/disk-monitor@nas/disable")
    assert disabled.status_code == 200, disabled.text
    before = await counts(app)

    caplog.set_level(logging.WARNING, logger="unity.plugins.agents")
    token = await enroll(client)
    again = await join(anon, token, "nas.new.lan", host_id="nas", key_secret=new_key_secret())
    assert again.status_code == 201, again.text
    body = again.json()
    assert body["host_id"] == "nas"
    assert body["api_key"] != old_key
    # The old key stops at once (this hub had it remembered); the new one works.
    old = await anon.get(f"{AGENTS}/assignments", headers=auth(old_key))
    assert old.status_code == 401
    fresh = await anon.get(f"{AGENTS}/assignments", headers=auth(body["api_key"]))
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["host_id"] == "nas"
    # Same host, instances and history; one more key row, one use of the new token spent.
    after = await counts(app)
    assert after["hosts"] == before["hosts"]
    assert after["instances"] == before["instances"]
    assert after["keys"] == before["keys"] + 1
    async with app.state.db.session() as session:
        host = await session.get(Host, "nas")
        assert host is not None
        assert (host.kind, host.hostname) == ("agent", "nas.new.lan")
        keys = list(await session.scalars(select(AgentKey).where(AgentKey.host_id == "nas")))
        live = [k.id for k in keys if k.revoked_at is None]
        used = await session.scalar(
            select(EnrollmentToken.uses).where(EnrollmentToken.id == token.split("_")[1])
        )
        metrics = await session.scalar(
            select(func.count())
            .select_from(PluginMetric)
            .where(PluginMetric.plugin_id == "system-info@nas")
        )
    assert live == [body["key_id"]]
    assert used == 1
    assert metrics == 1
    assert (await client.get(f"{API}/disk-monitor@nas")).json()["enabled"] is False
    logged = [r.getMessage() for r in caplog.records if "joined again" in r.getMessage()]
    assert len(logged) == 1
    assert "host nas (nas.new.lan)" in logged[0]
    assert "1 earlier key(s) revoked" in logged[0]
    assert old_key not in logged[0]
    assert body["api_key"] not in logged[0]


async def test_the_hubs_own_host_id_is_409_and_spends_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    async with app.state.db.session() as session:
        hub_host = await session.scalar(select(Host.id).where(Host.kind == "hub"))
    assert hub_host is not None
    token = await enroll(client)
    before = await counts(app)
    answer = await join(anon, token, "intruder.lan", host_id=hub_host)
    error = error_of(answer, 409)
    assert f"host id {hub_host!r} is the hub's own machine" in error["message"]
    assert await counts(app) == before
    async with app.state.db.session() as session:
        host = await session.get(Host, hub_host)
        assert host is not None
        assert host.kind == "hub"


async def test_bad_bodies_are_422_and_spend_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await enroll(client)
    bad = [
        {},
        {"platform": {"hostname": ""}},
        {"platform": platform("nas"), "host_id": "NAS!"},
        {"platform": platform("nas"), "host_id": "a" * 25},
        {"platform": platform("nas"), "key_secret": "short"},
        {"platform": platform("nas"), "extra": 1},
    ]
    before = await counts(app)
    for body in bad:
        answer = await anon.post(f"{AGENTS}/join", json=body, headers=auth(token))
        error = error_of(answer, 422)
        assert error["details"], body
    not_json = await anon.post(
        f"{AGENTS}/join",
        content=b"{nope",
        headers={**auth(token), "Content-Type": "application/json"},
    )
    error_of(not_json, 422)
    assert await counts(app) == before


async def test_a_takeover_token_cannot_join(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    registered = await anon.post(
        f"{API}/register",
        json={"metadata": {"id": "ext", "name": "Ext", "version": "1.0.0"}, "hostname": "x"},
        headers=auth(await enroll(client)),
    )
    assert registered.status_code == 201, registered.text
    takeover = await enroll(client, takeover="ext")
    error = error_of(await join(anon, takeover, "nas"), 403)
    assert "plain enrollment token" in error["message"]


async def test_an_agent_key_works_only_on_the_agent_api_and_its_instances(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, admin_token: str
) -> None:
    key = await joined(client, anon, "nas")
    for method, path in [
        ("GET", API),
        ("GET", f"{API}/system-info@nas"),
        ("POST", f"{API}/system-info@nas/enable"),
        ("GET", "/api/credentials"),
    ]:
        error = error_of(await anon.request(method, path, headers=auth(key)), 403)
        assert "agent key" in error["message"]
    # Hub tokens and plugin keys are not agent keys.
    error = error_of(await anon.get(f"{AGENTS}/assignments", headers=auth(admin_token)), 403)
    assert "agent's own key" in error["message"]
    error_of(await anon.get(f"{AGENTS}/assignments"), 401)
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    error_of(await anon.get(f"{AGENTS}/assignments", headers=auth(forged)), 401)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Failed authentications limited as shipped (burst, then 429), quickly forgotten."""
    return settings.model_copy(
        update={
            "auth_failure_burst": 2,
            "auth_failure_limit": 4,
            "auth_failure_window_seconds": 60,
            "auth_failure_delay_seconds": 0.01,
        }
    )


@pytest.fixture
async def attacker(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "127.0.0.77") as c:
        yield c


async def test_wrong_enrollment_tokens_are_rate_limited_like_registrations(
    client: httpx.AsyncClient, attacker: httpx.AsyncClient
) -> None:
    token = await enroll(client)
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    statuses = [(await join(attacker, wrong, "nas")).status_code for _ in range(6)]
    assert statuses == [401] * 4 + [429] * 2
    # Another address is not locked out.
    assert (await join(client, token, "nas")).status_code == 201
