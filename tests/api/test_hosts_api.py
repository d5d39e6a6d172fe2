"""``/api/hosts`` on the real app (SQLite and PostgreSQL): host cards, plugin
instances on agents' hosts, proposals accepted and dismissed, hosts removed.

Agent hosts, their instances, documents and proposals are written through
storage, as the agent protocol leaves them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.api.helpers import error_of
from tests.support import sample_plugins
from tests.support.hosts import (
    add_agent_host,
    add_documents,
    add_instance,
    add_proposal,
    disk_document,
    system_document,
)
from unity.storage.models import (
    AgentKey,
    DiscoveryProposal,
    Host,
    LatestMetric,
    Plugin,
    PluginMetric,
)
from unity_sdk import PluginState

HUB = "test-host"


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [sample_plugins.CounterPlugin, sample_plugins.ConfiguredPlugin]


async def _nas(app: FastAPI) -> None:
    db = app.state.db
    await add_agent_host(
        db, "nas", status={"buffered": 3, "dropped": 1, "problems": {"gpu@nas": "no GPU"}}
    )
    system = await add_instance(db, "system-info", "nas")
    disk = await add_instance(db, "disk-monitor", "nas", health="degraded", state="healthy")
    await add_documents(db, system, "nas.lan", [system_document(10, 20), system_document(12, 30)])
    await add_documents(db, disk, "nas.lan", [disk_document(41.5, 93.0)])
    await add_proposal(db, "nas", "postgres:5432", "postgres", credential="password")
    await add_proposal(db, "nas", "redis:6379", "redis", status="dismissed")


async def test_hosts_list_the_hub_first_then_agents_with_their_numbers(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    await _nas(app)
    await add_agent_host(app.state.db, "aaa-pi", never_seen=True)
    answer = await reader.get("/api/hosts")
    assert answer.status_code == 200, answer.text
    hosts = answer.json()
    assert [h["id"] for h in hosts] == [HUB, "aaa-pi", "nas"], "the hub's own host first"
    hub, pi, nas = hosts
    assert hub["kind"] == "hub"
    assert hub["hostname"] == HUB
    assert hub["platform"]["cpu_count"] >= 1
    assert hub["agent"] is None
    assert pi["state"] == PluginState.UNKNOWN, "an agent that never called"
    assert nas["kind"] == "agent"
    assert nas["cpu_percent"] == 12.0, "the newest document"
    assert nas["memory_percent"] == 30.0
    assert nas["disk_percent"] == 41.5, "the root filesystem, not the fullest"
    assert nas["state"] == PluginState.DEGRADED, "its worst instance"
    assert {p["id"]: p["plugin_type"] for p in nas["plugins"]} == {
        "disk-monitor@nas": "disk-monitor",
        "system-info@nas": "system-info",
    }
    assert nas["open_proposals"] == 1, "the dismissed one is not open"
    assert nas["agent"] == {
        "buffered": 3,
        "dropped": 1,
        "sent": 0,
        "problems": {"gpu@nas": "no GPU"},
        "started_at": None,
    }
    assert nas["platform"]["distribution"].startswith("Debian")


async def test_one_host_in_detail_and_404s(app: FastAPI, reader: httpx.AsyncClient) -> None:
    await _nas(app)
    detail = (await reader.get("/api/hosts/nas")).json()
    assert [p["id"] for p in detail["instances"]] == ["disk-monitor@nas", "system-info@nas"]
    assert {p["key"]: p["status"] for p in detail["proposals"]} == {
        "postgres:5432": "open",
        "redis:6379": "dismissed",
    }
    assert "no host with id 'nope'" in error_of(await reader.get("/api/hosts/nope"), 404)["message"]
    assert error_of(await reader.get("/api/hosts/nope/proposals"), 404)
    bad = await reader.get("/api/hosts/nas/proposals", params={"status": "maybe"})
    assert "status must be one of" in error_of(bad, 422)["message"]
    opened = (await reader.get("/api/hosts/nas/proposals", params={"status": "open"})).json()
    assert [p["key"] for p in opened] == ["postgres:5432"]


async def test_adding_a_plugin_to_an_agent_host_makes_an_instance(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_agent_host(app.state.db, "nas")
    body = {"plugin": "postgres", "config": {"port": 5433, "password": "s3cret"}, "interval": 30}
    made = await client.post("/api/hosts/nas/plugins", json=body)
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["id"] == "postgres@nas"
    assert created["external"] is True
    assert created["enabled"] is True
    assert created["metadata"]["id"] == "postgres", "the catalogue plugin's metadata"
    assert created["config"]["password"] == "********"
    assert created["interval"] == 30
    same = (await client.get("/api/plugins/v2/postgres@nas")).json()
    assert same == created, "the same shape as GET /api/plugins/v2/{id}"
    async with app.state.db.session() as session:
        row = await session.get(Plugin, "postgres@nas")
        assert row is not None
        assert (row.host_id, row.plugin_type) == ("nas", "postgres")
        assert "s3cret" not in str(row.config), "a typed secret is sealed at rest"
    again = await client.post("/api/hosts/nas/plugins", json=body)
    assert "already runs" in error_of(again, 409)["message"]
    # The existing plugin routes work for the instance.
    changed = await client.patch("/api/plugins/v2/postgres@nas/config", json={"port": 6543})
    assert changed.status_code == 200, changed.text
    assert changed.json()["config"]["port"] == 6543
    assert changed.json()["config"]["password"] == "********", "the sealed secret still opens"
    assert (await client.post("/api/plugins/v2/postgres@nas/disable")).json()["enabled"] is False
    assert (await client.post("/api/plugins/v2/postgres@nas/enable")).json()["enabled"] is True
    assert (await client.delete("/api/plugins/v2/postgres@nas")).status_code == 204
    assert error_of(await client.get("/api/plugins/v2/postgres@nas"), 404)
    assert error_of(await client.delete("/api/plugins/v2/postgres@nas"), 404)
    assert (
        "disable it instead"
        in error_of(await client.delete("/api/plugins/v2/counter"), 409)["message"]
    )


async def test_bad_additions_are_refused_and_write_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await add_agent_host(app.state.db, "nas")
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("nope", {"plugin": "system-info"}, 404, "no host with id 'nope'"),
        ("nas", {"plugin": "no-such-plugin"}, 422, "no catalogue plugin"),
        ("nas", {"plugin": "postgres", "config": {"port": "x"}}, 422, "invalid config"),
        ("nas", {"plugin": "postgres", "config": {"port": 0}}, 422, "invalid config"),
        (
            "nas",
            {"plugin": "postgres", "config": {"password": {"$credential": "ghost"}}},
            422,
            "invalid config",
        ),
        ("nas", {"plugin": "ss", "config": {"targets": ["nas-ssh"]}}, 422, "targets"),
        ("nas", {"plugin": "system-info", "interval": -1}, 422, "not valid"),
        ("nas", {"plugin": "system-info", "extra": 1}, 422, "not valid"),
        ("nas", {"plugin": "Bad Id"}, 422, "not valid"),
    ]
    for host, body, status, words in cases:
        answer = await client.post(f"/api/hosts/{host}/plugins", json=body)
        assert words in error_of(answer, status)["message"], (body, answer.text)
    refused = await client.post(
        "/api/hosts/nas/plugins", json={"plugin": "postgres", "config": {"port": 0}}
    )
    assert [d["loc"] for d in error_of(refused, 422)["details"]] == [["port"]]
    not_json = await client.post(
        "/api/hosts/nas/plugins", content=b"{", headers={"content-type": "application/json"}
    )
    assert error_of(not_json, 422)
    async with app.state.db.session() as session:
        count = await session.scalar(select(func.count()).where(Plugin.host_id.is_not(None)))
    assert count == 0


async def test_adding_to_the_hub_host_configures_and_enables_its_plugin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await client.post(
        f"/api/hosts/{HUB}/plugins", json={"plugin": "configured", "config": {"url": "http://a"}}
    )
    assert made.status_code == 201, made.text
    assert made.json()["id"] == "configured"
    assert made.json()["enabled"] is True
    assert made.json()["config"]["url"] == "http://a"
    same = await client.post(
        f"/api/hosts/{HUB}/plugins", json={"plugin": "configured", "config": {"url": "http://a"}}
    )
    assert same.status_code == 201, "the same config again changes nothing"
    other = await client.post(
        f"/api/hosts/{HUB}/plugins", json={"plugin": "configured", "config": {"url": "http://b"}}
    )
    assert "already enabled on the hub with another config" in error_of(other, 409)["message"]
    missing = await client.post(f"/api/hosts/{HUB}/plugins", json={"plugin": "system-info"})
    assert "has no plugin 'system-info' loaded" in error_of(missing, 422)["message"]


async def test_accepting_on_an_agent_host_with_a_credential(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    await add_agent_host(app.state.db, "nas")
    await add_agent_host(app.state.db, "pi")
    stored = await client.post(
        "/api/credentials", json={"kind": "password", "name": "pg-monitor", "password": "pw"}
    )
    assert stored.status_code == 201, stored.text
    proposal = await add_proposal(
        app.state.db,
        "nas",
        "postgres:5432",
        "postgres",
        config={"host": "127.0.0.1", "port": 5432},
        credential="password",
    )
    plain = await add_proposal(app.state.db, "nas", "redis:6379", "redis")
    url = f"/api/hosts/nas/proposals/{proposal}/accept"
    assert error_of(await client.post(f"/api/hosts/pi/proposals/{proposal}/accept"), 404)
    assert error_of(await client.post("/api/hosts/nas/proposals/999999/accept"), 404)
    assert error_of(await reader.post(url, json={}), 403)
    ghost = await client.post(url, json={"credential": "ghost"})
    assert "no credential named 'ghost'" in str(error_of(ghost, 422)["details"])
    needless = await client.post(
        f"/api/hosts/nas/proposals/{plain}/accept", json={"credential": "pg-monitor"}
    )
    assert "needs no credential" in error_of(needless, 422)["message"]
    accepted = await client.post(url, json={"credential": "pg-monitor", "config": {"port": 5433}})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() == {"plugin_id": "postgres@nas"}
    async with app.state.db.session() as session:
        row = await session.get(Plugin, "postgres@nas")
        assert row is not None
        assert row.config == {
            "host": "127.0.0.1",
            "port": 5433,
            "password": {"$credential": "pg-monitor"},
        }
        decided = await session.get(DiscoveryProposal, proposal)
        assert decided is not None
        assert (decided.status, decided.plugin_id) == ("accepted", "postgres@nas")
        assert decided.decided_at is not None
    assert "already accepted" in error_of(await client.post(url), 409)["message"]
    # Accepting with no body at all takes the suggested config as it is.
    redis = await client.post(f"/api/hosts/nas/proposals/{plain}/accept")
    assert redis.status_code == 201, redis.text
    assert redis.json()["plugin_id"] == "redis@nas"


async def test_accepting_on_the_hub_host_enables_its_plugin(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    first = await add_proposal(
        app.state.db, HUB, "svc:8080", "configured", config={"url": "http://127.0.0.1:8080"}
    )
    second = await add_proposal(
        app.state.db, HUB, "svc:9090", "configured", config={"url": "http://127.0.0.1:9090"}
    )
    accepted = await client.post(f"/api/hosts/{HUB}/proposals/{first}/accept")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() == {"plugin_id": "configured"}
    manager = app.state.manager
    assert manager.plugins["configured"].enabled
    assert manager.plugins["configured"].config.stored["url"] == "http://127.0.0.1:8080"
    conflict = await client.post(f"/api/hosts/{HUB}/proposals/{second}/accept")
    assert "another config" in error_of(conflict, 409)["message"]
    opened = (await client.get(f"/api/hosts/{HUB}/proposals", params={"status": "open"})).json()
    assert [p["id"] for p in opened] == [second], "the refused one stays open"


async def test_dismissed_proposals_stay_dismissed(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_agent_host(app.state.db, "nas")
    proposal = await add_proposal(app.state.db, "nas", "mqtt:1883", "mqtt-broker")
    url = f"/api/hosts/nas/proposals/{proposal}/dismiss"
    dismissed = await client.post(url)
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "dismissed"
    assert dismissed.json()["decided_at"] is not None
    assert (await client.post(url)).json()["status"] == "dismissed", "again: no change"
    listed = (await client.get("/api/hosts/nas/proposals", params={"status": "dismissed"})).json()
    assert [p["id"] for p in listed] == [proposal]
    assert (await client.get("/api/hosts/nas")).json()["open_proposals"] == 0
    accepted = await add_proposal(app.state.db, "nas", "x:1", "redis", status="accepted")
    refused = await client.post(f"/api/hosts/nas/proposals/{accepted}/dismiss")
    assert "remove that plugin instead" in error_of(refused, 409)["message"]
    assert error_of(await client.post("/api/hosts/nas/proposals/424242/dismiss"), 404)


async def test_removing_a_host_revokes_its_agent_and_deletes_its_plugins(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _nas(app)
    await add_agent_host(app.state.db, "pi")
    await add_instance(app.state.db, "system-info", "pi")
    assert (await client.delete("/api/hosts/nas")).status_code == 204
    async with app.state.db.session() as session:
        assert await session.get(Host, "nas") is None
        for model, column in [
            (Plugin, Plugin.host_id),
            (AgentKey, AgentKey.host_id),
            (DiscoveryProposal, DiscoveryProposal.host_id),
        ]:
            query = select(func.count()).select_from(model).where(column == "nas")
            left = await session.scalar(query)
            assert left == 0, model
        for model in (PluginMetric, LatestMetric):
            rows = await session.scalar(
                select(func.count()).select_from(model).where(model.plugin_id.like("%@nas"))
            )
            assert rows == 0, model
        assert await session.get(Plugin, "system-info@pi") is not None, "other hosts stay"
        assert await session.get(AgentKey, "kpi") is not None
    assert error_of(await client.delete("/api/hosts/nas"), 404)
    assert "cannot be removed" in error_of(await client.delete(f"/api/hosts/{HUB}"), 409)["message"]
    assert [h["id"] for h in (await client.get("/api/hosts")).json()] == [HUB, "pi"]


async def test_the_hub_host_row_follows_the_settings(app: FastAPI) -> None:
    async with app.state.db.session() as session:
        row = await session.get(Host, HUB)
        assert row is not None
        assert (row.kind, row.hostname) == ("hub", HUB)
        assert row.platform["hostname"] == HUB
        assert row.platform["memory_bytes"] > 0
