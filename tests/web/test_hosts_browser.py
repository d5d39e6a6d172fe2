"""Hosts in a real Chromium against a real `unity serve`: the overview with the hub
and two agents' hosts, accepting and dismissing proposals, adding a plugin, the
join command. The agents' hosts are written into the hub's database as the agent
protocol leaves them."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import update

from tests.support.hosts import (
    add_agent_host,
    add_documents,
    add_instance,
    add_proposal,
    disk_document,
    system_document,
)
from tests.support.processes import Hub, wait_until
from tests.web.conftest import SCREENSHOTS, screenshot
from unity.storage.db import Database
from unity.storage.models import Host
from unity.storage.types import utcnow

pytestmark = pytest.mark.e2e
T = TypeVar("T")

# The look of the overview with several hosts, for people to check.
OVERVIEW_SHOT = Path(__file__).resolve().parents[3] / "hub-hosts-shot.png"


async def _agents(url: str) -> dict[str, int]:
    """Two agents' hosts with an hour of documents, a third one gone quiet."""
    db = Database(url)
    try:
        await add_agent_host(db, "nas", hostname="nas.lan", status={"buffered": 0})
        system = await add_instance(db, "system-info", "nas")
        disk = await add_instance(db, "disk-monitor", "nas")
        await add_instance(db, "docker", "nas", state="degraded", message="2 containers restarting")
        load = [system_document(20 + (i * 7) % 30, 55 + i % 5) for i in range(60)]
        await add_documents(db, system, "nas.lan", load)
        await add_documents(
            db, disk, "nas.lan", [disk_document(62.0 + i / 30, 81.0) for i in range(60)]
        )
        await add_agent_host(db, "pi", hostname="pi.lan", status={"buffered": 12, "dropped": 3})
        pi = await add_instance(db, "system-info", "pi")
        await add_documents(db, pi, "pi.lan", [system_document(5 + i % 3, 31) for i in range(60)])
        await add_agent_host(db, "vps", hostname="vps.example")
        gone = await add_instance(db, "system-info", "vps")
        await add_documents(db, gone, "vps.example", [system_document(3, 18)])
        postgres = await add_proposal(
            db, "nas", "postgres:5432", "postgres", title="PostgreSQL on port 5432",
            config={"port": 5432}, credential="password",
        )  # fmt: skip
        redis = await add_proposal(db, "nas", "redis:6379", "redis", title="Redis on port 6379")
        return {"postgres": postgres, "redis": redis}
    finally:
        await db.dispose()


async def _age(url: str, host_id: str) -> None:

    db = Database(url)
    try:
        async with db.session() as session:
            await session.execute(
                update(Host)
                .where(Host.id == host_id)
                .values(last_seen_at=utcnow() - timedelta(hours=2))
            )
    finally:
        await db.dispose()


def _fits_a_phone(page: Any, name: str) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    screenshot(page, name)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert width <= 375, f"{name}: the page is {width} px wide"


def _in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to the end on its own event loop (Playwright's owns this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def test_hosts_in_the_browser(hub: Hub, browser_context: Callable[..., Any]) -> None:
    url = f"sqlite+aiosqlite:///{hub.env['UNITY_DATA_DIR']}/unity.db"
    proposals = _in_thread(_agents(url))
    _in_thread(_age(url, "vps"))
    with hub.client() as api:
        for plugin in ("system-info", "disk-monitor"):
            assert api.put(f"/api/plugins/v2/{plugin}/config", json={"interval": 2}).is_success
            assert api.post(f"/api/plugins/v2/{plugin}/enable").is_success
        stored = api.post(
            "/api/credentials", json={"kind": "password", "name": "pg-monitor", "password": "pw"}
        )
        assert stored.status_code == 201, stored.text

    page = browser_context().new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{hub.url}/")
    page.fill("#token", hub.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/")

    # The overview: the hub first, then the agents' hosts, each with its numbers.
    cards = page.locator("article.host")
    page.locator("article.host[data-host=web-host] [data-metric=cpu] .meter-value").wait_for()
    wait_until(lambda: cards.count() == 4)
    assert [cards.nth(i).get_attribute("data-host") for i in range(4)] == [
        "web-host", "nas", "pi", "vps",
    ]  # fmt: skip
    nas = page.locator("article.host[data-host=nas]")
    assert nas.locator("[data-metric=disk] .meter-value").inner_text() == "64.0%"
    assert nas.locator("[data-state-of='host nas.lan']").get_attribute("data-state") == "degraded"
    assert nas.locator(".proposals-chip").inner_text() == "2 proposals"
    assert nas.locator(".spark polyline").count() >= 3
    vps = page.locator("article.host[data-host=vps]")
    assert vps.locator(".badge").first.inner_text().lower() == "stale"
    page.locator("article.host[data-host=web-host] .spark polyline").first.wait_for(
        state="attached"
    )
    screenshot(page, "hosts-overview-desktop")
    shutil.copyfile(SCREENSHOTS / "hosts-overview-desktop.png", OVERVIEW_SHOT)
    _fits_a_phone(page, "hosts-overview-375")

    # The host page: accept a proposal with a stored credential, dismiss another.
    nas.locator("h3 a").click()
    page.wait_for_url(f"{hub.url}/hosts/nas")
    proposal = page.locator(f"[data-key=proposal-{proposals['postgres']}]")
    proposal.locator("select[name=credential]").select_option("pg-monitor")
    proposal.locator("button[type=submit]").click()
    page.locator("[data-key='instance-postgres@nas']").wait_for()
    page.locator(f"[data-key=proposal-{proposals['redis']}] [data-api$=dismiss]").click()
    page.locator("details.decided summary", has_text="2 decided").wait_for()
    with hub.client() as api:
        config = api.get("/api/plugins/v2/postgres@nas/config").json()["config"]
        assert config["password"] == {"$credential": "pg-monitor"}
        statuses = {p["key"]: p["status"] for p in api.get("/api/hosts/nas/proposals").json()}
        assert statuses == {"postgres:5432": "accepted", "redis:6379": "dismissed"}

    # Add a plugin: a bad config is shown next to its field, a good one is added.
    page.select_option("#add-plugin", "process-monitor")
    page.fill("#add-config", '{"top_n": "many"}')
    page.click("form[data-api-form$='/plugins'] button[type=submit]")
    error = page.locator("form[data-api-form$='/plugins'] [data-form-error]")
    error.wait_for()
    assert "top_n" in error.inner_text()
    page.fill("#add-config", "")
    page.fill("#add-interval", "30")
    page.click("form[data-api-form$='/plugins'] button[type=submit]")
    page.locator("[data-key='instance-process-monitor@nas']").wait_for()
    screenshot(page, "host-page-desktop")
    _fits_a_phone(page, "host-page-375")

    # The instance's own plugin page works with its "@" id.
    page.click("[data-key='instance-postgres@nas'] th a")
    page.wait_for_url(re.compile(r".*/plugins/postgres(@|%40)nas$"))
    assert "PostgreSQL" in page.inner_text("h1")

    # The join command.
    page.goto(f"{hub.url}/")
    page.click("a[href='/join']")
    page.click("button[type=submit]:has-text('Make the command')")
    command = page.locator("[data-join-command]").inner_text()
    assert re.fullmatch(rf"unity-agent join {re.escape(hub.url)} unitye_\S+", command)
    assert problems == []
