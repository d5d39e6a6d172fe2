"""In a real Chromium against a real `unity serve`: a plugin page's chart draws its
alert thresholds as lines and shades the times an alert fired; a notification's
link (``?at=``) centres the charts on its time; the alerts page lists the alert."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.processes import Hub, free_port, wait_until
from tests.web.conftest import screenshot

pytestmark = pytest.mark.e2e

FIGURE = "figure[data-field='memory.percent']"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A real `unity serve` whose alert engine looks for vanished rules every second."""
    tmp = tmp_path_factory.mktemp("hub")
    env = {
        **os.environ,
        "UNITY_DATA_DIR": str(tmp / "data"),
        "UNITY_DATABASE_URL": "",
        "UNITY_PORT": str(free_port()),
        "UNITY_AUTOENABLE": "[]",
        "UNITY_HOSTNAME": "web-host",
        "UNITY_SCHEDULER_JITTER": "0",
        "UNITY_CONFIG_FILE": str(tmp / "absent.toml"),
        "UNITY_ALERT_EVAL_SECONDS": "1",
    }
    instance = Hub(env, tmp / "hub.log")
    instance.start()
    yield instance
    instance.stop()


def _periods(hub: Hub) -> list[tuple[str, bool]]:
    now = datetime.now().astimezone()
    with hub.client() as api:
        answer = api.get(
            "/api/alerts/periods",
            params={
                "plugin_id": "system-info",
                "start": (now - timedelta(minutes=10)).isoformat(),
                "end": (now + timedelta(minutes=1)).isoformat(),
            },
        )
    return [(p["rule_id"], p["end"] is None) for p in answer.json()["items"]]


def _firing(hub: Hub, rule_id: str) -> dict[str, Any] | None:
    with hub.client() as api:
        items = api.get("/api/alerts", params={"plugin_id": "system-info"}).json()["items"]
    return next((a for a in items if a["rule_id"] == rule_id and a["state"] == "firing"), None)


def _log_in(page: Any, hub: Hub) -> None:
    page.goto(f"{hub.url}/")
    page.fill("#token", hub.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/")


def test_thresholds_and_alert_periods_on_the_chart(
    hub: Hub, browser_context: Callable[..., Any]
) -> None:
    with hub.client() as api:
        assert api.put("/api/plugins/v2/system-info/config", json={"interval": 1}).is_success
        assert api.post("/api/plugins/v2/system-info/enable").is_success
        # One alert that fires and resolves, one that fires and stays.
        brief = {"plugin_id": "system-info", "id": "memory-brief", "metric": "memory.percent",
                 "threshold": 1, "severity": "warning"}  # fmt: skip
        assert api.post("/api/alerts/rules", json=brief).status_code == 201
        wait_until(lambda: _firing(hub, "memory-brief") is not None)
        time.sleep(3)
        assert api.delete("/api/alerts/rules/system-info/memory-brief").status_code == 204
        wait_until(lambda: _periods(hub) == [("memory-brief", False)])
        time.sleep(3)
        lasting = {**brief, "id": "memory-used", "threshold": 2, "severity": "critical"}
        assert api.post("/api/alerts/rules", json=lasting).status_code == 201
        wait_until(lambda: _firing(hub, "memory-used") is not None)
    assert _periods(hub) == [("memory-brief", False), ("memory-used", True)]
    time.sleep(4)

    page = browser_context().new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    _log_in(page, hub)
    page.goto(f"{hub.url}/plugins/system-info")
    # The last few minutes, so the spans are wide enough to see.
    page.select_option("#chart-range", "custom")
    start = page.evaluate(
        "() => { const d = new Date(Date.now() - 150000);"
        " return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }"
    )
    page.fill("#chart-start", start)
    page.fill("#chart-end", "")
    page.dispatch_event("#chart-start", "change")
    page.wait_for_function(
        f"() => document.querySelector(\"{FIGURE}\").dataset.periodsDrawn === '2'"
        f' && Number(document.querySelector("{FIGURE}").dataset.points) > 0'
    )
    figure = page.locator(FIGURE)
    # memory-high (90 %, shipped) and memory-used (2 %): both lines are on the chart.
    assert figure.get_attribute("data-thresholds-drawn") == "2"
    assert figure.locator("[data-chart-rules] li").count() == 2
    assert "memory-used" in figure.locator("[data-chart-rules]").inner_text()
    page.set_viewport_size({"width": 1280, "height": 1100})
    figure.scroll_into_view_if_needed()
    figure.screenshot(path=str(_shots() / "plugin-chart-threshold.png"))
    screenshot(page, "plugin-threshold-and-alert-periods")

    # A notification's link: the charts are centred on its time, its host chosen.
    fired = _firing(hub, "memory-used")
    assert fired is not None
    link = urlencode({"host": "web-host", "at": fired["fired_at"]})
    page.goto(f"{hub.url}/plugins/system-info?{link}")
    page.wait_for_function(f'() => document.querySelector("{FIGURE}").dataset.periodsDrawn')
    assert page.input_value("#chart-range") == "custom"
    assert page.input_value("#chart-host") == "web-host"
    span = page.evaluate(
        "() => [new Date(document.querySelector('#chart-start').value).getTime(),"
        " new Date(document.querySelector('#chart-end').value).getTime()]"
    )
    at = datetime.fromisoformat(fired["fired_at"]).timestamp() * 1000
    assert span[1] - span[0] == pytest.approx(2 * 3600 * 1000, abs=60_000)
    assert (span[0] + span[1]) / 2 == pytest.approx(at, abs=60_000)
    assert page.locator(FIGURE).get_attribute("data-periods-drawn") == "2"

    page.goto(f"{hub.url}/alerts")
    assert "memory-used" in page.inner_text("main")
    screenshot(page, "alerts-page")
    assert problems == []


def _shots() -> Any:
    from tests.web.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
