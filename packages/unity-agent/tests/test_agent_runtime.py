"""run_agent against the stand-in hub (agent_fakes): assignments, config changes,
problems, outages and replay, refused batches, a revoked key.

In process through ``httpx.MockTransport``; the restart scenarios run the real
``python -m unity_agent.runtime`` in a subprocess against the stand-in served
on loopback (see test_agent_process.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import (
    ALL,
    API_KEY,
    EVENTS,
    HOST_ID,
    FakeAgentHub,
    TankPlugin,
    assignment,
    eventually,
)

from unity_agent import __version__
from unity_agent.identity import AgentIdentity
from unity_agent.runtime import run_agent
from unity_agent.scheduler import Timing
from unity_agent.spool import SPOOL_FILE, Spool
from unity_sdk import Assignment, HubAuthError

IDENTITY = AgentIdentity(
    hub_url="http://hub.test:8000", host_id=HOST_ID, key_id="k1", api_key=API_KEY
)
NO_JITTER = Timing(jitter=0.0)


@contextlib.asynccontextmanager
async def agent(
    hub: FakeAgentHub, data_dir: Path, **options: Any
) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    options.setdefault("timing", NO_JITTER)
    task = asyncio.create_task(
        run_agent(IDENTITY, data_dir, stop=stop, plugins=ALL, transport=hub.transport, **options)
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.shield(task), 20)


def spooled(data_dir: Path, counter: str = "") -> int:
    """What the agent's spool holds now (read through a connection of its own)."""
    with Spool(data_dir / SPOOL_FILE) as spool:
        return int(getattr(spool, counter)) if counter else len(spool)


@pytest.fixture
def hub() -> FakeAgentHub:
    EVENTS.clear()
    TankPlugin.level = 10.0
    return FakeAgentHub()


async def test_assigned_plugins_report_samples_status_and_health(
    hub: FakeAgentHub, tmp_path: Path
) -> None:
    hub.assign(assignment("counter", 0.1), assignment("tank", 0.1))
    async with agent(hub, tmp_path):
        await eventually(lambda: len(hub.stored("counter@testhost")) >= 5)
        await eventually(lambda: len(hub.stored("tank@testhost")) >= 5)
        # Sent counters move with every batch; the status carrying them comes every
        # STATUS_EVERY_POLLS polls.
        await eventually(lambda: bool(hub.statuses) and hub.statuses[-1].sent > 0)
    values = [d["value"] for d in hub.stored("counter@testhost")]
    assert values == list(range(1, len(values) + 1))
    sample = hub.samples["counter@testhost"][0]
    assert sample["host"] == socket.gethostname()
    status = hub.statuses[-1]
    assert status.platform.hostname == socket.gethostname()
    assert status.platform.agent_version == __version__
    assert status.platform.cpu_count is not None
    assert status.problems == {}
    assert 0 < status.sent <= len(values) + len(hub.stored("tank@testhost"))
    # Health only when it changes: many runs, one report each.
    assert [(r.status.value, r.message) for r in hub.health["tank@testhost"]] == [
        ("healthy", "10 % full")
    ]
    assert [r.status.value for r in hub.health["counter@testhost"]] == ["healthy"]
    # Every sample went once: the spool is empty after a clean stop.
    with Spool(tmp_path / SPOOL_FILE) as spool:
        assert len(spool) == 0
    assert hub.duplicates == 0


async def test_a_health_change_is_reported(hub: FakeAgentHub, tmp_path: Path) -> None:
    hub.assign(assignment("tank", 0.1))
    async with agent(hub, tmp_path):
        await eventually(lambda: len(hub.health.get("tank@testhost", [])) == 1)
        TankPlugin.level = 95.0
        await eventually(lambda: len(hub.health["tank@testhost"]) == 2)
    assert hub.health["tank@testhost"][1].status.value == "degraded"
    assert hub.health["tank@testhost"][1].message == "95 % full"


async def test_what_cannot_run_is_a_problem_and_the_rest_keeps_running(
    hub: FakeAgentHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = Assignment(
        instance_id="counter-bad@testhost",
        plugin="counter",
        config={"step": "hunter2-not-a-number"},
        interval=0.1,
    )
    hub.assign(
        assignment("counter", 0.1),
        assignment("nope", 0.1),
        bad,
        assignment("needs-extra", 0.1),
        assignment("broken-enable", 0.1),
    )
    async with agent(hub, tmp_path):
        await eventually(lambda: len(hub.statuses) >= 1 and len(hub.statuses[-1].problems) == 4)
        await eventually(lambda: len(hub.stored("counter@testhost")) >= 5)
    problems = hub.statuses[-1].problems
    assert problems["nope@testhost"].startswith("unknown plugin 'nope': not in this agent's")
    assert problems["counter-bad@testhost"].startswith(
        "invalid config for plugin 'counter' (fields: step)"
    )
    assert problems["needs-extra@testhost"] == (
        "missing dependency: DependencyMissingError: install unity-catalogue[fake]: "
        "fakelib is missing"
    )
    assert problems["broken-enable@testhost"] == (
        "missing dependency: ModuleNotFoundError: No module named 'fakelib'"
    )
    assert "hunter2" not in caplog.text
    assert API_KEY not in caplog.text
    assert hub.health["needs-extra@testhost"][0].status.value == "unhealthy"


async def test_a_config_change_replaces_the_instance(hub: FakeAgentHub, tmp_path: Path) -> None:
    hub.assign(assignment("counter", 0.1, step=1))
    async with agent(hub, tmp_path):
        await eventually(lambda: len(hub.stored("counter@testhost")) >= 3)
        hub.assign(assignment("counter", 0.1, step=5))
        await eventually(lambda: sum(d["step"] == 5 for d in hub.stored("counter@testhost")) >= 2)
        assert EVENTS[:3] == [
            ("counter", "enable step=1"),
            ("counter", "disable step=1"),
            ("counter", "enable step=5"),
        ]
        # A new instance: it counts from the start again, by 5.
        after = [d["value"] for d in hub.stored("counter@testhost") if d["step"] == 5]
        assert after[:2] == [5, 10]
        hub.assign()  # removed on the hub
        await eventually(lambda: EVENTS[-1] == ("counter", "disable step=5"))
        count = len(hub.stored("counter@testhost"))
        await asyncio.sleep(0.4)
        assert len(hub.stored("counter@testhost")) == count


async def test_an_unchanged_assignment_keeps_its_instance(
    hub: FakeAgentHub, tmp_path: Path
) -> None:
    hub.assign(assignment("counter", 0.1))
    async with agent(hub, tmp_path):
        await eventually(lambda: hub.polls() >= 3)
        hub.assign(assignment("counter", 0.1))  # a new revision, same instance
        await eventually(lambda: hub.polls() >= 6)
    assert EVENTS == [("counter", "enable step=1"), ("counter", "disable step=1")]


async def test_samples_wait_out_an_outage_and_are_replayed_in_order(
    hub: FakeAgentHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub.assign(assignment("counter", 0.05))
    async with agent(hub, tmp_path):
        await eventually(lambda: len(hub.stored("counter@testhost")) >= 2)
        hub.down = True
        await eventually(lambda: spooled(tmp_path) >= 15)
        hub.down = False
        await eventually(lambda: len(hub.stored("counter@testhost")) >= 25, timeout=15)
    values = [d["value"] for d in hub.stored("counter@testhost")]
    assert values == list(range(1, len(values) + 1))
    assert "hub unreachable, collecting into the spool" in caplog.text
    assert caplog.text.count("hub unreachable, collecting") == 1


async def test_a_lost_answer_is_resent_under_the_same_batch_id(
    hub: FakeAgentHub, tmp_path: Path
) -> None:
    hub.assign(assignment("counter", 0.1))
    hub.lose_answers = 3
    async with agent(hub, tmp_path):
        await eventually(lambda: len(hub.stored("counter@testhost")) >= 8, timeout=15)
    assert hub.duplicates >= 1
    values = [d["value"] for d in hub.stored("counter@testhost")]
    assert values == list(range(1, len(values) + 1))  # stored once each


async def test_a_refused_batch_is_discarded_and_the_rest_goes_on(
    hub: FakeAgentHub, tmp_path: Path
) -> None:
    hub.assign(assignment("tank", 0.1))
    TankPlugin.level = 50.0
    hub.refuse_samples_with = "value"
    async with agent(hub, tmp_path):
        await eventually(lambda: hub.polls() >= 2)
        await eventually(lambda: spooled(tmp_path, "rejected") >= 3)
        hub.refuse_samples_with = None
        await eventually(lambda: len(hub.stored("tank@testhost")) >= 2)


async def test_a_revoked_key_stops_the_agent(
    hub: FakeAgentHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub.assign(assignment("counter", 0.1))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            IDENTITY, tmp_path, stop=stop, plugins=ALL, transport=hub.transport, timing=NO_JITTER
        )
    )
    await eventually(lambda: len(hub.stored("counter@testhost")) >= 2)
    hub.revoked = True
    with pytest.raises(HubAuthError):
        await asyncio.wait_for(task, 10)
    assert "the hub refused this agent's key" in caplog.text
    assert API_KEY not in caplog.text
    assert EVENTS[-1] == ("counter", "disable step=1")


async def test_a_restart_while_the_hub_is_down_runs_the_last_assignments(
    hub: FakeAgentHub, tmp_path: Path
) -> None:
    hub.assign(assignment("counter", 0.1))
    async with agent(hub, tmp_path):
        await eventually(lambda: len(hub.stored("counter@testhost")) >= 2)
    hub.down = True
    sent = len(hub.stored("counter@testhost"))
    async with agent(hub, tmp_path):
        await eventually(lambda: spooled(tmp_path) >= 3)
        hub.down = False
        await eventually(lambda: len(hub.stored("counter@testhost")) >= sent + 3)
    values = [d["value"] for d in hub.stored("counter@testhost")]
    # The second run's instance counts from 1 again; each run's samples in order.
    assert values[:sent] == list(range(1, sent + 1))
    assert values[sent:] == list(range(1, len(values) - sent + 1))


async def test_status_counts_what_is_spooled_and_dropped(hub: FakeAgentHub, tmp_path: Path) -> None:
    hub.assign(assignment("counter", 0.05))
    hub.metrics_status = 503
    async with agent(hub, tmp_path, spool_samples=5):
        await eventually(lambda: bool(hub.statuses) and hub.statuses[-1].dropped >= 3)
    status = hub.statuses[-1]
    assert status.buffered == 5
    assert status.sent == 0
