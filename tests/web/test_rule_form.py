"""The plugin page's "Add a rule" form: it offers the plugin's numeric metrics, and
what it sends is what the rules API takes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.alerts.support import ProbePlugin
from tests.web.conftest import login


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ProbePlugin]


@pytest.fixture
async def page(app: FastAPI, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        assert (await login(client, admin_token)).status_code == 303
        yield client


async def test_the_form_offers_numeric_metrics_and_its_body_adds_a_rule(
    page: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    html = (await page.get("/plugins/probe")).text
    form = html[html.index("data-add-rule") : html.index("</form>", html.index("data-add-rule"))]
    assert 'data-api-form="POST /api/alerts/rules"' in html
    offered = re.findall(r'<option value="([^"]+)">[^<]*</option>', form.split("rule-op")[0])
    assert offered
    metadata = (await client.get("/api/plugins/v2/probe")).json()["metadata"]
    numeric = [m["name"] for m in metadata["metrics"] if m["kind"] in ("gauge", "counter")]
    assert offered == numeric
    # What the form sends for: load > 80, critical, for 60 s.
    body = {
        "plugin_id": "probe",
        "id": "load-over-80",
        "metric": offered[0],
        "op": ">",
        "threshold": 80,
        "severity": "critical",
        "for_seconds": 60,
        "summary": "load on {host} is {value}",
    }
    added = await client.post("/api/alerts/rules", json=body)
    assert added.status_code == 201, added.text
    html = (await page.get("/plugins/probe")).text
    assert 'data-rule="load-over-80"' in html
    wrong = await client.post("/api/alerts/rules", json={**body, "id": "x2", "metric": "nope"})
    assert wrong.status_code == 422
    assert "metric" in wrong.text
