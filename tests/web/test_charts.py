"""What the plugin page shows of each metric, decided by its declaration, and the app manifest."""

from __future__ import annotations

import json
import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import insert_documents
from tests.web.conftest import login
from unity.views.overview import SPARK_HEIGHT, sparkline
from unity.web.pages import range_choices
from unity_sdk import (
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginMetadata,
)

API = "/api/plugins/v2/replica/metrics"
FACT = MetricDisplay.FACT
STATE = MetricDisplay.STATE


class ReplicaPlugin(PluginBase):
    """A database server: constants, booleans, per-item counters and one gauge."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="replica",
            name="Replica",
            version="1.0.0",
            category=PluginCategory.DATABASE,
            metrics=[
                MetricField(name="cpu.percent", unit="%"),
                MetricField(name="memory.total", unit="bytes", display=FACT),
                MetricField(name="boot_time", unit="s", display=FACT),
                MetricField(name="version_num", unit="version", display=FACT),
                MetricField(name="version", kind=MetricKind.INFO),
                MetricField(name="cpus.*", unit="count", display=FACT),
                MetricField(name="in_recovery", unit="bool"),
                MetricField(name="nics.*.isup", kind=MetricKind.INFO, display=STATE),
                MetricField(name="disks.*.read_bytes", unit="bytes", kind=MetricKind.COUNTER),
                MetricField(name="uptime", unit="s"),
            ],
        )

    async def collect_data(self) -> dict[str, Any]:
        return document(0)


def document(minute: int) -> dict[str, Any]:
    return {
        "cpu": {"percent": 10.0 + minute},
        "memory": {"total": 16 * 1024**3},
        "boot_time": 1_700_000_000,
        "version_num": 160002,
        "version": "16.2",
        "cpus": {"logical": 8, "physical": 4},
        "in_recovery": minute >= 2,
        "nics": {"eth0": {"isup": True}, "wlan0": {"isup": minute % 2 == 0}},
        "disks": {"sda": {"read_bytes": 1000 * minute}, "nvme0n1": {"read_bytes": 50 * minute}},
        "uptime": 3600.0 + 60 * minute,
    }


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ReplicaPlugin]


@pytest.fixture
async def browser(app: FastAPI, admin_token: str) -> Any:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        await login(client, admin_token)
        yield client


BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def test_the_declaration_decides_facts_states_and_charts(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    await insert_documents(app, "replica", [("db1", BASE, document(3))])
    page = (await browser.get("/plugins/replica")).text
    facts = page[page.index("data-facts") : page.index('id="charts-title"')]
    assert re.search(r'data-fact="memory.total">.*?<dd>16.0 GiB</dd>', facts, re.S)
    assert re.search(r'data-fact="version_num">.*?<dd>160002</dd>', facts, re.S)
    assert re.search(r'data-fact="boot_time">.*?<dd>2023-11-14 22:13:20 UTC</dd>', facts, re.S)
    assert re.search(r'data-fact="version">.*?<dd>16.2</dd>', facts, re.S)
    assert "logical</span> 8" in facts
    assert "physical</span> 4" in facts

    charts = set(re.findall(r'data-chart data-field="([^"]+)"', page))
    assert charts == {"cpu.percent", "disks.*.read_bytes", "uptime"}
    states = set(re.findall(r'data-state-chart data-field="([^"]+)"', page))
    assert states == {"in_recovery", "nics.*.isup"}
    assert 'data-field="disks.*.read_bytes" data-unit="bytes" data-kind="counter"' in page
    assert 'data-per-item="true"' in page


async def test_state_metrics_answer_booleans_as_ones_and_zeros(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await insert_documents(
        app, "replica", [("db1", BASE + timedelta(minutes=m), document(m)) for m in range(4)]
    )
    params = {
        "step": 60,
        "start": BASE.isoformat(),
        "end": (BASE + timedelta(minutes=5)).isoformat(),
    }
    recovery = (await client.get(API, params={**params, "field": "in_recovery"})).json()
    assert recovery["display"] == "state"
    assert [p["avg"] for p in recovery["points"]] == [0.0, 0.0, 1.0, 1.0, None]
    nics = (await client.get(API, params={**params, "field": "nics.*.isup"})).json()
    assert {s["item"]: [p["avg"] for p in s["points"]] for s in nics["items"]} == {
        "eth0": [1.0, 1.0, 1.0, 1.0, None],
        "wlan0": [1.0, 0.0, 1.0, 0.0, None],
    }
    # An info metric that is not a state is still no series; a fact with a number is.
    response = await client.get(API, params={**params, "field": "version"})
    assert response.status_code == 422
    assert (await client.get(API, params={**params, "field": "version_num"})).status_code == 200
    disks = (await client.get(API, params={**params, "field": "disks.*.read_bytes"})).json()
    assert [s["item"] for s in disks["items"]] == ["nvme0n1", "sda"]
    assert [p["avg"] for p in disks["items"][1]["points"]] == [0.0, 1000.0, 2000.0, 3000.0, None]


async def test_the_range_picker_reaches_the_history_the_hub_keeps(
    app: FastAPI, browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    def options(html: str) -> list[tuple[str, str]]:
        picker = html[
            html.index('id="chart-range"') : html.index("</select>", html.index("chart-range"))
        ]
        return re.findall(r'<option value="(\w+)"(?: selected)?>([^<]+)</option>', picker)

    default = options((await browser.get("/plugins/replica")).text)
    # Raw documents are kept 7 days, but charts read the hour tier, kept 730.
    assert default[-2] == (str(730 * 86400), "All kept (730 days)"), "the hour tier's 2 years"
    assert (str(365 * 86400), "Last year") in default
    assert default[-1][0] == "custom"
    answer = await client.patch("/api/plugins/v2/replica/config", json={"retention_days": 1000})
    assert answer.status_code == 200, answer.text
    longer = options((await browser.get("/plugins/replica")).text)
    assert longer[-2] == (str(1000 * 86400), "All kept (1000 days)")
    assert range_choices(1) == [
        (900, "Last 15 minutes"),
        (3600, "Last hour"),
        (21600, "Last 6 hours"),
        (86400, "All kept (1 day)"),
    ]


async def test_the_manifest_and_its_icons_are_served(
    anon: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    answer = await anon.get("/manifest.webmanifest")
    assert answer.status_code == 200, "browsers fetch the manifest without the session cookie"
    assert answer.headers["content-type"] == "application/manifest+json"
    manifest = json.loads(answer.text)
    assert manifest["start_url"] == "/"
    assert manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        image = await anon.get(icon["src"])
        assert image.status_code == 200, icon
        assert image.headers["content-type"] == icon["type"]
        if icon["type"] == "image/png":
            width, height = struct.unpack(">II", image.content[16:24])
            assert icon["sizes"] == f"{width}x{height}"
            sizes.add(width)
    assert {192, 512} <= sizes
    page = (await browser.get("/")).text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page


def test_a_sparkline_breaks_where_nothing_was_collected() -> None:
    spark = sparkline("CPU", [10.0, 20.0, None, None, 50.0, 60.0, None], percent=True)
    assert len(spark.lines) == 2
    first, second = (line.split() for line in spark.lines)
    assert len(first) == 2
    assert len(second) == 2
    assert (spark.low, spark.high) == (10.0, 60.0)
    top = float(second[1].split(",")[1])
    assert 0 < top < SPARK_HEIGHT / 2, "60 % is drawn above the middle"
    lone = sparkline("Disk", [None, 42.0, None], percent=True)
    assert len(lone.lines) == 1, "a lone sample still shows"
    (start, end) = (float(point.split(",")[0]) for point in lone.lines[0].split())
    assert end - start == 2, "as a tick with a length, not a zero-length line"
    edge = sparkline("Disk", [None, None, 42.0], percent=True).lines[0].split()
    assert [float(p.split(",")[0]) for p in edge] == [118.0, 120.0], "drawn inside the box"
    assert sparkline("Memory", [None, None], percent=True).lines == []
