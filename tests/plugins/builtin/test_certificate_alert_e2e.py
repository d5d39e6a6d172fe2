"""End to end: a real TLS server whose certificate expires in 5 days fires the
shipped "certificate expiring" rule, and a webhook on loopback is told."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from applications_support import TestCA
from test_applications_tls import tls_server
from tests.notify.receivers import http_receiver
from tests.support.alerting import prompt_settings

from unity.settings import Settings
from unity_catalogue.tls_certificate import TlsCertificatePlugin


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [TlsCertificatePlugin]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return prompt_settings(tmp_path, database_url)


async def test_a_certificate_expiring_in_five_days_fires_and_tells_the_webhook(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "ca").mkdir()
    ca = TestCA(tmp_path / "ca")
    async with (
        tls_server(ca.issue("soon", valid_for=dt.timedelta(days=5))) as soon,
        tls_server(ca.issue("later", valid_for=dt.timedelta(days=90))) as later,
    ):
        with http_receiver() as web:
            url = f"json://127.0.0.1:{web.port}/hook"
            added = await client.post("/api/alerts/channels", json={"name": "hook", "url": url})
            assert added.status_code == 201, added.text
            config = {"endpoints": [soon, later], "ca_bundle": str(ca.bundle), "interval": 2}
            saved = await client.put("/api/plugins/v2/tls-certificate/config", json=config)
            assert saved.status_code == 200, saved.text
            assert (await client.post("/api/plugins/v2/tls-certificate/enable")).status_code == 200

            started = time.monotonic()
            while not web.requests:
                assert time.monotonic() - started < 20, "the webhook was never told"
                await asyncio.sleep(0.2)

    told = web.requests[0].json()
    assert told["title"].startswith("Warning"), told["title"]
    assert f"certificate of {soon} expires in" in told["message"]
    assert later not in told["message"]
    firing = (await client.get("/api/alerts")).json()["items"]
    expiring = [a for a in firing if a["rule_id"] == "certificate-expiring"]
    assert [(a["state"], a["item"], a["value"], a["unit"]) for a in expiring] == [
        ("firing", soon, 5.0, "days")
    ]
    assert not [a for a in firing if a["rule_id"] == "certificate-expiring-soon"]
    detail = (await client.get("/api/plugins/v2/tls-certificate")).json()
    assert detail["state"] == "degraded"
