"""The overview's host cards, the host page and the join page over ASGI, with agent
hosts written through storage (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.support import sample_plugins
from tests.support.hosts import (
    add_agent_host,
    add_documents,
    add_instance,
    add_proposal,
    disk_document,
    system_document,
)
from tests.web.conftest import csrf_of, login
from unity.storage.models import EnrollmentToken
from unity.storage.types import utcnow


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [sample_plugins.CounterPlugin]


async def _client(app: FastAPI, token: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")
    assert (await login(client, token)).status_code == 303
    return client


@pytest.fixture
async def admin(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    client = await _client(app, admin_token)
    yield client
    await client.aclose()


@pytest.fixture
async def reading(app: FastAPI, read_token: str) -> AsyncIterator[httpx.AsyncClient]:
    client = await _client(app, read_token)
    yield client
    await client.aclose()


async def _hosts(app: FastAPI) -> int:
    db = app.state.db
    await add_agent_host(db, "nas", status={"buffered": 4, "dropped": 2})
    system = await add_instance(db, "system-info", "nas")
    disk = await add_instance(db, "disk-monitor", "nas")
    await add_documents(db, system, "nas.lan", [system_document(21.0, 63.0)])
    await add_documents(db, disk, "nas.lan", [disk_document(47.0, 12.0)])
    await add_agent_host(db, "pi", last_seen_at=utcnow() - timedelta(hours=1))
    await add_instance(db, "system-info", "pi")
    await add_proposal(db, "nas", "redis:6379", "redis")
    return await add_proposal(
        db, "nas", "postgres:5432", "postgres", title="PostgreSQL on port 5432",
        config={"port": 5432}, credential="password",
    )  # fmt: skip


async def test_the_overview_shows_every_host_the_hub_first(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    await _hosts(app)
    page = (await admin.get("/")).text
    keys = re.findall(r'data-key="host-([^"]+)"', page)
    assert keys == ["test-host", "nas", "pi"]
    nas = page[page.index('data-key="host-nas"') : page.index('data-key="host-pi"')]
    assert {
        host: state
        for state, host in re.findall(r'host-state-(\w+)" data-key="host-([^"]+)"', page)
    } == {"test-host": "healthy", "nas": "healthy", "pi": "stale"}
    assert 'href="/hosts/nas"' in nas
    assert "21.0%" in nas
    assert "63.0%" in nas
    assert 'value="47.0"' in nas, "the root filesystem"
    assert 'href="/plugins/system-info@nas"' in nas
    assert 'data-open-proposals="2"' in nas
    assert "4 buffered" in nas
    assert "2 dropped" in nas
    assert "Debian GNU/Linux 12 (bookworm)" in nas
    pi = page[page.index('data-key="host-pi"') :]
    assert 'data-state="stale"' in pi.split("</article>")[0]
    assert 'href="/join"' in page, "admins get the way to add a host"


async def test_the_plugin_pages_work_for_instance_ids(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    await _hosts(app)
    for path in [
        "/plugins/system-info@nas",
        "/live/plugins/system-info@nas",
        "/live/plugins/system-info@nas/history",
        "/plugins/system-info%40nas",
    ]:
        answer = await admin.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
    assert "system-info@nas" in (await admin.get("/plugins/system-info@nas")).text
    external = (await admin.get("/external")).text
    assert "system-info@nas" not in external, "instances belong to their host's page"


async def test_the_host_page_for_admins_and_readers(
    app: FastAPI, admin: httpx.AsyncClient, reading: httpx.AsyncClient
) -> None:
    proposal = await _hosts(app)
    stored = await admin.post(
        "/api/credentials",
        json={"kind": "password", "name": "pg-monitor", "password": "pw"},
        headers={"X-CSRF-Token": csrf_of((await admin.get("/")).text)},
    )
    assert stored.status_code == 201, stored.text
    page = (await admin.get("/hosts/nas")).text
    assert 'data-key="instance-system-info@nas"' in page
    assert 'data-key="instance-disk-monitor@nas"' in page
    assert 'data-api-form="POST /api/hosts/nas/plugins"' in page
    picker = page[
        page.index('id="add-plugin"') : page.index("</select>", page.index('id="add-plugin"'))
    ]
    assert 'value="postgres"' in picker
    assert 'value="system-info"' not in picker, "already on the host"
    accept = f'data-api-form="POST /api/hosts/nas/proposals/{proposal}/accept"'
    assert accept in page
    form = page[page.index(accept) : page.index("</form>", page.index(accept))]
    assert 'name="credential"' in form
    assert '<option value="pg-monitor">' in form, "the stored credentials to pick from"
    assert f'data-api="POST /api/hosts/nas/proposals/{proposal}/dismiss"' in form
    assert 'data-api="DELETE /api/hosts/nas"' in page
    assert 'data-api="DELETE /api/plugins/v2/system-info@nas"' in page
    read = (await reading.get("/hosts/nas")).text
    assert "PostgreSQL on port 5432" in read
    assert "data-api-form" not in read, "nothing to change for a read-only session"
    hub = (await admin.get("/hosts/test-host")).text
    assert "The hub&#39;s own machine" in hub
    assert 'data-api="DELETE /api/hosts/test-host"' not in hub
    missing = await admin.get("/hosts/nope")
    assert missing.status_code == 404
    assert "no host with id" in missing.text


async def test_the_join_page_makes_a_token_and_shows_the_command(
    app: FastAPI, admin: httpx.AsyncClient, reading: httpx.AsyncClient
) -> None:
    form = await admin.get("/join")
    assert form.status_code == 200
    csrf = csrf_of(form.text)
    assert (await reading.get("/join")).status_code == 403
    refused = await admin.post("/join", data={"csrf": "0" * 43, "uses": "2"})
    assert refused.status_code == 403
    elsewhere = await admin.post(
        "/join", data={"csrf": csrf, "uses": "2"}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    made = await admin.post("/join", data={"csrf": csrf, "uses": "2", "hours": "12"})
    assert made.status_code == 200, made.text
    command = re.search(r"data-join-command>([^<]+)<", made.text)
    assert command is not None
    assert re.fullmatch(r"unity-agent join http://hub unitye_\S+", command.group(1))
    assert made.headers["cache-control"] == "no-store"
    async with app.state.db.session() as session:
        rows = (await session.scalars(select(EnrollmentToken))).all()
    assert [(r.name, r.max_uses) for r in rows] == [("agent join", 2)]
    assert (await reading.post("/join", data={"csrf": csrf})).status_code == 403
