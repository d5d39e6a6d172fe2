"""End to end: three real agents, each its own process and host identity, join a
real `unity serve`; config changes reach the right agent only; a killed agent's
host turns stale; an agent killed while the hub is away replays what it spooled.

Every agent runs on this machine; what makes them three hosts is their own data
directory (identity, key and spool) and the host name each joined with.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.processes import Hub, hub_env

AGENT = Path(sys.executable).with_name("unity-agent")
FOUR = ("system-info", "process-monitor", "disk-monitor", "network-monitor")
NAMES = ("alpha", "beta", "gamma")
INTERVAL = 2

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Agent:
    """A `unity-agent run` subprocess over its own data directory."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.data_dir = root / name
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def join(self, url: str, token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(str(AGENT), "join", url, token, "--data-dir", str(self.data_dir)),
                *("--hostname", f"{self.name}.lan", "--host-id", self.name, "--no-start"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(AGENT), "run", "--data-dir", str(self.data_dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Hub]:
    env = hub_env(tmp_path, database_url, agent_poll_seconds="1")
    instance = Hub(env, tmp_path / "hub.log")
    instance.start()
    yield instance
    if instance.proc is not None:
        instance.proc.kill()
        instance.proc.wait()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[dict[str, Agent]]:
    made = {name: Agent(name, tmp_path) for name in NAMES}
    yield made
    for agent in made.values():
        if agent.proc is not None:
            agent.kill()


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout:g}s: {what}")


def _hosts(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {h["id"]: h for h in client.get("/api/hosts").raise_for_status().json()}


def _documents(client: httpx.Client, plugin_id: str, **params: Any) -> list[dict[str, Any]]:
    answer = client.get(f"/api/plugins/v2/{plugin_id}/metrics", params={"limit": 1000, **params})
    items: list[dict[str, Any]] = answer.raise_for_status().json()["items"]
    return items


def test_three_agents_join_report_follow_the_hub_go_stale_and_replay(
    hub: Hub, agents: dict[str, Agent]
) -> None:
    admin = {"Authorization": f"Bearer {hub.admin_token}"}
    with httpx.Client(base_url=hub.url, headers=admin, timeout=30) as client:
        token = client.post(
            "/api/enrollment-tokens", json={"name": "e2e agents", "max_uses": 3}
        ).json()["token"]

        # -- join: one command per host, the key kept for its owner only -------------
        for agent in agents.values():
            joined = agent.join(hub.url, token)
            assert joined.returncode == 0, joined.stderr
            identity = agent.data_dir / "agent.json"
            assert stat.S_IMODE(identity.stat().st_mode) == 0o600
            assert stat.S_IMODE(agent.data_dir.stat().st_mode) == 0o700
            assert token not in identity.read_text()
        # The token was for three hosts: a fourth join is refused, nothing written.
        extra = Agent("delta", agents["alpha"].data_dir.parent)
        refused = extra.join(hub.url, token)
        assert refused.returncode != 0
        assert "enrollment token" in refused.stderr
        assert not extra.data_dir.exists()

        hosts = _hosts(client)
        assert {h["kind"] for h in hosts.values()} == {"hub", "agent"}
        assert set(NAMES) <= set(hosts)
        for name in NAMES:
            assert sorted(p["plugin_type"] for p in hosts[name]["plugins"]) == sorted(FOUR)
            # Faster than the catalogue's defaults, so the test takes seconds.
            for plugin in FOUR:
                answer = client.put(
                    f"/api/plugins/v2/{plugin}@{name}/config", json={"interval": INTERVAL}
                )
                assert answer.status_code == 200, answer.text

        for agent in agents.values():
            agent.start()

        # -- each host shows up with the psutil four and its own numbers --------------
        def all_reporting() -> bool:
            return all(
                _documents(client, f"{plugin}@{name}", limit=1) for name in NAMES for plugin in FOUR
            )

        _until(all_reporting, 60, "every agent stores documents of the four plugins")

        def with_figures() -> dict[str, dict[str, Any]] | None:
            hosts = _hosts(client)
            return hosts if all(hosts[n]["cpu_percent"] is not None for n in NAMES) else None

        cards = _until(with_figures, 30, "host cards with CPU figures")
        for name in NAMES:
            card = cards[name]
            assert card["hostname"] == f"{name}.lan"
            assert card["state"] in {"healthy", "degraded"}, card
            assert card["memory_percent"] is not None
            assert card["agent"]["problems"] == {}
            document = _documents(client, f"system-info@{name}", limit=1)[0]
            assert document["host"] == name
            assert "per_cpu" not in document["data"]["cpu"]

        # -- a config change reaches the right agent only, within one interval --------
        changed_at = datetime.now(UTC)
        answer = client.put(
            "/api/plugins/v2/system-info@beta/config",
            json={"interval": INTERVAL, "per_cpu": True},
        )
        assert answer.status_code == 200, answer.text

        def beta_per_cpu() -> bool:
            latest = _documents(client, "system-info@beta", limit=1)[0]
            return "per_cpu" in latest["data"]["cpu"]

        # One poll (at most the interval) plus one run.
        _until(beta_per_cpu, 3 * INTERVAL + 2, "beta collects per-CPU figures")
        time.sleep(INTERVAL + 1)
        for name in ("alpha", "gamma"):
            after = [
                d
                for d in _documents(client, f"system-info@{name}")
                if datetime.fromisoformat(d["timestamp"]) > changed_at
            ]
            assert after, f"{name} kept reporting"
            assert all("per_cpu" not in d["data"]["cpu"] for d in after)

        # -- a killed agent turns its host stale ---------------------------------------
        agents["gamma"].kill()
        _until(
            lambda: _hosts(client)["gamma"]["state"] == "stale",
            3 * INTERVAL * 3 + 15,
            "gamma's host turns stale",
        )
        assert _hosts(client)["alpha"]["state"] != "stale"

        # -- killed while the hub is away, restarted: what it spooled is replayed -----
        hub.stop()
        outage_start = datetime.now(UTC)
        time.sleep(4 * INTERVAL + 1)
        agents["alpha"].kill()
        outage_end = datetime.now(UTC)
        hub.start()
        agents["alpha"].start()

        def replayed() -> list[dict[str, Any]]:
            return [
                d
                for d in _documents(client, "system-info@alpha")
                if outage_start < datetime.fromisoformat(d["timestamp"]) < outage_end
            ]

        # The spool is replayed batch by batch: wait for the whole outage, not its first batch.
        during = _until(
            lambda: found if len(found := replayed()) >= 2 else None,
            30,
            "alpha's documents from the outage reach the hub",
        )
        assert len(during) >= 2
        # Stored once each: the replay is idempotent.
        stamps = [d["timestamp"] for d in _documents(client, "system-info@alpha")]
        assert len(stamps) == len(set(stamps))
        # And beta, which was never killed, replays its outage too.
        assert _until(
            lambda: [
                d
                for d in _documents(client, "system-info@beta")
                if outage_start < datetime.fromisoformat(d["timestamp"]) < outage_end
            ],
            30,
            "beta's documents from the outage",
        )
        # The stale host comes back when its agent does.
        agents["gamma"].start()
        _until(lambda: _hosts(client)["gamma"]["state"] != "stale", 30, "gamma is back")
    assert agents["beta"].stop() == 0


def test_joining_a_real_hub_with_a_wrong_token_or_a_hub_that_is_down(
    hub: Hub, tmp_path: Path
) -> None:
    agent = Agent("nope", tmp_path)
    wrong = agent.join(hub.url, "unitye_" + "x" * 40)
    assert wrong.returncode != 0
    assert "enrollment token" in wrong.stderr
    assert not agent.data_dir.exists()

    admin = {"Authorization": f"Bearer {hub.admin_token}"}
    with httpx.Client(base_url=hub.url, headers=admin, timeout=30) as client:
        token = client.post("/api/enrollment-tokens", json={"name": "x"}).json()["token"]
    hub.stop()
    down = agent.join(hub.url, token)
    assert down.returncode != 0
    assert "unreachable" in down.stderr or "refused" in down.stderr, down.stderr
    assert not agent.data_dir.exists()
    assert os.listdir(tmp_path).count("nope") == 0
