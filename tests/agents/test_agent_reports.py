"""An agent's own reports: its status on the host row, discovery's proposals (new,
seen again, dismissed, gone), and every call as a sign of life of its host."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.agents.support import AGENTS, auth, joined, platform
from tests.api.helpers import error_of
from unity.plugins import agents
from unity.storage.models import DiscoveryProposal, Host

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def proposal(key: str, plugin: str = "postgres", **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "plugin": plugin,
        "title": f"{plugin} at {key}",
        "reason": "a process listens there",
        "config": {"port": int(key.rsplit(":", 1)[1])},
        **extra,
    }


async def report(anon: httpx.AsyncClient, key: str, *proposals: dict[str, Any]) -> httpx.Response:
    return await anon.put(
        f"{AGENTS}/proposals", json={"proposals": list(proposals)}, headers=auth(key)
    )


async def statuses(app: FastAPI, host_id: str) -> dict[str, str]:
    async with app.state.db.session() as session:
        rows = await session.scalars(
            select(DiscoveryProposal).where(DiscoveryProposal.host_id == host_id)
        )
        return {row.key: row.status for row in rows}


async def decide(app: FastAPI, host_id: str, key: str, status: str) -> None:
    """What the hosts API's accept/dismiss leave on the row."""
    async with app.state.db.session() as session:
        row = (
            await session.scalars(
                select(DiscoveryProposal).where(
                    DiscoveryProposal.host_id == host_id, DiscoveryProposal.key == key
                )
            )
        ).one()
        row.status = status
        row.decided_at = datetime.now(UTC)


async def test_status_is_kept_on_the_host(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    started = datetime.now(UTC) - timedelta(minutes=5)
    body = {
        "platform": {**platform("nas"), "agent_version": "0.2.0"},
        "started_at": started.isoformat(),
        "buffered": 12,
        "dropped": 3,
        "sent": 400,
        "problems": {"gpu@nas": "nvidia-smi is not installed"},
    }
    answer = await anon.post(f"{AGENTS}/status", json=body, headers=auth(key))
    assert answer.status_code == 200, answer.text
    assert answer.json()["host_id"] == "nas"
    async with app.state.db.session() as session:
        host = await session.get(Host, "nas")
        assert host is not None
        assert host.platform["agent_version"] == "0.2.0"
        assert (host.status["buffered"], host.status["dropped"], host.status["sent"]) == (
            12,
            3,
            400,
        )
        assert host.status["problems"] == {"gpu@nas": "nvidia-smi is not installed"}
        assert datetime.fromisoformat(host.status["started_at"]) == started
    for bad in ({**body, "buffered": -1}, {**body, "started_at": "2026-01-01T00:00:00"}, {}):
        error_of(await anon.post(f"{AGENTS}/status", json=bad, headers=auth(key)), 422)


async def test_proposals_are_upserted_and_decisions_stay(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    first = await report(anon, key, proposal("pg:5432"), proposal("redis:6379", "redis"))
    assert first.status_code == 200, first.text
    assert first.json() == {"host_id": "nas", "open": 2}
    assert await statuses(app, "nas") == {"pg:5432": "open", "redis:6379": "open"}

    await decide(app, "nas", "pg:5432", "dismissed")
    again = await report(
        anon,
        key,
        proposal("pg:5432", title="renamed"),
        proposal("redis:6379", "redis", title="Redis 7"),
        proposal("mqtt:1883", "mqtt-broker"),
    )
    assert again.json()["open"] == 2
    assert await statuses(app, "nas") == {
        "pg:5432": "dismissed",
        "redis:6379": "open",
        "mqtt:1883": "open",
    }
    async with app.state.db.session() as session:
        rows = {
            r.key: r
            for r in await session.scalars(
                select(DiscoveryProposal).where(DiscoveryProposal.host_id == "nas")
            )
        }
    # Undecided: the new suggestion. Decided: as it was decided on, seen again.
    assert rows["redis:6379"].title == "Redis 7"
    assert rows["pg:5432"].title == "postgres at pg:5432"
    assert rows["pg:5432"].last_seen_at > rows["pg:5432"].first_seen_at

    # A scan without redis: it is gone; the dismissed one stays dismissed.
    await decide(app, "nas", "mqtt:1883", "accepted")
    gone = await report(anon, key)
    assert gone.json()["open"] == 0
    assert await statuses(app, "nas") == {
        "pg:5432": "dismissed",
        "redis:6379": "gone",
        "mqtt:1883": "accepted",
    }
    back = await report(anon, key, proposal("redis:6379", "redis"), proposal("pg:5432"))
    assert back.json()["open"] == 1
    assert (await statuses(app, "nas"))["redis:6379"] == "open"
    assert (await statuses(app, "nas"))["pg:5432"] == "dismissed"


async def test_each_host_has_its_own_proposals_and_a_bad_report_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    nas = await joined(client, anon, "nas")
    pi = await joined(client, anon, "pi")
    assert (await report(anon, nas, proposal("pg:5432"))).json()["open"] == 1
    assert (await report(anon, pi, proposal("pg:5432"), proposal("db:3306", "mysql"))).json()[
        "open"
    ] == 2
    assert (await report(anon, pi)).json()["open"] == 0
    assert await statuses(app, "nas") == {"pg:5432": "open"}

    twice = await report(anon, nas, proposal("pg:5432"), proposal("x:1"), proposal("pg:5432"))
    error = error_of(twice, 422)
    assert error["details"][0]["loc"] == ["proposals", 2, "key"]
    assert "'pg:5432'" in error["message"]
    bad_plugin = await report(anon, nas, proposal("x:1", "Not A Plugin"))
    error_of(bad_plugin, 422)
    too_many = await report(anon, nas, *(proposal(f"p:{i}") for i in range(501)))
    error_of(too_many, 422)
    assert await statuses(app, "nas") == {"pg:5432": "open"}
    error_of(await anon.put(f"{AGENTS}/proposals", json={"proposals": []}), 401)


async def _last_seen(app: FastAPI, host_id: str) -> datetime | None:
    async with app.state.db.session() as session:
        host = await session.get(Host, host_id)
        assert host is not None
        return host.last_seen_at


async def _forget_seen(app: FastAPI, host_id: str) -> None:
    async with app.state.db.session() as session:
        host = await session.get(Host, host_id)
        assert host is not None
        host.last_seen_at = LONG_AGO


async def test_every_agent_call_is_a_sign_of_life(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    key = await joined(client, anon, "nas")
    await _forget_seen(app, "nas")
    before = datetime.now(UTC)
    assert (await anon.get(f"{AGENTS}/assignments", headers=auth(key))).status_code == 200
    seen = await _last_seen(app, "nas")
    assert seen is not None
    assert seen >= before - timedelta(seconds=1)
    # Within the heartbeat period a call writes nothing more...
    await _forget_seen(app, "nas")
    assert (await anon.get(f"{AGENTS}/assignments", headers=auth(key))).status_code == 200
    assert await _last_seen(app, "nas") == LONG_AGO
    # ...except the status report, which is one.
    status = {"platform": platform("nas"), "started_at": before.isoformat()}
    assert (await anon.post(f"{AGENTS}/status", json=status, headers=auth(key))).status_code == 200
    seen = await _last_seen(app, "nas")
    assert seen is not None
    assert seen >= before - timedelta(seconds=1)


async def test_a_plugin_already_running_on_the_host_is_not_proposed(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    nas = await joined(client, anon, "nas")
    assert (await report(anon, nas, proposal("pg:5432"), proposal("m:1883", "mqtt-broker"))).json()[
        "open"
    ] == 2
    # The four host plugins run on every new host: proposing one of them is noise.
    answer = await report(anon, nas, proposal("pg:5432"), proposal("sys:1", "system-info"))
    assert answer.json()["open"] == 1
    assert await statuses(app, "nas") == {"pg:5432": "open", "m:1883": "gone"}
    # Once postgres runs there, its open proposal goes too; disabled, it is proposed again.
    added = await client.post("/api/hosts/nas/plugins", json={"plugin": "postgres"})
    assert added.status_code == 201, added.text
    assert (await report(anon, nas, proposal("pg:5432"))).json()["open"] == 0
    assert await statuses(app, "nas") == {"pg:5432": "gone", "m:1883": "gone"}
    assert (await client.post("/api/plugins/v2/postgres@nas/disable")).status_code == 200
    assert (await report(anon, nas, proposal("pg:5432"))).json()["open"] == 1


async def test_hosts_heard_from_in_one_period_are_written_together(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(agents, "HEARTBEAT_SECONDS", 0.5)
    nas, pi = await joined(client, anon, "nas"), await joined(client, anon, "pi")
    for host in ("nas", "pi"):
        await _forget_seen(app, host)
    assert (await anon.get(f"{AGENTS}/assignments", headers=auth(nas))).status_code == 200
    assert await _last_seen(app, "nas") != LONG_AGO
    # Within the period another host's call is kept in memory...
    called = datetime.now(UTC)
    assert (await anon.get(f"{AGENTS}/assignments", headers=auth(pi))).status_code == 200
    assert await _last_seen(app, "pi") == LONG_AGO
    # ...and written, with its own time, by the first call after it.
    await asyncio.sleep(0.6)
    assert (await anon.get(f"{AGENTS}/assignments", headers=auth(nas))).status_code == 200
    seen = await _last_seen(app, "pi")
    assert seen is not None
    assert called - timedelta(seconds=1) <= seen <= called + timedelta(seconds=0.5)
    later = await _last_seen(app, "nas")
    assert later is not None
    assert later > seen
