"""The first day, as the README tells it, in a real Chromium against a real hub.

Start the hub (the four local plugins enabled, an admin token printed once),
log in with that token, enable a plugin, install a plugin package while the
hub runs, find it without a restart, enable it and open its charts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Hub, free_port, pip_install_into
from tests.web.conftest import screenshot

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "uptime-plugin"
LOCAL_FOUR = {"system-info", "process-monitor", "disk-monitor", "network-monitor"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder on the hub's import path, where the plugin package gets installed."""
    return tmp_path_factory.mktemp("site")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, site: Path) -> Iterator[Hub]:
    """`unity serve` on a fresh data dir with the defaults `scripts/start` uses."""
    tmp = tmp_path_factory.mktemp("first-day")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("UNITY_") or key.startswith("UNITY_TEST_")
    }
    env.update(
        {
            "UNITY_DATA_DIR": str(tmp / "data"),
            "UNITY_PORT": str(free_port()),
            "UNITY_HOSTNAME": "first-day",
            "UNITY_CONFIG_FILE": str(tmp / "absent.toml"),
            "PYTHONPATH": str(site),
        }
    )
    instance = Hub(env, tmp / "hub.log")
    instance.start()
    yield instance
    instance.stop()


def test_the_first_day(hub: Hub, site: Path, browser_context: Callable[..., Any]) -> None:
    log = hub.log.read_text()
    assert "It is shown only this once" in log
    assert f"{hub.url}/login" in log, "the first start names the login page"

    page = browser_context().new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))

    # Log in with the token the first start printed.
    page.goto(f"{hub.url}/")
    assert "/login" in page.url
    page.fill("#token", hub.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/")
    with hub.client() as api:
        enabled = {p["id"] for p in api.get("/api/plugins/v2").json()["items"] if p["enabled"]}
        assert enabled == LOCAL_FOUR, "the local-host plugins run from the first start"
        # First runs are spread over the first interval; run them now instead of waiting.
        for plugin_id in sorted(LOCAL_FOUR):
            assert api.post(f"/api/plugins/v2/{plugin_id}/execute").is_success
    page.locator("article.host", has_text="first-day").wait_for()
    screenshot(page, "first-day-overview")

    # Enable a plugin from its page.
    page.goto(f"{hub.url}/plugins/lsblk")
    page.click("[data-action=toggle]")
    page.wait_for_function(
        "() => document.querySelector('[data-action=toggle]').innerText === 'Disable'"
    )

    # Install a plugin package while the hub runs; it is not there yet.
    pip_install_into(EXAMPLE, site)
    page.goto(f"{hub.url}/plugins")
    assert page.locator("a[href='/plugins/uptime']").count() == 0
    page.click("button:has-text('Look for new plugins')")
    page.locator("#toasts", has_text="uptime").wait_for()
    page.locator("a[href='/plugins/uptime']").wait_for()
    screenshot(page, "first-day-new-plugin")

    # Open it, enable it, run it once and see its chart drawn.
    page.click("a[href='/plugins/uptime']")
    page.wait_for_url(f"{hub.url}/plugins/uptime")
    page.click("[data-action=toggle]")
    page.wait_for_function(
        "() => document.querySelector('[data-action=toggle]').innerText === 'Disable'"
    )
    page.click("[data-action=run]")
    page.locator("#run-result .status-success").wait_for()
    page.reload()
    page.wait_for_function(
        "() => Number(document.querySelector(`figure[data-field='uptime']`)?.dataset.points)"
    )
    assert page.locator("figure[data-field='uptime'] canvas").count() == 1
    screenshot(page, "first-day-uptime")
    assert problems == []
