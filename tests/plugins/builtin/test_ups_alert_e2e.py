"""End to end with a real UPS server: mains fails, the owner gets one email; mains
returns, a resolved email follows.

A real upsd with NUT's dummy-ups driver (the fixture of ``test_hardware_upsc``)
serves the UPS; the hub runs the built-in ``upsc`` plugin on its schedule, its
``assess`` and shipped alert rules judge every document, and the notifier sends
through Apprise to a real SMTP server (aiosmtpd) on loopback. Nothing is driven
by hand but the UPS's state file.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_hardware_upsc
from test_hardware_common import FIXTURES
from test_hardware_upsc import Nut
from tests.notify.receivers import MailReceiver
from tests.support.alerting import prompt_settings

from unity.settings import Settings
from unity_catalogue.upsc import UpscPlugin

nut = test_hardware_upsc.nut
INTERVAL = 2


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [UpscPlugin]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return prompt_settings(tmp_path, database_url)


@pytest.fixture
def smtp() -> Iterator[MailReceiver]:
    receiver = MailReceiver()
    receiver.controller.start()
    try:
        yield receiver
    finally:
        receiver.controller.stop()


async def _until(what: str, check: Any, seconds: float) -> float:
    """Poll ``check`` (async) until true; the seconds it took."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"no {what} within {seconds:g} s"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def test_on_battery_sends_one_email_and_mains_back_a_resolved_one(
    client: httpx.AsyncClient, nut: Nut, smtp: MailReceiver
) -> None:
    url = f"mailto://127.0.0.1:{smtp.port}?from=hub@example.com&to=ops@example.com&mode=insecure"
    added = await client.post("/api/alerts/channels", json={"name": "mail", "url": url})
    assert added.status_code == 201, added.text
    config = {"ups": "apc", "host": "127.0.0.1", "port": nut.port, "interval": INTERVAL}
    assert (await client.put("/api/plugins/v2/upsc/config", json=config)).status_code == 200
    assert (await client.post("/api/plugins/v2/upsc/enable")).status_code == 200

    async def state_is(wanted: str) -> bool:
        return bool((await client.get("/api/plugins/v2/upsc")).json()["state"] == wanted)

    await _until("healthy UPS", lambda: state_is("healthy"), 30)
    assert smtp.messages == []

    # Mains fails: the driver now reports what an Eaton 5E reported on battery.
    shutil.copy(FIXTURES / "upsc" / "eaton-5e-on-battery.txt", nut.device_file)

    async def mails(count: int) -> bool:
        return len(smtp.messages) >= count

    # dummy-ups re-reads its file every 2 s; then one interval, for = 0, no group wait.
    took = await _until("email about the battery", lambda: mails(1), 2 + INTERVAL + 10)
    # The Eaton has 412 s left, under the runtime rule's 600 s: two alerts, one email.
    mail = smtp.messages[0]
    assert mail["Subject"] == "2 alerts on test-host (2 firing)"
    text = MailReceiver.text_of(mail)
    assert "UPS apc on test-host is on battery" in text
    assert "412 s of runtime left (limit 600 s)" in text
    assert "Value: yes (threshold yes)" in text
    assert "/plugins/upsc" in text
    detail = (await client.get("/api/plugins/v2/upsc")).json()
    assert detail["state"] == "degraded"
    assert detail["health"]["message"] == "on battery, 64 %, 7 min left"
    firing = (await client.get("/api/alerts")).json()["items"]
    assert {a["rule_id"] for a in firing if a["state"] == "firing"} >= {"ups-on-battery"}
    # Still on battery a few runs later: no second email (the repeat interval is hours).
    await asyncio.sleep(2 * INTERVAL)
    assert len(smtp.messages) == 1, [m["Subject"] for m in smtp.messages]

    # Mains is back.
    shutil.copy(FIXTURES / "upsc" / "apc-back-ups-online.txt", nut.device_file)
    await _until("resolved email", lambda: mails(2), 2 + INTERVAL + 10)
    resolved = smtp.messages[1]
    assert "resolved" in resolved["Subject"].lower(), resolved["Subject"]
    await _until("healthy again", lambda: state_is("healthy"), 10)
    print(f"battery to email: {took:.1f} s")
