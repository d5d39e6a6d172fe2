"""The agent's status goes to the hub when it changed, else every STATUS_EVERY_POLLS
polls; each poll is still a call (the hub's sign of life). Polls are driven one by
one (``Agent.poll_once``) against the stand-in hub: no timing involved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_fakes import ALL, API_KEY, HOST_ID, FakeAgentHub, assignment

from unity_agent import __version__
from unity_agent.agent import STATUS_EVERY_POLLS, Agent
from unity_agent.spool import SPOOL_FILE, Spool
from unity_catalogue.platform import host_platform
from unity_sdk import AGENT_API_PATH, HubClient

STATUS = ("POST", f"{AGENT_API_PATH}/status")
NOPE = f"nope@{HOST_ID}"


@pytest.fixture
def hub() -> FakeAgentHub:
    return FakeAgentHub()


@pytest.fixture
async def agent(hub: FakeAgentHub, tmp_path: Path) -> AsyncIterator[Agent]:
    client = HubClient("http://hub.test:8000", API_KEY, transport=hub.transport, max_retries=0)
    spool = Spool(tmp_path / SPOOL_FILE)
    platform = host_platform(HOST_ID, agent_version=__version__)
    try:
        yield Agent(client, spool, ALL, platform=platform, discovery_seconds=0)
    finally:
        await client.aclose()
        spool.close()


async def test_an_unchanged_status_is_sent_every_n_polls_and_a_change_at_once(
    hub: FakeAgentHub, agent: Agent
) -> None:
    polls = 2 * STATUS_EVERY_POLLS + 1
    for _ in range(polls):
        await agent.poll_once()
    # The first poll tells the hub; then one status per STATUS_EVERY_POLLS polls.
    assert hub.polls() == polls
    assert hub.requests.count(STATUS) == 3

    hub.assign(assignment("nope"))  # a plugin this agent does not have: a problem
    await agent.poll_once()
    assert hub.requests.count(STATUS) == 4
    assert list(hub.statuses[-1].problems) == [NOPE]
    await agent.poll_once()
    assert hub.requests.count(STATUS) == 4  # unchanged again: not sent

    hub.assign()
    await agent.poll_once()
    assert hub.requests.count(STATUS) == 5
    assert hub.statuses[-1].problems == {}
    await agent.close()


async def test_a_status_the_hub_did_not_get_is_sent_at_the_next_poll(
    hub: FakeAgentHub, agent: Agent
) -> None:
    await agent.poll_once()
    assert hub.requests.count(STATUS) == 1
    hub.assign(assignment("nope"))
    hub.status_down = True
    await agent.poll_once()  # the assignments came, the status did not get through
    hub.status_down = False
    assert len(hub.statuses) == 1
    await agent.poll_once()
    assert len(hub.statuses) == 2
    assert list(hub.statuses[-1].problems) == [NOPE]
    await agent.close()


async def test_moving_counters_alone_wait_for_the_periodic_status(
    hub: FakeAgentHub, agent: Agent
) -> None:
    await agent.poll_once()
    agent.sender.sent += 40  # batches went out between polls
    for _ in range(STATUS_EVERY_POLLS - 1):
        await agent.poll_once()
    assert hub.requests.count(STATUS) == 1
    await agent.poll_once()
    assert hub.requests.count(STATUS) == 2
    assert hub.statuses[-1].sent == 40
