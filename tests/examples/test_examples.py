"""The two example plugins, exercised for real: installed into a real hub, and
run as a separate external process against a real `unity serve`."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.processes import Hub, free_port, wait_until

EXAMPLES = Path(__file__).parents[2] / "examples"


def _hub_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "UNITY_DATA_DIR": str(tmp_path / "data"),
        "UNITY_DATABASE_URL": database_url,
        "UNITY_PORT": str(free_port()),
        "UNITY_AUTOENABLE": "[]",
        "UNITY_CONFIG_FILE": str(tmp_path / "absent.toml"),
        **extra,
    }


@pytest.fixture
def hubs() -> Iterator[list[Hub]]:
    started: list[Hub] = []
    yield started
    for hub in started:
        if hub.proc is not None:
            hub.proc.kill()
            hub.proc.wait()


def _pip_install(package: Path, target: Path) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--target", str(target), str(package)),
        ],
        check=True,
    )


@pytest.mark.e2e
def test_in_hub_example_is_listed_and_runs(
    tmp_path: Path, database_url: str, hubs: list[Hub]
) -> None:
    site = tmp_path / "site"
    _pip_install(EXAMPLES / "uptime-plugin", site)
    hub = Hub(_hub_env(tmp_path, database_url, PYTHONPATH=str(site)), tmp_path / "hub.log")
    hubs.append(hub)
    hub.start()
    with hub.client() as client:
        listed = {p["id"]: p for p in client.get("/api/plugins/v2").json()["items"]}
        assert listed["uptime"]["loaded"] is True
        assert listed["uptime"]["category"] == "system"
        result = client.post("/api/plugins/v2/uptime/execute").json()
        assert result["status"] == "success", result
        assert result["data"]["uptime"] > 0
    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLES / "uptime-plugin",
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "2 passed" in own_tests.stdout


class Collector:
    """The external example as a separate process (`python -m unity_sdk.run`)."""

    def __init__(self, hub: Hub, state: Path, log: Path, enrollment: str | None) -> None:
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(EXAMPLES / "host-pulse" / "src")}
        env.pop("UNITY_ENROLLMENT_TOKEN", None)
        if enrollment:
            env["UNITY_ENROLLMENT_TOKEN"] = enrollment
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "unity_sdk.run", "unity_host_pulse:HostPulse"),
                    *("--hub", hub.url, "--state-dir", str(state), "--hostname", "pi-1"),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def _samples(client: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/plugins/v2/host-pulse/metrics", params=params).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.e2e
def test_external_example_registers_reports_buffers_and_is_revoked(
    tmp_path: Path, database_url: str, hubs: list[Hub]
) -> None:
    hub = Hub(_hub_env(tmp_path, database_url), tmp_path / "hub.log")
    hubs.append(hub)
    hub.start()
    state = tmp_path / "state"
    with hub.client() as client:
        enrollment = client.post("/api/enrollment-tokens", json={"max_uses": 1}).json()["token"]
    collector = Collector(hub, state, tmp_path / "collector.log", enrollment)
    try:
        with hub.client() as client:
            wait_until(lambda: client.get("/api/plugins/v2/host-pulse").status_code == 200)
            assert client.put("/api/plugins/v2/host-pulse/config", json={"interval": 1}).is_success
            # A restarted collector reuses its saved key (no second registration) and
            # starts at the interval set in the hub instead of its 30 s default.
            assert collector.stop() == 0
            collector = Collector(hub, state, tmp_path / "collector.log", None)
            wait_until(lambda: len(_samples(client)) >= 3)
            assert len(client.get("/api/plugins/v2/host-pulse/keys").json()) == 1
            detail = client.get("/api/plugins/v2/host-pulse").json()
            assert detail["external"] is True
            assert detail["enabled"] is True
            first = _samples(client)
            assert {s["host"] for s in first} == {"pi-1"}
            assert first[0]["data"]["memory"]["total"] > 0
        key_file = state / "host-pulse.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        # The hub goes away for a while; the collector buffers and replays in order.
        hub.stop()
        down_from = datetime.now().astimezone()
        time.sleep(4)
        down_to = datetime.now().astimezone()
        hub.start()
        with hub.client() as client:

            def replayed() -> bool:
                stamps = [datetime.fromisoformat(s["timestamp"]) for s in _samples(client)]
                return sum(down_from < t < down_to for t in stamps) >= 2

            wait_until(replayed, timeout=60)
            samples = _samples(client)
            stamps = [datetime.fromisoformat(s["timestamp"]) for s in samples]
            assert stamps == sorted(stamps, reverse=True)
            assert len(set(stamps)) == len(stamps), "no sample stored twice"
            keys = client.get("/api/plugins/v2/host-pulse/keys").json()
            assert len(keys) == 1

            # Revoking the key stops the collector with an error.
            assert (
                client.delete(f"/api/plugins/v2/host-pulse/keys/{keys[0]['id']}").status_code == 204
            )
            assert collector.proc.wait(timeout=30) == 1
        assert "refused the key" in (tmp_path / "collector.log").read_text()
    finally:
        if collector.proc.poll() is None:
            collector.proc.kill()
            collector.proc.wait()
