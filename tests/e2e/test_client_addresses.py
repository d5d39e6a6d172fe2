"""End to end: failed authentication against the real `unity serve`, over HTTP.

uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise; the
hub must believe it only from ``UNITY_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.processes import Hub, free_port

BAD_TOKEN = "unity_aaaaaaaaaaaa_" + "b" * 43
LIMIT = 6


def _hub(tmp_path: Path, **extra: str) -> Hub:
    env = {
        **os.environ,
        "UNITY_DATA_DIR": str(tmp_path / "data"),
        "UNITY_DATABASE_URL": "",
        "UNITY_PORT": str(free_port()),
        "UNITY_AUTOENABLE": "[]",
        "UNITY_HOSTNAME": "e2e-host",
        "UNITY_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "UNITY_AUTH_FAILURE_BURST": "2",
        "UNITY_AUTH_FAILURE_LIMIT": str(LIMIT),
        "UNITY_AUTH_FAILURE_DELAY_SECONDS": "0.01",
        **extra,
    }
    return Hub(env, tmp_path / "hub.log")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    instance = _hub(tmp_path)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def proxied_hub(tmp_path: Path) -> Iterator[Hub]:
    instance = _hub(tmp_path, UNITY_TRUSTED_PROXIES='["127.0.0.1"]')
    instance.start()
    yield instance
    instance.stop()


def _get(hub: Hub, token: str, forwarded_for: str) -> httpx.Response:
    return httpx.get(
        f"{hub.url}/api/plugins/v2",
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded_for},
        timeout=30,
    )


@pytest.mark.e2e
def test_forwarded_addresses_are_not_believed_by_default(hub: Hub) -> None:
    for n in range(LIMIT):
        assert _get(hub, BAD_TOKEN, f"127.0.1.{n}").status_code == 401, n
    refused = _get(hub, hub.admin_token, "127.0.2.1")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "too_many_requests"


@pytest.mark.e2e
def test_a_trusted_proxy_tells_its_clients_apart(proxied_hub: Hub) -> None:
    for n in range(LIMIT):
        assert _get(proxied_hub, BAD_TOKEN, "127.0.0.66").status_code == 401, n
    assert _get(proxied_hub, proxied_hub.admin_token, "127.0.0.66").status_code == 429
    assert _get(proxied_hub, proxied_hub.admin_token, "127.0.0.1").status_code == 200
