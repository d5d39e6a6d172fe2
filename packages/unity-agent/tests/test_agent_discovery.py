"""Discovery in the running agent: proposals reported at start and again every
``discovery_seconds``, kept through an outage and sent when the hub is back, a
scan that raises never stopping collection, ``--discovery-seconds`` on ``run``.

The scans here are real (this host's ``/proc``), asking the agent's own plugins:
:class:`agent_fakes.PortPlugin` proposes sockets a test listens on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import ALL, FakeAgentHub, PortPlugin, assignment, eventually
from test_agent_runtime import IDENTITY, NO_JITTER

from unity_agent.cli import build_parser
from unity_agent.runtime import run_agent
from unity_catalogue.discovery import discover
from unity_sdk import Proposal


@pytest.fixture
def hub() -> FakeAgentHub:
    return FakeAgentHub()


@contextlib.asynccontextmanager
async def agent(
    hub: FakeAgentHub, data_dir: Path, **options: Any
) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            IDENTITY,
            data_dir,
            stop=stop,
            plugins=ALL,
            transport=hub.transport,
            timing=NO_JITTER,
            **options,
        )
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.shield(task), 20)


@contextlib.contextmanager
def listening() -> Iterator[int]:
    """A TCP socket listening on a free loopback port (this process owns it)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        PortPlugin.PORTS = (server.getsockname()[1],)
        try:
            yield PortPlugin.PORTS[0]
        finally:
            PortPlugin.PORTS = ()


def keys(hub: FakeAgentHub, index: int = -1) -> list[str]:
    return [p.key for p in hub.proposal_reports[index].proposals]


async def test_proposals_are_reported_at_start_and_every_discovery_seconds(
    hub: FakeAgentHub, tmp_path: Path
) -> None:
    with listening() as port:
        async with agent(hub, tmp_path, discovery_seconds=0.3):
            await eventually(lambda: len(hub.proposal_reports) >= 1, timeout=5)
            assert keys(hub) == [f"port:{port}"]
            first = hub.proposal_reports[0].proposals[0]
            assert first.config == {"host": "127.0.0.1", "port": port}
            assert first.reason.endswith(f"listens on 127.0.0.1:{port}")
            await eventually(lambda: len(hub.proposal_reports) >= 3, timeout=5)
        assert keys(hub) == [f"port:{port}"], "the whole scan, every time"
    # Only the agent's plugins are asked: the catalogue's would propose what runs here.
    catalogue = {p.key for p in discover()}
    reported = {p.key for r in hub.proposal_reports for p in r.proposals}
    assert reported == {f"port:{port}"}
    assert catalogue.isdisjoint(reported)


async def test_a_closed_port_leaves_the_next_report(hub: FakeAgentHub, tmp_path: Path) -> None:
    async with agent(hub, tmp_path, discovery_seconds=0.2):
        with listening() as port:
            await eventually(lambda: hub.proposal_reports and keys(hub) == [f"port:{port}"])
        await eventually(lambda: keys(hub) == [])


async def test_the_report_waits_out_an_outage_and_is_sent_when_the_hub_is_back(
    hub: FakeAgentHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "unity_agent")
    hub.down = True
    with listening() as port:
        # A scan every hour: what arrives after the outage is the start's scan, resent.
        async with agent(hub, tmp_path, discovery_seconds=3600):
            await asyncio.sleep(1.5)  # several sends fail meanwhile
            assert hub.proposal_reports == []
            hub.down = False
            await eventually(lambda: len(hub.proposal_reports) == 1, timeout=5)
            assert keys(hub) == [f"port:{port}"]
            await asyncio.sleep(1.0)
            assert len(hub.proposal_reports) == 1, "sent once, not again and again"
    assert caplog.text.count("proposals not sent, the hub is unreachable") == 1
    assert "proposals reach the hub again" in caplog.text


async def test_a_scan_that_raises_does_not_stop_collection(
    hub: FakeAgentHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "unity_agent")
    calls: list[str] = []
    broken = threading.Event()
    broken.set()

    def scan() -> list[Proposal]:
        calls.append(threading.current_thread().name)
        if broken.is_set():
            raise OSError("/proc is not mounted")
        return [Proposal(key="port:1", plugin="port", title="port 1")]

    hub.assign(assignment("counter", 0.05))
    async with agent(hub, tmp_path, discovery_seconds=0.1, scan=scan) as task:
        await eventually(lambda: len(calls) >= 5)
        samples = len(hub.stored("counter@testhost"))
        await eventually(lambda: len(hub.stored("counter@testhost")) >= samples + 5)
        assert not task.done()
        assert hub.proposal_reports == []
        broken.clear()
        await eventually(lambda: len(hub.proposal_reports) >= 1)
    assert keys(hub) == ["port:1"]
    assert all(name != threading.main_thread().name for name in calls), "off the event loop"
    assert caplog.text.count("discovery scan failed") == 1, "once, not per scan"
    assert "/proc is not mounted" in caplog.text
    assert "discovery scan works again" in caplog.text
    values = [d["value"] for d in hub.stored("counter@testhost")]
    assert values == list(range(1, len(values) + 1))


async def test_no_scan_with_discovery_seconds_0(hub: FakeAgentHub, tmp_path: Path) -> None:
    calls: list[int] = []

    def scan() -> list[Proposal]:
        calls.append(1)
        return []

    hub.assign(assignment("counter", 0.05))
    async with agent(hub, tmp_path, discovery_seconds=0, scan=scan):
        await eventually(lambda: hub.polls() >= 3)
    assert calls == []
    assert hub.proposal_reports == []
    assert ("PUT", "/api/agents/v1/proposals") not in hub.requests


async def test_a_refused_report_is_not_resent_until_the_next_scan(
    hub: FakeAgentHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    duplicate = Proposal(key="port:1", plugin="port", title="port 1")

    def scan() -> list[Proposal]:
        return [duplicate, duplicate]  # the hub refuses a key named twice (422)

    async with agent(hub, tmp_path, discovery_seconds=3600, scan=scan):
        await eventually(lambda: "the hub refused this host's proposals" in caplog.text)
        await eventually(lambda: hub.polls() >= 3)
    assert hub.requests.count(("PUT", "/api/agents/v1/proposals")) == 1


def test_run_takes_discovery_seconds() -> None:
    parser = build_parser()
    assert parser.parse_args(["run"]).discovery_seconds == 600
    assert parser.parse_args(["run", "--discovery-seconds", "0"]).discovery_seconds == 0
    assert parser.parse_args(["run", "--discovery-seconds", "2.5"]).discovery_seconds == 2.5
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(["run", "--discovery-seconds", bad])
        assert exit_.value.code == 2, bad
