"""``unity hosts`` and ``unity discover`` against a real hub served on loopback,
with agent hosts written through storage as the agent protocol leaves them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.cli.conftest import Hub, Invoke
from tests.support import sample_plugins
from tests.support.hosts import (
    add_agent_host,
    add_documents,
    add_instance,
    add_proposal,
    disk_document,
    system_document,
)
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import DiscoveryProposal, EnrollmentToken, Plugin


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [sample_plugins.CounterPlugin]


def _store(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        db = Database(settings.effective_database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def admin(hub: Hub, *args: str) -> list[str]:
    return ["--url", hub.url, "--token", hub.admin_token, *args]


def reader(hub: Hub, *args: str) -> list[str]:
    return ["--url", hub.url, "--token", hub.read_token, *args]


async def _nas(db: Database) -> int:
    await add_agent_host(db, "nas", status={"buffered": 2, "dropped": 0})
    system = await add_instance(db, "system-info", "nas")
    disk = await add_instance(db, "disk-monitor", "nas")
    await add_documents(db, system, "nas.lan", [system_document(37.0, 52.0)])
    await add_documents(db, disk, "nas.lan", [disk_document(61.0, 20.0)])
    return await add_proposal(
        db, "nas", "postgres:5432", "postgres", config={"port": 5432}, credential="password"
    )


def test_hosts_list_and_show(cli: Invoke, hub: Hub, settings: Settings) -> None:
    _store(settings, _nas)
    listed = cli(*reader(hub, "hosts", "list"))
    assert listed.exit_code == 0, listed.output
    rows = [
        line.split()
        for line in listed.output.splitlines()
        if line.split()[:1] in (["test-host"], ["nas"])
    ]
    assert [row[0] for row in rows] == ["test-host", "nas"], listed.output
    assert rows[1][2:7] == ["agent", "healthy", "37%", "52%", "61%"], listed.output
    as_json = json.loads(cli(*reader(hub, "hosts", "list", "--json")).output)
    assert [h["id"] for h in as_json] == ["test-host", "nas"]
    shown = cli(*reader(hub, "hosts", "show", "nas"))
    assert shown.exit_code == 0, shown.output
    assert "system-info@nas" in shown.output
    assert "2 buffered, 0 dropped" in shown.output
    assert re.search(r"postgres found \(postgres:5432\)\s+password\s+open", shown.output)
    missing = cli(*reader(hub, "hosts", "show", "nope"))
    assert missing.exit_code == 1
    assert "no host with id 'nope'" in missing.output


def test_add_plugin_validates_and_creates_the_instance(
    cli: Invoke, hub: Hub, settings: Settings
) -> None:
    _store(settings, lambda db: add_agent_host(db, "nas"))
    bad = cli(*admin(hub, "hosts", "add-plugin", "nas", "postgres", "--set", "port=0"))
    assert bad.exit_code == 1
    assert "port:" in bad.output
    not_json = cli(*admin(hub, "hosts", "add-plugin", "nas", "postgres", "--config", "{"))
    assert not_json.exit_code == 2
    refused = cli(*reader(hub, "hosts", "add-plugin", "nas", "postgres"))
    assert refused.exit_code == 1
    assert "admin token" in refused.output
    made = cli(
        *admin(
            hub, "hosts", "add-plugin", "nas", "postgres", "--config", '{"port": 5433}',
            "--set", "database=app", "--interval", "30",
        )
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "postgres@nas added on nas" in made.output

    async def stored(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            row = await session.get(Plugin, "postgres@nas")
            assert row is not None
            return dict(row.config)

    assert _store(settings, stored) == {"port": 5433, "database": "app", "interval": 30.0}
    again = cli(*admin(hub, "hosts", "add-plugin", "nas", "postgres"))
    assert again.exit_code == 1
    assert "already runs" in again.output


def test_discover_accept_and_dismiss(cli: Invoke, hub: Hub, settings: Settings) -> None:
    proposal = _store(settings, _nas)
    other = _store(settings, lambda db: add_proposal(db, "nas", "redis:6379", "redis"))
    stored = httpx.post(
        f"{hub.url}/api/credentials",
        json={"kind": "password", "name": "pg-monitor", "password": "pw"},
        headers={"Authorization": f"Bearer {hub.admin_token}"},
    )
    assert stored.status_code == 201, stored.text
    listed = cli(*reader(hub, "discover", "list"))
    assert listed.exit_code == 0, listed.output
    assert re.search(rf"nas\s+{proposal}\s+postgres", listed.output), listed.output
    none = cli(*reader(hub, "discover", "list", "test-host"))
    assert none.stdout.strip() == ""
    assert "No open proposals." in none.output
    accepted = cli(
        *admin(
            hub, "discover", "accept", "nas", str(proposal),
            "--credential", "pg-monitor", "--set", "port=5433",
        )
    )  # fmt: skip
    assert accepted.exit_code == 0, accepted.output
    assert "Accepted: postgres@nas runs on nas" in accepted.output
    again = cli(*admin(hub, "discover", "accept", "nas", str(proposal)))
    assert again.exit_code == 1
    assert "already accepted" in again.output
    dismissed = cli(*admin(hub, "discover", "dismiss", "nas", str(other)))
    assert dismissed.exit_code == 0, dismissed.output
    assert "Dismissed proposal" in dismissed.output
    open_now = json.loads(cli(*reader(hub, "discover", "list", "nas", "--json")).output)
    assert open_now == []
    every = json.loads(cli(*reader(hub, "discover", "list", "nas", "--all", "--json")).output)
    assert {p["key"]: p["status"] for p in every} == {
        "postgres:5432": "accepted",
        "redis:6379": "dismissed",
    }

    async def config(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            row = await session.get(Plugin, "postgres@nas")
            assert row is not None
            return dict(row.config)

    assert _store(settings, config) == {"port": 5433, "password": {"$credential": "pg-monitor"}}


def test_remove_asks_then_revokes(cli: Invoke, hub: Hub, settings: Settings) -> None:
    _store(settings, _nas)
    removed = cli(*admin(hub, "hosts", "remove", "nas", "--yes"))
    assert removed.exit_code == 0, removed.output

    async def left(db: Database) -> list[Any]:
        async with db.session() as session:
            proposals = (await session.scalars(select(DiscoveryProposal.id))).all()
            instances = (
                await session.scalars(select(Plugin.id).where(Plugin.host_id == "nas"))
            ).all()
            return [*proposals, *instances]

    assert _store(settings, left) == []
    own = cli(*admin(hub, "hosts", "remove", "test-host", "--yes"))
    assert own.exit_code == 1
    assert "cannot be removed" in own.output


def test_join_command_prints_the_exact_line(cli: Invoke, hub: Hub, settings: Settings) -> None:
    made = cli(*admin(hub, "hosts", "join-command", "--uses", "3"))
    assert made.exit_code == 0, made.output
    line = made.stdout.strip()
    found = re.fullmatch(rf"unity-agent join {re.escape(hub.url)} (unitye_\S+)", line)
    assert found is not None, made.stdout

    async def tokens(db: Database) -> list[tuple[str, int | None]]:
        async with db.session() as session:
            rows = (await session.scalars(select(EnrollmentToken))).all()
            return [(row.name, row.max_uses) for row in rows]

    assert _store(settings, tokens) == [("agent join", 3)]
    public = cli(*admin(hub, "hosts", "join-command", "--hub-url", "https://unity.lan/"))
    assert public.stdout.startswith("unity-agent join https://unity.lan unitye_")
