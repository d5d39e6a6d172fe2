"""End to end: discovery by a real ``unity-agent`` process and by a real ``unity
serve``, each on this machine; an accepted proposal producing real metrics.

The agent joins (``unity-agent join ... --no-start``), then runs with
``--discovery-seconds 1``; the hub scans its own machine every second
(``UNITY_DISCOVERY_SECONDS``). Both find the real PostgreSQL, MariaDB, Redis and
Mosquitto that run here. A service that is down is left out with the reason
(under CI it fails); Redis is needed for the accept.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.processes import Hub, hub_env, wait_until

AGENT = Path(sys.executable).with_name("unity-agent")
HUB_HOST = "e2e-host"
AGENT_HOST = "e2e-agent"
# key: the port it is found on
SERVICES = {"postgres:5432": 5432, "mysql:3306": 3306, "redis:6379": 6379, "mqtt-broker:1883": 1883}
# The agent asks the hub for its assignments this often (UNITY_AGENT_POLL_SECONDS).
POLL_SECONDS = 2
INTERVAL = 2


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI requires it: {reason}")
    pytest.skip(reason)


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Hub]:
    instance = Hub(
        hub_env(
            tmp_path,
            database_url,
            discovery_seconds="1",
            agent_poll_seconds=str(POLL_SECONDS),
        ),
        tmp_path / "hub.log",
    )
    instance.start()
    yield instance
    if instance.proc is not None:
        instance.stop()


@pytest.fixture
def agent(hub: Hub, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    data_dir = tmp_path / "agent"
    with hub.client() as client:
        enrollment = client.post("/api/enrollment-tokens", json={"name": "e2e"})
        assert enrollment.status_code == 201, enrollment.text
        token = enrollment.json()["token"]
    join = [str(AGENT), "join", hub.url, token, "--data-dir", str(data_dir)]
    joined = subprocess.run(
        [*join, "--hostname", AGENT_HOST, "--no-start"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert joined.returncode == 0, joined.stderr
    log = (tmp_path / "agent.log").open("wb")
    process = subprocess.Popen(
        [str(AGENT), "run", "--data-dir", str(data_dir), "--discovery-seconds", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "agent.log").read_text()
    log.close()


def _proposals(client: httpx.Client, host: str, status: str | None = None) -> dict[str, Any]:
    params = {"status": status} if status else {}
    answer = client.get(f"/api/hosts/{host}/proposals", params=params)
    assert answer.status_code == 200, answer.text
    return {p["key"]: p for p in answer.json()}


@pytest.mark.e2e
def test_agent_and_hub_propose_what_runs_here_and_an_accepted_proposal_reports(
    hub: Hub, agent: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    running = {key for key, port in SERVICES.items() if _listening(port)}
    if "redis:6379" not in running:
        _unavailable("Redis is not running on 127.0.0.1:6379")
    with hub.client() as client:
        for host in (AGENT_HOST, HUB_HOST):
            wait_until(lambda h=host: running <= set(_proposals(client, h, "open")), timeout=30)
            found = _proposals(client, host, "open")
            assert found["redis:6379"]["config"] == {"host": "127.0.0.1", "port": 6379}
            if "postgres:5432" in running:
                assert found["postgres:5432"]["credential"] == "password"

        proposals = _proposals(client, AGENT_HOST, "open")
        if "mqtt-broker:1883" in running:
            mqtt = proposals["mqtt-broker:1883"]
            dismissed = client.post(f"/api/hosts/{AGENT_HOST}/proposals/{mqtt['id']}/dismiss")
            assert dismissed.status_code == 200, dismissed.text
        accepted = client.post(
            f"/api/hosts/{AGENT_HOST}/proposals/{proposals['redis:6379']['id']}/accept",
            json={"config": {"interval": INTERVAL}},
        )
        assert accepted.status_code == 201, accepted.text
        plugin_id = accepted.json()["plugin_id"]
        assert plugin_id == f"redis@{AGENT_HOST}"

        def metrics() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = client.get(f"/api/plugins/v2/{plugin_id}/metrics").json()[
                "items"
            ]
            return items

        # The agent's next poll brings the instance, its first run follows: one poll
        # and one interval, plus room for a busy machine.
        started = time.monotonic()
        wait_until(lambda: metrics(), timeout=POLL_SECONDS + INTERVAL + 5)
        sample = metrics()[0]
        assert time.monotonic() - started < POLL_SECONDS + INTERVAL + 5
        assert sample["host"] == AGENT_HOST
        assert sample["data"]["reachable"] == 1
        assert sample["data"]["version"]

        # Later scans keep the decisions.
        before = _proposals(client, AGENT_HOST)
        wait_until(
            lambda: (
                _proposals(client, AGENT_HOST)["redis:6379"]["last_seen_at"]
                > before["redis:6379"]["last_seen_at"]
            ),
            timeout=15,
        )
        after = _proposals(client, AGENT_HOST)
        assert after["redis:6379"]["status"] == "accepted"
        if "mqtt-broker:1883" in running:
            assert after["mqtt-broker:1883"]["status"] == "dismissed"
        # The hub's own host kept its own proposals: the agent's decisions are its host's.
        assert _proposals(client, HUB_HOST)["redis:6379"]["status"] == "open"
    missing = set(SERVICES) - running
    if missing:
        _unavailable(f"not running here, not checked: {', '.join(sorted(missing))}")
