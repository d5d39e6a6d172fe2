"""The SDK's ``HubClient`` -- what ``unity-agent`` talks with -- against the real hub:
one agent's whole conversation, from join to proposals, with the SDK's wire models."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.agents.support import API, enroll
from unity.storage.models import Host
from unity_sdk import (
    AgentStatus,
    HealthReport,
    HealthState,
    HostPlatform,
    HubAuthError,
    HubClient,
    HubRequestError,
    Proposal,
    ProposalReport,
    Sample,
    new_key_secret,
)


def _client(app: FastAPI, api_key: str | None = None) -> HubClient:
    return HubClient("http://hub", api_key, transport=httpx.ASGITransport(app=app), max_retries=0)


async def test_an_agents_conversation_through_the_sdk_client(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await enroll(client, max_uses=1)
    platform = HostPlatform(hostname="nas.lan", os="Linux", cpu_count=2)
    secret = new_key_secret()
    async with _client(app) as hub:
        joined = await hub.join_agent(platform, enrollment_token=token, key_secret=secret)
        assert joined.host_id == "nas"
        assert hub.api_key == joined.api_key
        # A join whose answer was lost, retried: the same key, no further use.
        again = await hub.join_agent(platform, enrollment_token=token, key_secret=secret)
        assert again == joined

        assigned = await hub.get_assignments()
        assert {i.instance_id for i in assigned.instances} == {
            "system-info@nas",
            "process-monitor@nas",
            "disk-monitor@nas",
            "network-monitor@nas",
        }
        # Asked with the revision it runs: 304, None, until something changes.
        assert await hub.get_assignments(assigned.revision) is None
        changed = await client.put(f"{API}/system-info@nas/config", json={"interval": 15})
        assert changed.status_code == 200, changed.text
        fresh = await hub.get_assignments(assigned.revision)
        assert fresh is not None
        assert fresh.revision != assigned.revision
        assert {i.instance_id: i.interval for i in fresh.instances}["system-info@nas"] == 15
        now = datetime.now(UTC)
        sample = Sample(host="nas.lan", timestamp=now, data={"cpu": {"percent": 7.5}})
        accepted = await hub.report_metrics("system-info@nas", [sample])
        assert (accepted.stored, accepted.duplicate) == (1, False)
        health = HealthReport(status=HealthState.HEALTHY, message="ok")
        assert (await hub.update_health("system-info@nas", health)).status is HealthState.HEALTHY

        status = await hub.report_agent_status(
            AgentStatus(platform=platform, started_at=now, sent=1)
        )
        assert status.host_id == "nas"
        proposals = ProposalReport(
            proposals=[Proposal(key="postgres:5432", plugin="postgres", title="PostgreSQL")]
        )
        assert (await hub.report_proposals(proposals)).open == 1

        # Another host's instance: a final refusal the client does not retry.
        with pytest.raises(HubAuthError, match=r"belongs to host 'nas'.*HTTP 403"):
            await hub.report_metrics("system-info@pi", [sample])
    detail = (await client.get(f"{API}/system-info@nas")).json()
    assert detail["state"] == "healthy"


async def test_a_used_up_token_is_an_auth_error_for_the_client(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    token = await enroll(client, max_uses=1)
    async with _client(app) as hub:
        await hub.join_agent(HostPlatform(hostname="nas"), enrollment_token=token)
        with pytest.raises(HubAuthError, match="used up"):
            await hub.join_agent(HostPlatform(hostname="pi"), enrollment_token=token)
        # The hub's own host id is never an agent's: a final refusal, not retried.
        async with app.state.db.session() as session:
            hub_host = await session.scalar(select(Host.id).where(Host.kind == "hub"))
        with pytest.raises(HubRequestError) as taken:
            await hub.join_agent(
                HostPlatform(hostname="nas"),
                enrollment_token=await enroll(client),
                host_id=hub_host,
            )
        assert taken.value.status == 409
