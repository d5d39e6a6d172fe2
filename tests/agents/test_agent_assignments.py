"""``GET /api/agents/v1/assignments``: what runs on the agent's host, its revision as
the ETag (304 when unchanged), and credentials resolved for that agent alone."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.agents.support import AGENTS, API, DEFAULT_PLUGINS, add_instance, auth, joined
from unity.auth.agents import revoke_agent_keys
from unity.storage.models import Host, Plugin
from unity_sdk import Assignments

SECRET = "redis-secret-7c1f"


async def assignments(anon: httpx.AsyncClient, key: str, etag: str | None = None) -> httpx.Response:
    headers = auth(key) | ({"If-None-Match": etag} if etag else {})
    return await anon.get(f"{AGENTS}/assignments", headers=headers)


def by_id(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    return {i["instance_id"]: i for i in answer.json()["instances"]}


async def test_a_new_host_runs_the_four_with_their_defaults(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    answer = await assignments(anon, key)
    assert answer.status_code == 200, answer.text
    parsed = Assignments.model_validate(answer.json())
    assert (parsed.host_id, parsed.poll_seconds) == ("nas", 10)
    assert answer.headers["etag"] == f'"{parsed.revision}"'
    assert answer.headers["cache-control"] == "no-store"
    assert [(i.instance_id, i.plugin, i.enabled) for i in parsed.instances] == [
        (f"{p}@nas", p, True) for p in DEFAULT_PLUGINS
    ]
    system = by_id(answer)["system-info@nas"]
    # The catalogue's defaults: interval and timeout from its metadata, config filled in.
    assert (system["interval"], system["timeout"]) == (30, 10)
    assert system["config"] == {"per_cpu": False}
    # The hub's lists say how often the agent runs it.
    detail = (await client.get(f"{API}/system-info@nas")).json()
    assert detail["interval"] == 30


async def test_the_etag_answers_304_until_an_instance_changes(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    first = await assignments(anon, key)
    etag = first.headers["etag"]
    again = await assignments(anon, key, etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert (await assignments(anon, key, f"W/{etag}")).status_code == 304
    assert (await assignments(anon, key, '"other", ' + etag)).status_code == 304
    assert (await assignments(anon, key, '"other"')).status_code == 200

    # A config change through the plugins API reaches this host's answer.
    changed = await client.put(
        f"{API}/system-info@nas/config", json={"interval": 5, "per_cpu": True}
    )
    assert changed.status_code == 200, changed.text
    now = await assignments(anon, key, etag)
    assert now.status_code == 200
    assert now.headers["etag"] != etag
    assert by_id(now)["system-info@nas"]["interval"] == 5
    assert by_id(now)["system-info@nas"]["config"] == {"per_cpu": True}
    # The agent asks again within the shortest interval: the next change reaches it
    # within one interval of that plugin.
    assert now.json()["poll_seconds"] == 5
    etag = now.headers["etag"]

    # Disabling one is a change too: it is still listed, disabled.
    assert (await client.post(f"{API}/disk-monitor@nas/disable")).status_code == 200
    disabled = await assignments(anon, key, etag)
    assert disabled.status_code == 200
    assert by_id(disabled)["disk-monitor@nas"]["enabled"] is False
    assert (await assignments(anon, key, disabled.headers["etag"])).status_code == 304


async def _audit(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/api/credentials/audit", params={"credential": "redis-pass"})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return [i for i in items if i["action"] == "use"]


async def test_a_credential_reference_is_resolved_for_its_agent_only(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    nas = await joined(client, anon, "nas")
    pi = await joined(client, anon, "pi")
    stored = await client.post(
        "/api/credentials", json={"kind": "password", "name": "redis-pass", "password": SECRET}
    )
    assert stored.status_code == 201, stored.text
    etag = (await assignments(anon, nas)).headers["etag"]
    redis = await add_instance(app, "redis", "nas")
    config = {"port": 6380, "password": {"$credential": "redis-pass"}}
    assert (await client.put(f"{API}/{redis}/config", json=config)).status_code == 200

    answer = await assignments(anon, nas, etag)
    assert answer.status_code == 200
    assert by_id(answer)[redis]["config"]["password"] == SECRET
    assert by_id(answer)[redis]["config"]["port"] == 6380
    [use] = await _audit(client)
    assert (use["actor"], use["target"], use["success"]) == ("agent:nas", f"plugin:{redis}", True)

    # Unchanged: 304, and nothing was decrypted for it.
    assert (await assignments(anon, nas, answer.headers["etag"])).status_code == 304
    assert len(await _audit(client)) == 1
    # The instance's own config reads back masked to people, resolved to its agent.
    masked = await client.get(f"{API}/{redis}/config")
    assert masked.json()["config"]["password"] == {"$credential": "redis-pass"}
    assert SECRET not in masked.text
    own = await anon.get(f"{API}/{redis}/config", headers=auth(nas))
    assert own.status_code == 200
    assert own.json()["config"]["password"] == SECRET
    # Another agent never sees it, in its answer or through the plugins API.
    other = await assignments(anon, pi)
    assert redis not in by_id(other)
    assert SECRET not in other.text
    refused = await anon.get(f"{API}/{redis}/config", headers=auth(pi))
    assert refused.status_code == 403
    assert SECRET not in refused.text
    assert [u["actor"] for u in await _audit(client)] == ["agent:nas", "agent:nas"]


async def test_a_disabled_instance_gets_no_secret_and_a_typed_secret_is_sealed(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    nas = await joined(client, anon, "nas")
    redis = await add_instance(app, "redis", "nas")
    # A secret typed into the config (no stored credential) is sealed at rest, for
    # the instance's own id, and opened for its agent.
    assert (await client.put(f"{API}/{redis}/config", json={"password": SECRET})).status_code == 200
    async with app.state.db.session() as session:
        row = await session.get(Plugin, redis)
        assert row is not None
        assert "$sealed" in row.config["password"]
        assert SECRET not in str(row.config)
    answer = await assignments(anon, nas)
    assert by_id(answer)[redis]["config"]["password"] == SECRET
    assert (await client.post(f"{API}/{redis}/disable")).status_code == 200
    answer = await assignments(anon, nas)
    assert by_id(answer)[redis]["enabled"] is False
    assert by_id(answer)[redis]["config"].get("password") is None
    assert SECRET not in answer.text


async def test_a_removed_host_is_told_to_join_again(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    nas = await joined(client, anon, "nas")
    assert (await assignments(anon, nas)).status_code == 200
    # The hosts API removes a host this way (its keys revoked, then the row deleted).
    async with app.state.db.session() as session:
        assert await revoke_agent_keys(session, "nas") == 1
        host = await session.get(Host, "nas")
        await session.delete(host)
    answer = await assignments(anon, nas)
    assert answer.status_code == 401
    assert (await client.get(f"{API}/system-info@nas")).status_code == 404
