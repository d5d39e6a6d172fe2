"""The alerts pages, the top bar's firing count and the rules on a plugin page."""

from __future__ import annotations

import html as html_module
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from tests.alerts.support import ProbePlugin, enable
from tests.web.conftest import login
from unity.plugins.observe import RunObserved
from unity.storage.metrics import MetricSample, insert_samples
from unity.storage.types import utcnow
from unity_sdk import PluginState, RunStatus


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ProbePlugin]


async def _session(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        assert (await login(client, token)).status_code == 303
        yield client


@pytest.fixture
async def admin_page(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _session(app, admin_token):
        yield client


@pytest.fixture
async def read_page(app: FastAPI, read_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _session(app, read_token):
        yield client


async def _fire(app: FastAPI) -> None:
    await enable(app)
    doc = {"load": 99.0, "disks": {"sda": {"percent": 97.0}}}
    event = RunObserved("probe", utcnow(), RunStatus.SUCCESS, PluginState.HEALTHY, [("web1", doc)])
    await app.state.alerts.observe(event)


async def test_alerts_page_firing_first_then_pending_then_history(
    app: FastAPI, admin_page: httpx.AsyncClient
) -> None:
    quiet = (await admin_page.get("/alerts")).text
    assert 'data-alerts-firing="0"' in quiet
    assert "Nothing is firing." in quiet
    await _fire(app)
    page = (await admin_page.get("/alerts")).text
    assert 'data-alerts-firing="1"' in page
    firing, pending, history = (
        page.index("firing-title"),
        page.index("pending-title"),
        page.index("history-title"),
    )
    assert firing < page.index("load on web1 is 99% (limit 90%)") < pending
    assert pending < page.index('data-state="pending"') < history
    assert page.count("inactive →") == 2
    assert "Acknowledge</button>" in page


async def test_read_session_sees_alerts_but_cannot_act(
    app: FastAPI, read_page: httpx.AsyncClient
) -> None:
    await _fire(app)
    page = (await read_page.get("/alerts")).text
    assert "load on web1" in page
    assert "Acknowledge</button>" not in page
    silences = (await read_page.get("/alerts/silences")).text
    assert "Add silence" not in silences


async def test_plugin_page_lists_its_rules_with_their_state(
    app: FastAPI, admin_page: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await _fire(app)
    off = {"enabled": False}
    assert (
        await client.put("/api/alerts/rules/probe/silent/override", json=off)
    ).status_code == 200
    page = (await admin_page.get("/plugins/probe")).text
    rules = page[page.index("data-alert-rules") : page.index("config-title")]
    assert 'data-rule="load-high"' in rules
    assert "load &gt; 90%, clears past 80%" in rules
    assert "1 firing" in rules
    silent = rules[rules.index('data-rule="silent"') :]
    assert "Switch on" in silent.split("</tr>")[0]


async def test_silences_page_lists_silences_and_windows(
    admin_page: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    body = {"matchers": {"host": "nas"}, "duration_seconds": 600, "comment": "moving it"}
    assert (await client.post("/api/alerts/silences", json=body)).status_code == 201
    window = {"host": "db9", "duration_seconds": 600, "comment": "upgrade"}
    assert (await client.post("/api/alerts/maintenance", json=window)).status_code == 201
    page = (await admin_page.get("/alerts/silences")).text
    assert "<code>host=nas</code>" in page
    assert "moving it" in page
    assert "upgrade" in page
    assert 'name="matchers.host"' in page


def _attribute(html: str, marker: str, name: str) -> str:
    tag = html[html.index(marker) :]
    tag = tag[: tag.index(">")]
    found = re.search(rf"{name}='([^']*)'|{name}=\"([^\"]*)\"", tag)
    assert found is not None, (name, tag)
    return html_module.unescape(found.group(1) or found.group(2))


async def test_plugin_page_gives_each_chart_its_thresholds(
    app: FastAPI, admin_page: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    page = (await admin_page.get("/plugins/probe")).text
    load = json.loads(_attribute(page, 'data-field="load"', "data-thresholds"))
    assert load == [
        {"rule": "load-high", "severity": "critical", "op": ">", "value": 90.0, "clear": 80.0}
    ]
    rules = page[page.index('data-field="load"') : page.index('data-field="disks.*.percent"')]
    assert "<code>load-high</code> &gt; 90.0%" in rules
    # A limit read from another metric (the sensor's own high mark) is no fixed line.
    assert json.loads(_attribute(page, 'data-field="disks.*.celsius"', "data-thresholds")) == []
    # Switched off: no line.
    off = {"enabled": False}
    assert (
        await client.put("/api/alerts/rules/probe/load-high/override", json=off)
    ).status_code == 200
    page = (await admin_page.get("/plugins/probe")).text
    assert json.loads(_attribute(page, 'data-field="load"', "data-thresholds")) == []


async def test_a_notification_link_centres_the_charts_on_its_time(
    app: FastAPI, admin_page: httpx.AsyncClient
) -> None:
    at = datetime(2026, 11, 30, 21, 15, tzinfo=UTC)
    async with app.state.db.session() as session:
        for host in ("web1", "web2"):
            await insert_samples(session, [MetricSample("probe", host, at, {"load": 5.0})])
    link = f"/plugins/probe?{urlencode({'host': 'web2', 'at': at.isoformat()})}"
    page = (await admin_page.get(link)).text
    assert _attribute(page, "data-chart-controls", "data-at") == "2026-11-30T21:15:00+00:00"
    assert '<option value="web2" selected>' in page
    assert '<option value="web1">' in page
    # Another zone, a '+' decoded to a space, no zone at all: the same instant, in UTC.
    for given in ("2026-11-30T22:15:00+01:00", "2026-11-30T21:15:00 00:00", "2026-11-30T21:15"):
        page = (await admin_page.get(f"/plugins/probe?{urlencode({'at': given})}")).text
        assert _attribute(page, "data-chart-controls", "data-at") == at.isoformat(), given
    for nonsense in ("yesterday", "9999-12-31T23:30:00-05:00"):
        page = (await admin_page.get(f"/plugins/probe?{urlencode({'at': nonsense})}")).text
        controls = page[page.index("data-chart-controls") :]
        assert "data-at" not in controls[: controls.index(">")], nonsense
