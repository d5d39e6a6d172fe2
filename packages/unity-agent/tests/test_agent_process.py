"""``python -m unity_agent.runtime`` as a real process: killed with SIGKILL and
restarted, it replays what it had spooled, in order and once; SIGTERM stops it
cleanly; a refused key or a missing identity exits 1 with a message.

The hub is the stand-in of agent_fakes served on loopback (the hub's agent
endpoints are built in parallel; the end-to-end tests with ``unity serve``
live with the hub's tests). The plugin is the real catalogue's system-info.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from agent_fakes import API_KEY, HOST_ID, FakeAgentHub, assignment, eventually

from unity_agent.identity import AgentIdentity, save_identity
from unity_agent.spool import SPOOL_FILE, Spool

pytestmark = pytest.mark.slow

INSTANCE = f"system-info@{HOST_ID}"


@pytest.fixture
def hub() -> Iterator[tuple[FakeAgentHub, str]]:
    fake = FakeAgentHub(poll_seconds=0.5)
    fake.assign(assignment("system-info", 0.2))
    with fake.serve() as url:
        yield fake, url


def start(data_dir: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    save_identity(
        data_dir, AgentIdentity(hub_url=url, host_id=HOST_ID, key_id="k1", api_key=API_KEY)
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "unity_agent.runtime", "--data-dir", str(data_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def spooled(data_dir: Path) -> int:
    if not (data_dir / SPOOL_FILE).exists():
        return 0
    with Spool(data_dir / SPOOL_FILE) as spool:
        return len(spool)


def timestamps(hub: FakeAgentHub) -> list[datetime]:
    with hub._lock:
        return [datetime.fromisoformat(s["timestamp"]) for s in hub.samples.get(INSTANCE, [])]


def stopped(process: subprocess.Popen[bytes], timeout: float = 15) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout)


def killed(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


async def test_a_killed_agent_replays_its_spool_after_a_restart(
    hub: tuple[FakeAgentHub, str], tmp_path: Path
) -> None:
    fake, url = hub
    log = tmp_path / "agent.log"
    fake.metrics_status = 503  # the hub takes no samples for now
    agent = start(tmp_path / "data", url, log)
    try:
        await eventually(lambda: spooled(tmp_path / "data") >= 8, timeout=30)
    finally:
        killed(agent)
    waiting = spooled(tmp_path / "data")
    assert waiting >= 8
    assert timestamps(fake) == []
    fake.metrics_status = None
    agent = start(tmp_path / "data", url, log)
    try:
        await eventually(lambda: len(timestamps(fake)) >= waiting + 3, timeout=30)
        assert stopped(agent) == 0
    finally:
        if agent.poll() is None:
            killed(agent)
    stamps = timestamps(fake)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    assert spooled(tmp_path / "data") == 0  # a clean stop sent the rest
    assert "sample(s) spooled from before" in log.read_text()
    assert API_KEY not in log.read_text()


async def test_a_batch_whose_answer_was_lost_is_stored_once_across_a_kill(
    hub: tuple[FakeAgentHub, str], tmp_path: Path
) -> None:
    fake, url = hub
    log = tmp_path / "agent.log"
    fake.lose_answers = 1_000  # stored, but the agent never hears so
    agent = start(tmp_path / "data", url, log)
    try:
        # The first batch is stored, then resent again and again under its id.
        await eventually(lambda: fake.duplicates >= 2, timeout=30)
        await eventually(lambda: spooled(tmp_path / "data") >= 3, timeout=30)
    finally:
        killed(agent)
    stored_before = len(timestamps(fake))
    # Nothing was acknowledged: all of it is still spooled, the first batch stamped.
    assert spooled(tmp_path / "data") >= stored_before
    duplicates_before = fake.duplicates
    fake.lose_answers = 0
    agent = start(tmp_path / "data", url, log)
    try:
        await eventually(lambda: fake.duplicates > duplicates_before, timeout=30)
        await eventually(lambda: spooled(tmp_path / "data") <= 1, timeout=30)
        assert stopped(agent) == 0
    finally:
        if agent.poll() is None:
            killed(agent)
    stamps = timestamps(fake)
    assert len(stamps) >= stored_before + 2
    assert len(set(stamps)) == len(stamps), "a resent batch was stored twice"
    assert stamps == sorted(stamps)


async def test_a_revoked_key_exits_1_with_a_message(
    hub: tuple[FakeAgentHub, str], tmp_path: Path
) -> None:
    fake, url = hub
    fake.revoked = True
    log = tmp_path / "agent.log"
    agent = start(tmp_path / "data", url, log)
    try:
        code = await asyncio.to_thread(agent.wait, 30)
    finally:
        if agent.poll() is None:
            killed(agent)
    assert code == 1
    text = log.read_text()
    assert "the hub refused this agent's key" in text
    assert "unity-agent join" in text
    assert API_KEY not in text


def test_without_an_identity_it_exits_1_and_says_why(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "unity_agent.runtime", "--data-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "join the hub first" in result.stderr
