"""The dashboard in a real Chromium against a real `unity serve` with real data."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.processes import Hub, wait_until
from tests.web.conftest import make_token, screenshot

pytestmark = pytest.mark.e2e

MOBILE = {"width": 375, "height": 812}


def _log_in(page: Any, hub: Hub, token: str) -> None:
    page.goto(f"{hub.url}/")
    assert "/login" in page.url, "without a session every page sends you to the login page"
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/")


def _shoot_both(page: Any, name: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, f"{name}-desktop")
    page.set_viewport_size(MOBILE)
    screenshot(page, f"{name}-375")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_admin_runs_the_hub_from_the_dashboard(
    hub: Hub, browser_context: Callable[..., Any]
) -> None:
    page = browser_context().new_page()
    problems: list[str] = []
    # Refused requests (401, 422) are expected; script errors and CSP violations are not.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))

    # Logging in: a wrong token is refused with a message, the printed admin token works.
    page.goto(f"{hub.url}/")
    page.fill("#token", "unity_notatoken")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text("[role=alert]")
    screenshot(page, "login-desktop")
    page.set_viewport_size(MOBILE)
    screenshot(page, "login-375")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.fill("#token", hub.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/")
    # The hub's own host has its card from the start, without numbers until a plugin runs.
    assert page.locator("article.host").count() == 1
    assert page.locator("article.host [data-metric=cpu] dd").inner_text() == "—"

    # The overview picks up a plugin enabled elsewhere and its scheduled runs, without a reload.
    page.evaluate("window.__sameDocument = true")
    with hub.client() as api:
        assert api.put("/api/plugins/v2/system-info/config", json={"interval": 1}).is_success
        assert api.post("/api/plugins/v2/system-info/enable").is_success
    card = page.locator("article.host", has_text="web-host")
    card.wait_for()
    cpu = card.locator("[data-metric=cpu] .meter-value")
    cpu.wait_for()
    assert re.fullmatch(r"\d+(\.\d)?%", cpu.inner_text())
    assert re.fullmatch(
        r"\d+(\.\d)?%", card.locator("[data-metric=memory] .meter-value").inner_text()
    )
    row = page.locator("tr[data-key=plugin-system-info]")
    row.locator(".state-healthy").wait_for()
    last_run = "document.querySelector('[data-live=plugin-system-info-run] time').dateTime"
    first = page.evaluate(last_run)
    page.wait_for_function(f"t => {last_run} !== t", arg=first)
    assert page.evaluate("window.__sameDocument") is True, "the page was never reloaded"
    _shoot_both(page, "overview-light")
    page.click("[data-theme-toggle]")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    _shoot_both(page, "overview-dark")
    page.click("[data-theme-toggle]")

    # A plugin page: enable, an invalid config shown at its field, then a valid one.
    page.goto(f"{hub.url}/plugins/disk-monitor")
    toggle = page.locator("[data-action=toggle]")
    assert toggle.inner_text() == "Enable"
    toggle.click()
    page.wait_for_function(
        "() => document.querySelector('[data-action=toggle]').innerText === 'Disable'"
    )
    page.locator("[data-plugin-state]:not([data-plugin-state=disabled])").wait_for()
    page.fill("#cfg-interval", "0")
    page.click("#config-form button[type=submit]")
    error = page.locator("#cfg-interval-error")
    error.wait_for()
    assert "seconds from 1 to 86400" in error.inner_text()
    assert page.get_attribute("#cfg-interval", "aria-invalid") == "true"
    field = page.locator("[data-field=interval]")
    assert field.locator("#cfg-interval-error").count() == 1, "the error sits with its field"
    page.fill("#cfg-interval", "5")
    page.click("#config-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('[data-form-status]').innerText.startsWith('Saved')"
    )
    assert error.is_hidden()
    with hub.client() as api:
        assert api.get("/api/plugins/v2/disk-monitor/config").json()["config"] == {"interval": 5}

    # Charts read bucketed series and draw them; run now shows its result.
    page.goto(f"{hub.url}/plugins/system-info")
    chart = page.locator("figure[data-field='cpu.percent']")
    page.wait_for_function(
        "() => Number(document.querySelector(`figure[data-field='cpu.percent']`).dataset.points)"
    )
    assert chart.locator("canvas").count() == 1
    page.click("[data-action=run]")
    result = page.locator("#run-result")
    result.locator(".status-success").wait_for()
    assert "document(s) stored" in result.inner_text()
    _shoot_both(page, "plugin")
    page.click("[data-theme-toggle]")
    screenshot(page, "plugin-dark-desktop")
    page.click("[data-theme-toggle]")

    # The catalogue filters as you type and by category.
    page.goto(f"{hub.url}/plugins")
    total = page.locator("[data-filter-list] > li:visible").count()
    page.fill("#q", "smart")
    assert 1 <= page.locator("[data-filter-list] > li:visible").count() < total
    page.fill("#q", "")
    page.select_option("#category", "network")
    visible = page.locator("[data-filter-list] > li:visible")
    assert visible.count() >= 1
    assert set(visible.evaluate_all("els => els.map(e => e.dataset.category)")) == {"network"}
    page.select_option("#category", "")
    _shoot_both(page, "plugins")

    # External plugins: an enrollment token is shown once, then listed and revoked.
    page.goto(f"{hub.url}/external")
    page.fill("#enroll-name", "garage-pi")
    page.click("form[data-api-form] button[type=submit]")
    once = page.locator("dialog [data-once-value]")
    once.wait_for()
    assert once.input_value().startswith("unitye_")
    page.click("dialog button[value=close]")
    row = page.locator("tr", has_text="garage-pi")
    row.wait_for()
    assert "live" in row.inner_text().lower()
    _shoot_both(page, "external")
    row.locator("button", has_text="Revoke").click()
    page.click("dialog button[value=yes]")
    page.locator("tr", has_text="garage-pi").locator("text=revoked").wait_for()

    # Credentials: store one, reveal it after a confirmation, see the audit trail.
    page.goto(f"{hub.url}/credentials")
    page.fill("#cred-name", "nas-db")
    page.select_option("#cred-kind", "password")
    page.fill("#cred-username", "monitor")
    page.fill("#cred-password", "s3cret-value")
    page.click("form[data-kind-form] button[type=submit]")
    stored = page.locator("tr[data-credential=nas-db]")
    stored.wait_for()
    assert "s3cret-value" not in page.content()
    stored.locator("[data-reveal]").click()
    page.click("#reveal-dialog [data-reveal-go]")
    revealed = page.locator("#reveal-dialog [data-reveal-values] textarea")
    revealed.first.wait_for()
    assert "s3cret-value" in revealed.evaluate_all("els => els.map(e => e.value)")
    page.click("#reveal-dialog button[value=close]")
    page.reload()
    assert "reveal" in page.inner_text("[data-audit]")
    _shoot_both(page, "credentials")

    # A secret config field takes a stored credential from the picker.
    page.goto(f"{hub.url}/plugins/postgres")
    password = page.locator("[data-field=password]")
    password.locator("input[value=credential]").check()
    password.locator("[data-secret-credential]").select_option("nas-db")
    page.click("#config-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('[data-form-status]').innerText.startsWith('Saved')"
    )
    with hub.client() as api:
        config = api.get("/api/plugins/v2/postgres/config").json()["config"]
    assert config == {"password": {"$credential": "nas-db"}}

    page.goto(f"{hub.url}/servers")
    _shoot_both(page, "servers")

    # Logging out ends the session: the API refuses the browser from then on.
    page.click("text=Log out")
    page.wait_for_url(re.compile(r".*/login$"))
    status = page.evaluate("fetch('/api/plugins/v2').then(r => r.status)")
    assert status == 401
    page.goto(f"{hub.url}/plugins")
    assert "/login" in page.url
    assert problems == [], problems


def test_read_only_token_changes_nothing_and_sees_no_admin_records(
    hub: Hub, browser_context: Callable[..., Any]
) -> None:
    token = make_token(hub, "read", "viewer")
    page = browser_context().new_page()
    _log_in(page, hub, token)
    assert "read-only" in page.inner_text(".banner")
    page.goto(f"{hub.url}/plugins/system-info")
    for selector in (
        "[data-action=toggle]",
        "[data-action=run]",
        "#config-form button[type=submit]",
    ):
        assert page.locator(selector).is_disabled(), selector
    assert page.locator("#cfg-interval").is_disabled(), "the whole form is locked"
    _shoot_both(page, "plugin-read-only")

    # The server refuses too, even with the right CSRF token.
    status = page.evaluate(
        """() => fetch('/api/plugins/v2/system-info/disable', {
            method: 'POST',
            headers: {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
        }).then(r => r.status)"""
    )
    assert status == 403
    with hub.client() as api:
        assert api.get("/api/plugins/v2/system-info").json()["enabled"]

    for path in ("/credentials", "/servers"):
        page.goto(f"{hub.url}{path}")
        buttons = page.locator("main button[type=submit]")
        assert buttons.count() >= 1
        assert all(b.is_disabled() for b in buttons.all()), path
        # The API keeps the audit log for admins; so does the page.
        assert page.locator("#audit-title").count() == 0, path
    page.goto(f"{hub.url}/external")
    assert page.locator("#agents-title").is_visible()
    assert page.locator("#enroll-title").count() == 0, "enrollment tokens are admin-only"
    assert page.locator("main button[type=submit]").count() == 0
    wait_until(lambda: True)


def _no_horizontal_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def test_per_item_charts_state_timelines_and_facts(
    hub: Hub, browser_context: Callable[..., Any]
) -> None:
    page = browser_context().new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"{e}: {e.stack}"))
    _log_in(page, hub, hub.admin_token)
    with hub.client() as api:
        for plugin_id, config in (
            ("disk-monitor", {"interval": 1, "per_disk": True}),
            ("network-monitor", {"interval": 1, "per_nic": True}),
            ("system-info", {"interval": 1}),
        ):
            assert api.put(f"/api/plugins/v2/{plugin_id}/config", json=config).is_success
            assert api.post(f"/api/plugins/v2/{plugin_id}/enable").is_success

    # The disk page: one line per disk and direction, each with a checkbox.
    page.goto(f"{hub.url}/plugins/disk-monitor")
    page.select_option("#chart-range", "900")
    io = page.locator("figure[data-field='disks.*.*.bytes']")
    page.wait_for_function(
        "() => Number(document.querySelector(`figure[data-field='disks.*.*.bytes']`)"
        ".dataset.points) > 0",
        timeout=60_000,
    )
    boxes = io.locator("[data-items] input[type=checkbox]")
    items = boxes.evaluate_all("els => els.map(e => e.dataset.item)")
    assert len(items) >= 2, items
    assert all(re.fullmatch(r".+\.(read|write)", item) for item in items), items
    assert io.locator("canvas").count() == 1
    first = boxes.first
    first.uncheck()
    shown = page.evaluate(
        "() => [...document.querySelectorAll(`figure[data-field='disks.*.*.bytes'] "
        "[data-items] input`)].filter(b => b.checked).length"
    )
    assert shown == min(len(items), 8) - 1
    first.check()
    options = page.locator("#chart-range option").evaluate_all("els => els.map(e => e.text)")
    assert "All kept (730 days)" in options  # the hour tier outlives raw documents
    _shoot_both(page, "disk-io")
    page.set_viewport_size(MOBILE)
    _no_horizontal_overflow(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Network: the NICs' up/down state as a timeline, one row per NIC.
    page.goto(f"{hub.url}/plugins/network-monitor")
    page.select_option("#chart-range", "900")
    timeline = page.locator("figure[data-state-chart][data-field='nics.*.isup']")
    page.wait_for_function(
        "() => Number(document.querySelector(`figure[data-field='nics.*.isup']`)"
        ".dataset.points) > 0",
        timeout=30_000,
    )
    assert timeline.locator(".timeline-row").count() >= 1
    assert timeline.locator("rect.state-on").count() >= 1
    _shoot_both(page, "state-timeline")
    page.set_viewport_size(MOBILE)
    _no_horizontal_overflow(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    # System info: the constants are facts, not charts.
    page.goto(f"{hub.url}/plugins/system-info")
    page.select_option("#chart-range", "900")
    page.wait_for_function(
        "() => Number(document.querySelector(`figure[data-field='cpu.percent']`).dataset.points)"
    )
    facts = page.locator("[data-facts]")
    assert re.fullmatch(
        r"\d+(\.\d)? GiB", facts.locator("[data-fact='memory.total'] dd").inner_text()
    )
    assert "UTC" in facts.locator("[data-fact='boot_time'] dd").inner_text()
    assert page.locator("figure[data-field='memory.total']").count() == 0
    assert page.locator("figure[data-field='cpu.count.*']").count() == 0
    _shoot_both(page, "plugin-facts")
    page.set_viewport_size(MOBILE)
    _no_horizontal_overflow(page)

    # The overview: a last-hour sparkline per headline number of each host.
    page.goto(f"{hub.url}/")
    card = page.locator("article.host", has_text="web-host")
    # Attached, not "visible": a flat line (steady CPU, or a lone sample's tick)
    # has a zero-height bounding box, which Playwright counts as hidden.
    spark = card.locator("[data-spark=cpu] polyline").first
    spark.wait_for(state="attached")
    assert spark.get_attribute("points")
    _no_horizontal_overflow(page)
    _shoot_both(page, "overview-sparklines")
    assert problems == [], problems
